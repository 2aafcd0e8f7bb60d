package graphsim

import (
	"crypto/subtle"
	"fmt"
	"maps"
)

// A scoped token is an access token that reaches only some WABAs, as a
// business-integration token from Embedded Signup reaches only the WABA
// its business shared with the partner. Options.Token is the simulator's
// default token: it reaches every WABA and cannot be revoked.
type scopedToken struct {
	value   []byte
	wabas   map[string]bool
	revoked bool
}

// Graph's answer to a token that was valid and no longer is: code 190 with
// a subcode, as Meta's error-handling guide shows it (190/460, "the
// session has been invalidated"). Meta answers a token revoked by the
// business, a user who changed their password or a session Meta ended for
// security the same way; 190 with no subcode stays the answer to a token
// Graph never issued.
const (
	subcodeSessionInvalidated = 460
	messageSessionInvalidated = "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
)

func checkToken(field, token string) error {
	if token == "" {
		return &InputError{Field: field, Problem: "is empty", Fix: "set the access token clients must send"}
	}
	for _, c := range token {
		if c <= ' ' || c == 0x7f {
			return &InputError{Field: field, Problem: "contains whitespace or control characters", Fix: "use a token that fits in an Authorization header"}
		}
	}
	return nil
}

// AddToken accepts token from now on for the WABAs wabaIDs (each must
// exist) and their phone numbers only: with it, any other object answers
// as one the token may not see, 100/33 ("does not exist, cannot be loaded
// due to missing permissions"), as Graph does. Adding a token that is
// already accepted adds the WABAs to it. A revoked token stays revoked, as
// at Meta: issue a new one instead.
func (s *Sim) AddToken(token string, wabaIDs ...string) error {
	if err := checkToken("token", token); err != nil {
		return err
	}
	if len(wabaIDs) == 0 {
		return &InputError{Field: "wabas", Problem: "is empty", Fix: "name the WABAs the token may reach"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(token), s.token) == 1 {
		return &InputError{Field: "token", Problem: "is the default token (Options.Token), which reaches every WABA", Fix: "add a token of its own"}
	}
	for _, w := range wabaIDs {
		if _, ok := s.wabas[w]; !ok {
			return &InputError{Field: "wabas", Problem: fmt.Sprintf("WABA %q does not exist", clip(w)), Fix: "add it with AddWABA (or POST /_sim/numbers) first", Err: ErrNotFound}
		}
	}
	t := s.scopedLocked(token)
	if t == nil {
		t = &scopedToken{value: []byte(token), wabas: map[string]bool{}}
		s.tokens = append(s.tokens, t)
	}
	if t.revoked {
		return &InputError{Field: "token", Problem: "was revoked", Fix: "issue a new token: Meta never accepts a revoked one again"}
	}
	for _, w := range wabaIDs {
		t.wabas[w] = true
	}
	return nil
}

// RevokeToken stops accepting a token added with AddToken: from now on
// Graph answers it with 190/460, HTTP 401, as Meta answers a token that
// was revoked or expired.
func (s *Sim) RevokeToken(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.scopedLocked(token)
	if t == nil {
		return &InputError{Field: "token", Problem: "is not a token added with AddToken", Fix: "revoke a token the simulator issued (the default token cannot be revoked)", Err: ErrNotFound}
	}
	t.revoked = true
	return nil
}

// TokenScopes is how many scoped tokens are accepted and how many are
// revoked, for State: never the tokens themselves.
type TokenScopes struct {
	Active  int `json:"active"`
	Revoked int `json:"revoked"`
}

func (s *Sim) tokenScopesLocked() TokenScopes {
	var ts TokenScopes
	for _, t := range s.tokens {
		if t.revoked {
			ts.Revoked++
		} else {
			ts.Active++
		}
	}
	return ts
}

// scopedLocked finds an added token by constant-time comparison.
func (s *Sim) scopedLocked(token string) *scopedToken {
	var found *scopedToken
	for _, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(token), t.value) == 1 {
			found = t
		}
	}
	return found
}

// grant is what an authenticated call may reach: every WABA (the default
// token) or those listed.
type grant struct {
	all   bool
	wabas map[string]bool
}

func (g grant) reaches(waba string) bool { return g.all || waba != "" && g.wabas[waba] }

// authorizeLocked resolves a presented token to its grant, or to Graph's
// error for it.
func (s *Sim) authorizeLocked(got string) (grant, *graphError) {
	if subtle.ConstantTimeCompare([]byte(got), s.token) == 1 {
		return grant{all: true}, nil
	}
	t := s.scopedLocked(got)
	switch {
	case t == nil:
		return grant{}, newGraphError(codeInvalidToken, 0, "")
	case t.revoked:
		return grant{}, newGraphError(codeInvalidToken, subcodeSessionInvalidated, messageSessionInvalidated)
	}
	return grant{wabas: maps.Clone(t.wabas)}, nil
}
