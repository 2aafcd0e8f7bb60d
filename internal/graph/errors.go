package graph

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error renders one line an operator can act on, e.g.
//
//	graph upload 106540352242922: HTTP 400 code 100 subcode 33 (OAuthException): <message> [fbtrace_id AbC] after 1 attempt
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph ")
	b.WriteString(e.Op)
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	b.WriteString(": ")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	} else {
		b.WriteString("no response")
	}
	if e.graphError || e.Code != 0 {
		fmt.Fprintf(&b, " code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, " subcode %d", e.Subcode)
		}
		if e.Type != "" {
			fmt.Fprintf(&b, " (%s)", e.Type)
		}
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Details != "" {
		fmt.Fprintf(&b, " (%s)", e.Details)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.FBTraceID != "" {
		fmt.Fprintf(&b, " [fbtrace_id %s]", e.FBTraceID)
	}
	switch e.Attempts {
	case 0:
		b.WriteString(" before any attempt")
	case 1:
		b.WriteString(" after 1 attempt")
	default:
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	regain := int(math.Ceil(e.RegainAccessIn.Minutes()))
	switch {
	case e.RateLimited && regain > 0:
		fmt.Fprintf(&b, "; rate limited, retry after ~%d min", regain)
	case e.RateLimited:
		b.WriteString("; rate limited, retry later")
	case regain > 0:
		fmt.Fprintf(&b, "; Meta's usage header says access returns in ~%d min", regain)
	}
	return b.String()
}

// graphErrorBody is Graph's error envelope. Only code is reliably present.
type graphErrorBody struct {
	Error *struct {
		Message        string          `json:"message"`
		Type           string          `json:"type"`
		Code           *flexInt        `json:"code"`
		Subcode        flexInt         `json:"error_subcode"`
		FBTraceID      string          `json:"fbtrace_id"`
		ErrorData      json.RawMessage `json:"error_data"`
		ErrorUserTitle string          `json:"error_user_title"`
		ErrorUserMsg   string          `json:"error_user_msg"`
	} `json:"error"`
}

// flexInt accepts 100 and "100": proxies and older Graph versions have sent
// both, and a code lost to a type mismatch would turn a permanent error
// into a retried one.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", clip(string(b), 20))
	}
	*f = flexInt(n)
	return nil
}

// fillGraphError copies a Graph error body into e, redacted and
// sanitized, and reports whether it carried a code. e.graphError records
// whether there was an error object at all.
func fillGraphError(e *Error, body []byte, red redactor) bool {
	var ge graphErrorBody
	if json.Unmarshal(body, &ge) != nil || ge.Error == nil {
		return false
	}
	g := ge.Error
	e.graphError = true
	if g.Code != nil {
		e.Code = int(*g.Code)
	}
	e.Subcode = int(g.Subcode)
	e.Type = red.clean(g.Type, 80)
	e.Message = red.clean(g.Message, 500)
	e.FBTraceID = red.clean(g.FBTraceID, 80)
	details := errorDataDetails(g.ErrorData)
	if details == "" {
		details = g.ErrorUserMsg
	}
	if details == "" {
		details = g.ErrorUserTitle
	}
	if d := red.clean(details, 500); d != "" && !strings.Contains(e.Message, d) {
		if e.Message == "" {
			e.Message = d
		} else {
			e.Details = d
		}
	}
	return g.Code != nil
}

// errorDataDetails reads error_data, which Cloud API sends as an object
// with "details" and older endpoints as a plain string.
func errorDataDetails(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Details string `json:"details"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Details
	}
	return ""
}

// classify applies the retry table of platform-facts §1. A Graph code
// decides when there is one; otherwise the HTTP status does.
func classify(status int, e *Error, codePresent bool) (retryable, rateLimited bool) {
	if e.Subcode == 33 {
		return false, false
	}
	if codePresent {
		switch c := e.Code; {
		case c == 4 || c == 80007 || c == 130429:
			return true, true
		case c == 131000:
			return true, false
		case c == 0 || c == 3 || c == 10 || c == 33 || c == 100 || c == 190 || (c >= 200 && c <= 299):
			return false, false
		}
	}
	switch {
	case status == 429:
		return true, true
	case status >= 500:
		return true, false
	}
	return false, false
}

// redactor removes the secrets of one call (the token, and for an upload
// the PEM) from any text that goes into an error, in case Meta or a proxy
// echoes them.
type redactor struct{ r *strings.Replacer }

const redacted = "[redacted]"

// minSecretFragment keeps short PEM lines (the last base64 line can be a
// few characters) from blanking unrelated words.
const minSecretFragment = 16

func newRedactor(token string, pems ...string) redactor {
	var secrets []string
	add := func(s string) {
		if s != "" {
			secrets = append(secrets, s, url.QueryEscape(s), url.PathEscape(s))
		}
	}
	add(token)
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
	return redactor{r: strings.NewReplacer(pairs...)}
}

func (r redactor) redact(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
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

// clip shortens s to at most max runes, marking the cut.
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// malformed wraps a decoding problem so errors.Is(err, ErrMalformedResponse) holds.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}

// errorsJoinCtx attaches a context error to an attempt's cause without
// losing either for errors.Is.
func errorsJoinCtx(cause, ctxErr error) error {
	if cause == nil {
		return ctxErr
	}
	if errors.Is(cause, ctxErr) {
		return cause
	}
	return fmt.Errorf("%w (then %w)", cause, ctxErr)
}
