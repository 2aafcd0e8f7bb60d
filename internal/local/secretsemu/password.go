package secretsemu

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
)

// GetRandomPassword, as the API reference describes it: 32 characters by
// default, from upper- and lower-case letters, digits and punctuation, at
// least one of each included type unless RequireEachIncludedType is false.

type getRandomPasswordInput struct {
	PasswordLength          *int64
	ExcludeCharacters       *string
	ExcludeNumbers          *bool
	ExcludePunctuation      *bool
	ExcludeUppercase        *bool
	ExcludeLowercase        *bool
	IncludeSpace            *bool
	RequireEachIncludedType *bool
}

type getRandomPasswordOutput struct {
	RandomPassword string
}

const (
	defaultPasswordLength = 32
	maxPasswordLength     = 4096
	maxExcludeCharacters  = 4096
	punctuation           = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

func (s *Server) getRandomPassword(in getRandomPasswordInput) (any, error) {
	n := int64(defaultPasswordLength)
	if in.PasswordLength != nil {
		n = *in.PasswordLength
	}
	if n < 1 || n > maxPasswordLength {
		return nil, errInvalidParameter(fmt.Sprintf("PasswordLength is %d; use 1 to %d.", n, maxPasswordLength))
	}
	exclude := ""
	if in.ExcludeCharacters != nil {
		exclude = *in.ExcludeCharacters
	}
	if len(exclude) > maxExcludeCharacters {
		return nil, errInvalidParameter(fmt.Sprintf("ExcludeCharacters is %d characters; the maximum is %d.", len(exclude), maxExcludeCharacters))
	}
	on := func(b *bool) bool { return b != nil && *b }
	var classes []string
	for _, c := range []struct {
		skip bool
		set  string
	}{
		{on(in.ExcludeUppercase), "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
		{on(in.ExcludeLowercase), "abcdefghijklmnopqrstuvwxyz"},
		{on(in.ExcludeNumbers), "0123456789"},
		{on(in.ExcludePunctuation), punctuation},
	} {
		if c.skip {
			continue
		}
		set := strings.Map(func(r rune) rune {
			if strings.ContainsRune(exclude, r) {
				return -1
			}
			return r
		}, c.set)
		if set != "" {
			classes = append(classes, set)
		}
	}
	// A space may occur, but is not a type RequireEachIncludedType asks for:
	// "at least one upper and lowercase letter, one number, and one punctuation".
	space := on(in.IncludeSpace) && !strings.ContainsRune(exclude, ' ')
	if len(classes) == 0 && !space {
		return nil, errInvalidParameter("The password can't be generated: every character type is excluded.")
	}
	requireEach := in.RequireEachIncludedType == nil || *in.RequireEachIncludedType
	if requireEach && int(n) < len(classes) {
		return nil, errInvalidParameter(fmt.Sprintf(
			"PasswordLength %d is too short to include one character of each of the %d included types; make it longer or set RequireEachIncludedType to false.", n, len(classes)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pool := strings.Join(classes, "")
	if space {
		pool += " "
	}
	pw, err := randomPassword(s, classes, pool, int(n), requireEach)
	if err != nil {
		return nil, errInternal("reading Options.Rand: " + err.Error())
	}
	return getRandomPasswordOutput{RandomPassword: pw}, nil
}

// randomPassword draws n characters uniformly from pool; with requireEach,
// one of each class first, at a random position. The caller holds s.mu,
// which guards s.rand.
func randomPassword(s *Server, classes []string, pool string, n int, requireEach bool) (string, error) {
	pick := func(set string) (byte, error) {
		i, err := rand.Int(s.rand, big.NewInt(int64(len(set))))
		if err != nil {
			return 0, err
		}
		return set[i.Int64()], nil
	}
	out := make([]byte, 0, n)
	if requireEach {
		for _, c := range classes {
			b, err := pick(c)
			if err != nil {
				return "", err
			}
			out = append(out, b)
		}
	}
	for len(out) < n {
		b, err := pick(pool)
		if err != nil {
			return "", err
		}
		out = append(out, b)
	}
	// Shuffle (Fisher-Yates), so the required characters are not first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(s.rand, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}
