package graph

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A failure without a Graph answer is a transport failure, named as one in
// the error, in GraphCode and in what Observe sees: never "code 0", which
// is a real Graph code.
func TestTransportFailuresAreNeverCodeZero(t *testing.T) {
	tests := []struct {
		name    string
		handler func(*testing.T, http.ResponseWriter, *http.Request)
		opts    func(*Options)
		cause   string
	}{
		{"dropped connection", func(t *testing.T, w http.ResponseWriter, _ *http.Request) { drop(t)(w) }, nil, TransportEOF},
		{"request timeout", func(_ *testing.T, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			func(o *Options) { o.RequestTimeout = 20 * time.Millisecond }, TransportTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { tc.handler(t, w, r) })
			var calls []Call
			mods := []func(*Options){func(o *Options) { o.Observe = func(c Call) { calls = append(calls, c) } }}
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			_, err := newClient(t, s, mods...).GetPublicKey(t.Context(), testAuth(), phoneID)
			var ge *Error
			if !errors.As(err, &ge) || ge.Failure != FailureTransport || ge.Transport != tc.cause {
				t.Fatalf("err = %v (%+v), want a transport failure %q", err, ge, tc.cause)
			}
			if _, ok := ge.GraphCode(); ok {
				t.Error("GraphCode reports a code for a transport failure")
			}
			if strings.Contains(err.Error(), "code 0") || !strings.Contains(err.Error(), "no response ("+tc.cause+")") {
				t.Errorf("Error() = %q, want %q and no code", err, "no response ("+tc.cause+")")
			}
			if ge.Uncertain != "attempt 1: no response ("+tc.cause+")" {
				t.Errorf("Uncertain = %q; a request with no answer may have landed", ge.Uncertain)
			}
			for _, c := range calls {
				if c.Failure != FailureTransport || c.Transport != tc.cause || c.RateLimited {
					t.Errorf("Observe saw %+v, want a transport failure %q", c, tc.cause)
				}
			}
		})
	}
	t.Run("connection refused never reached Meta", func(t *testing.T) {
		s := newServer(t, func(int, http.ResponseWriter, *http.Request) {})
		c := newClient(t, s)
		s.Close()
		_, err := c.GetPublicKey(t.Context(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || ge.Transport != TransportRefused || ge.Uncertain != "" {
			t.Errorf("err = %v, Uncertain %q; want connection refused, which cannot have landed", err, ge.Uncertain)
		}
	})
	t.Run("code 0 is a Graph code", func(t *testing.T) {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			writeGraphError(w, 401, gErr{Code: 0, Message: "cannot authenticate", Type: "OAuthException"})
		})
		_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("err = %v, want *Error", err)
		}
		if code, ok := ge.GraphCode(); !ok || code != 0 || ge.Failure != FailureGraph {
			t.Errorf("err = %v, want Graph code 0", err)
		}
	})
}

// Every auth or permission error ends with a fix that names the secret
// the token came from.
func TestAuthErrorsNameTheTokenSecret(t *testing.T) {
	for _, code := range []int{190, 0, 10, 200, 250, 299, 102, 104} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeGraphError(w, 401, gErr{Code: code, Message: "denied", Type: "OAuthException"})
			})
			_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
			if err == nil || !strings.Contains(err.Error(), "; fix: ") || !strings.Contains(err.Error(), "secret "+testTokenSecret) {
				t.Errorf("Error() = %v, want a fix naming secret %s", err, testTokenSecret)
			}
		})
	}
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeGraphError(w, 400, gErr{Code: 100, Message: "(#100) Invalid parameter"})
	})
	if _, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID); err == nil || strings.Contains(err.Error(), "fix:") {
		t.Errorf("a parameter error got a token fix: %v", err)
	}
}

// An upload whose first attempt got no answer and whose retry was refused
// says so: the key may be stored although the last word was a refusal.
func TestAnEarlierUncertainAttemptIsReported(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		writeGraphError(w, 400, gErr{Code: 100, Message: "(#100) Invalid parameter"})
	})
	err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pkixPEM(t, &key2048().PublicKey))
	var ge *Error
	if !errors.As(err, &ge) || ge.Uncertain != "attempt 1: HTTP 502" || ge.Attempts != 2 {
		t.Fatalf("err = %v, Uncertain %q; want attempt 1's 502 recorded", err, ge.Uncertain)
	}
	if want := "after 2 attempts (attempt 1: HTTP 502, outcome unknown)"; !strings.Contains(err.Error(), want) {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}
