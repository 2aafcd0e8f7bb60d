package graph

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// redactor removes the secrets of one call (the token, and for an upload
// the PEM) from any text that goes into an error, in case Meta or a proxy
// echoes them.
//
// The token is cut out by its runs, not only whole: Meta's 190 messages
// have been seen to echo a prefix of the token. Any run of minTokenRun or
// more characters that also occurs in the token (or in its URL-escaped
// forms) is replaced. Eight characters of a 200-character token tell an
// attacker nothing, and a shorter threshold would start to blank words of
// Meta's own messages.
type redactor struct {
	// grams holds every minTokenRun-byte substring of the token's forms.
	grams map[string]struct{}
	// r replaces whole secrets: a token shorter than minTokenRun, and the
	// PEM of an upload with its lines.
	r *strings.Replacer
}

const redacted = "[redacted]"

// minTokenRun is the shortest run of the token's characters that is
// redacted wherever it appears.
const minTokenRun = 8

// minSecretFragment keeps short PEM lines (the last base64 line can be a
// few characters) from blanking unrelated words.
const minSecretFragment = 16

func newRedactor(token string, pems ...string) redactor {
	red := redactor{}
	var secrets []string
	add := func(s string) {
		if s != "" {
			secrets = append(secrets, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	if token != "" {
		add(token)
		red.grams = map[string]struct{}{}
		for _, form := range secrets {
			for i := 0; i+minTokenRun <= len(form); i++ {
				red.grams[form[i:i+minTokenRun]] = struct{}{}
			}
		}
	}
	for _, p := range pems {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		add(p)
		var body strings.Builder
		for line := range strings.Lines(p) {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "-----") {
				continue
			}
			body.WriteString(line)
			if len(line) >= minSecretFragment {
				add(line)
			}
		}
		if body.Len() >= minSecretFragment {
			add(body.String())
		}
	}
	// Longest first, so a whole PEM is replaced before one of its lines.
	slices.SortStableFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if !seen[s] {
			seen[s] = true
			pairs = append(pairs, s, redacted)
		}
	}
	red.r = strings.NewReplacer(pairs...)
	return red
}

func (r redactor) redact(s string) string {
	s = r.cutTokenRuns(s)
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// cutTokenRuns replaces every stretch of s covered by a minTokenRun-byte
// window that occurs in the token. A run of the token's characters is
// covered by its windows, so each such run goes, however long.
func (r redactor) cutTokenRuns(s string) string {
	if len(r.grams) == 0 || len(s) < minTokenRun {
		return s
	}
	var covered []bool
	for i := 0; i+minTokenRun <= len(s); i++ {
		if _, ok := r.grams[s[i:i+minTokenRun]]; !ok {
			continue
		}
		if covered == nil {
			covered = make([]bool, len(s))
		}
		for j := i; j < i+minTokenRun; j++ {
			covered[j] = true
		}
	}
	if covered == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(redacted)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String()
}

// clean makes text from a response safe for one terminal line: secrets
// redacted, control characters and runs of space collapsed, length capped.
// Redaction comes first so that clipping cannot cut a secret in two.
func (r redactor) clean(s string, max int) string {
	s = r.redact(s)
	var b strings.Builder
	space := false
	for _, c := range s {
		if c == utf8.RuneError || unicode.IsControl(c) || unicode.IsSpace(c) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(c)
	}
	return clip(b.String(), max)
}

// wrap returns err with secrets removed from its text; errors.Is and
// errors.As still see the original chain.
func (r redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := r.redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
