package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// throttled answers every call with a Graph rate-limit error of code, with
// Meta's X-Business-Use-Case-Usage estimate in minutes (< 0: no BUC
// header, only X-App-Usage, as code 4 comes).
func throttled(code int, minutes float64) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		if minutes >= 0 {
			w.Header().Set(usageHeader, fmt.Sprintf(`{"102290129340398":[{"type":"whatsapp","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":%g}]}`, minutes))
		} else {
			w.Header().Set("X-App-Usage", `{"call_count":100,"total_cputime":12,"total_time":9}`)
		}
		writeGraphError(w, 400, gErr{Message: fmt.Sprintf("(#%d) throttled", code), Type: "OAuthException", Code: code})
	}
}

// Every throttling code Graph documents is a rate limit: 4 (app), 17
// (user), 32 (page), 613 (calls within an hour), the business-use-case
// family 80000-80014, 130429 and 131056 (Cloud API throughput).
func TestEveryThrottlingCodeIsARateLimit(t *testing.T) {
	for _, code := range []int{4, 17, 32, 613, 80000, 80001, 80004, 80007, 80008, 80014, 130429, 131056} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newServer(t, throttled(code, 30))
			c := newClient(t, s)
			waits := recordSleep(c)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
			var ge *Error
			if !errors.As(err, &ge) || !ge.RateLimited || !ge.Retryable || ge.Code != code {
				t.Fatalf("err = %v, want a retryable rate limit with code %d", err, code)
			}
			if s.n() != 1 || len(*waits) != 0 {
				t.Errorf("a 30 min estimate beyond a 1 min deadline cost %d calls and waits %v, want 1 call, no wait", s.n(), *waits)
			}
		})
	}
	for _, code := range []int{79999, 80015, 131055, 131057, 612, 614} {
		s := newServer(t, throttled(code, 30))
		_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || ge.RateLimited {
			t.Errorf("code %d: err = %v, want no rate limit", code, err)
		}
	}
}

// A rate limit without a usable estimate costs no extra call: a retry
// after a backoff of milliseconds cannot outlast a window Meta counts in
// hours, and every call counts against a budget of about 200 an hour.
func TestRateLimitWithoutAnEstimateFailsAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		handler func(int, http.ResponseWriter, *http.Request)
	}{
		{"code 4 with only X-App-Usage", throttled(4, -1)},
		{"80007 with an estimate of 0", throttled(80007, 0)},
		{"HTTP 429 without a body", func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.handler)
			c := newClient(t, s, func(o *Options) { o.MaxAttempts = 5 })
			waits := recordSleep(c)
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
			var ge *Error
			if !errors.As(err, &ge) || !ge.RateLimited {
				t.Fatalf("err = %v, want a rate limit", err)
			}
			if s.n() != 1 || len(*waits) != 0 {
				t.Errorf("cost %d calls and waits %v, want 1 call and no wait", s.n(), *waits)
			}
			if want := "rate limited, retry later"; !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}

// A usable estimate is waited out once, if the wait and a whole request
// still fit before the deadline; a second rate limit ends the call.
func TestRateLimitIsWaitedOutAtMostOnce(t *testing.T) {
	s := newServer(t, throttled(80007, 1))
	c := newClient(t, s, func(o *Options) { o.MaxAttempts = 5 })
	waits := recordSleep(c)
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
	var ge *Error
	if !errors.As(err, &ge) || !ge.RateLimited || ge.Attempts != 2 {
		t.Fatalf("err = %v, want a rate limit after 2 attempts", err)
	}
	if s.n() != 2 || fmt.Sprint(*waits) != fmt.Sprint([]time.Duration{time.Minute}) {
		t.Errorf("cost %d calls and waits %v, want 2 calls after one 1m wait", s.n(), *waits)
	}
}

func TestNoWaitUnlessARequestStillFitsAfterIt(t *testing.T) {
	t.Run("rate-limit estimate", func(t *testing.T) {
		// 0.1 min = 6 s: within a 10 s deadline, but not with a 5 s
		// request after it.
		s := newServer(t, throttled(80007, 0.1))
		c := newClient(t, s)
		waits := recordSleep(c)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || !ge.RateLimited {
			t.Fatalf("err = %v, want the rate limit", err)
		}
		if s.n() != 1 || len(*waits) != 0 {
			t.Errorf("cost %d calls and waits %v, want 1 call and no wait", s.n(), *waits)
		}
	})
	t.Run("backoff", func(t *testing.T) {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		c := newClient(t, s, func(o *Options) { o.RequestTimeout = time.Hour })
		waits := recordSleep(c)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := c.GetPublicKey(ctx, testAuth(), phoneID); err == nil {
			t.Fatal("want the 503")
		}
		if s.n() != 1 || len(*waits) != 0 {
			t.Errorf("cost %d calls and waits %v; a retry that cannot run its request timeout is not made", s.n(), *waits)
		}
	})
}

func TestIsTransientIsHonoured(t *testing.T) {
	transient := func(code int, v bool) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "x", "type": "OAuthException", "code": code, "is_transient": v}})
		}
	}
	tests := []struct {
		name      string
		handler   func(int, http.ResponseWriter, *http.Request)
		calls     int
		retryable bool
	}{
		{"code 1 marked transient is retried", transient(1, true), 3, true},
		{"code 2 marked transient is retried", transient(2, true), 3, true},
		{"131000 marked not transient is not", transient(131000, false), 1, false},
		{"a rate limit marked transient keeps the rate-limit rule", transient(80007, true), 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.handler)
			_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
			var ge *Error
			if !errors.As(err, &ge) || ge.Retryable != tc.retryable || s.n() != tc.calls {
				t.Errorf("err = %v after %d calls, want Retryable=%v after %d", err, s.n(), tc.retryable, tc.calls)
			}
		})
	}
}

// An HTTP 200 whose body is a Graph error object is that error: it is not
// a malformed answer, and a permanent code is not retried.
func TestGraphErrorOnHTTP200IsTheGraphError(t *testing.T) {
	for _, call := range []string{"get", "upload", "list"} {
		t.Run(call, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeGraphError(w, 200, gErr{Message: "(#100) Invalid parameter", Type: "OAuthException", Code: 100, FBTraceID: "Zz9"})
			})
			c := newClient(t, s)
			var err error
			switch call {
			case "get":
				_, err = c.GetPublicKey(t.Context(), testAuth(), phoneID)
			case "upload":
				err = c.UploadPublicKey(t.Context(), testAuth(), phoneID, pkixPEM(t, &key2048().PublicKey))
			case "list":
				_, err = c.PhoneNumbers(t.Context(), testAuth(), "102290129340398")
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.Code != 100 || ge.HTTPStatus != 200 || ge.Retryable || errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("err = %v, want Graph code 100 on HTTP 200, not retried, not malformed", err)
			}
			if s.n() != 1 {
				t.Errorf("server saw %d calls, want 1", s.n())
			}
			if want := "HTTP 200 code 100 (OAuthException): (#100) Invalid parameter [fbtrace_id Zz9] after 1 attempt"; !strings.Contains(err.Error(), want) {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}
