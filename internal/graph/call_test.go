package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/wait"
)

func okKeyBody(w http.ResponseWriter) {
	writeJSON(w, 200, map[string]any{"data": []any{}})
}

// TestErrorClasses drives GetPublicKey through every row of the retry table
// with MaxAttempts 3 and checks how many requests the server saw.
func TestErrorClasses(t *testing.T) {
	graphErr := func(status, code, sub int) func(*testing.T, int, http.ResponseWriter, *http.Request) {
		return func(_ *testing.T, _ int, w http.ResponseWriter, _ *http.Request) {
			writeGraphError(w, status, gErr{Message: fmt.Sprintf("(#%d) test", code), Type: "OAuthException", Code: code, Subcode: sub, FBTraceID: "AbC"})
		}
	}
	failThenOK := func(failures int, fail func(*testing.T, int, http.ResponseWriter, *http.Request)) func(*testing.T, int, http.ResponseWriter, *http.Request) {
		return func(t *testing.T, n int, w http.ResponseWriter, r *http.Request) {
			if n <= failures {
				fail(t, n, w, r)
				return
			}
			okKeyBody(w)
		}
	}
	status := func(code int, body string) func(*testing.T, int, http.ResponseWriter, *http.Request) {
		return func(_ *testing.T, _ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, body)
		}
	}
	dropConn := func(t *testing.T, _ int, w http.ResponseWriter, _ *http.Request) { drop(t)(w) }
	block := func(_ *testing.T, _ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

	type want struct {
		calls       int
		ok          bool
		status      int
		code        int
		retryable   bool
		rateLimited bool
		errIs       error
	}
	tests := []struct {
		name    string
		handler func(*testing.T, int, http.ResponseWriter, *http.Request)
		opts    func(*Options)
		want    want
	}{
		{name: "code 0 auth", handler: graphErr(400, 0, 0), want: want{calls: 1, status: 400}},
		{name: "code 3 capability", handler: graphErr(400, 3, 0), want: want{calls: 1, status: 400, code: 3}},
		{name: "code 10 permission", handler: graphErr(403, 10, 0), want: want{calls: 1, status: 403, code: 10}},
		{name: "code 190 token", handler: graphErr(401, 190, 463), want: want{calls: 1, status: 401, code: 190}},
		{name: "code 200 permission", handler: graphErr(403, 200, 0), want: want{calls: 1, status: 403, code: 200}},
		{name: "code 250 permission", handler: graphErr(403, 250, 0), want: want{calls: 1, status: 403, code: 250}},
		{name: "code 299 permission", handler: graphErr(403, 299, 0), want: want{calls: 1, status: 403, code: 299}},
		{name: "code 100 parameter", handler: graphErr(400, 100, 0), want: want{calls: 1, status: 400, code: 100}},
		{name: "code 100 subcode 33", handler: graphErr(400, 100, 33), want: want{calls: 1, status: 400, code: 100}},
		{name: "code 33 deleted", handler: graphErr(400, 33, 0), want: want{calls: 1, status: 400, code: 33}},
		{name: "code 100 on HTTP 500 is still permanent", handler: graphErr(500, 100, 0), want: want{calls: 1, status: 500, code: 100}},
		// A permanent code wins over a 5xx status.
		{name: "code 0 on HTTP 500", handler: graphErr(500, 0, 0), want: want{calls: 1, status: 500}},
		{name: "code 3 on HTTP 500", handler: graphErr(500, 3, 0), want: want{calls: 1, status: 500, code: 3}},
		{name: "code 10 on HTTP 500", handler: graphErr(500, 10, 0), want: want{calls: 1, status: 500, code: 10}},
		{name: "code 190 on HTTP 500", handler: graphErr(500, 190, 0), want: want{calls: 1, status: 500, code: 190}},
		{name: "code 200 on HTTP 500", handler: graphErr(500, 200, 0), want: want{calls: 1, status: 500, code: 200}},
		{name: "code 299 on HTTP 500", handler: graphErr(500, 299, 0), want: want{calls: 1, status: 500, code: 299}},
		{name: "code 33 on HTTP 500", handler: graphErr(500, 33, 0), want: want{calls: 1, status: 500, code: 33}},
		{name: "subcode 33 under a retryable code", handler: graphErr(500, 131000, 33), want: want{calls: 1, status: 500, code: 131000}},
		{name: "code 300 on HTTP 500 is retried", handler: graphErr(500, 300, 0), want: want{calls: 3, status: 500, code: 300, retryable: true}},
		{name: "other 4xx code", handler: graphErr(400, 1, 0), want: want{calls: 1, status: 400, code: 1}},
		{name: "HTTP 404 html", handler: status(404, "<html>not found</html>"), want: want{calls: 1, status: 404}},
		// Rate limits without Meta's estimate cost no second call (see
		// throttle_test.go for the estimate).
		{name: "code 4 app rate limit", handler: graphErr(400, 4, 0), want: want{calls: 1, status: 400, code: 4, retryable: true, rateLimited: true}},
		{name: "code 80007 WABA rate limit", handler: graphErr(400, 80007, 0), want: want{calls: 1, status: 400, code: 80007, retryable: true, rateLimited: true}},
		{name: "code 130429 throughput", handler: graphErr(400, 130429, 0), want: want{calls: 1, status: 400, code: 130429, retryable: true, rateLimited: true}},
		{name: "HTTP 429 without body", handler: status(429, ""), want: want{calls: 1, status: 429, retryable: true, rateLimited: true}},
		{name: "code 131000 always", handler: graphErr(500, 131000, 0), want: want{calls: 3, status: 500, code: 131000, retryable: true}},
		{name: "code 131000 on HTTP 400", handler: graphErr(400, 131000, 0), want: want{calls: 3, status: 400, code: 131000, retryable: true}},
		{name: "code 131000 twice then success", handler: failThenOK(2, graphErr(500, 131000, 0)), want: want{calls: 3, ok: true}},
		{name: "code 2 on HTTP 503", handler: graphErr(503, 2, 0), want: want{calls: 3, status: 503, code: 2, retryable: true}},
		{name: "HTTP 500", handler: status(500, ""), want: want{calls: 3, status: 500, retryable: true}},
		{name: "HTTP 502 html", handler: status(502, "<html>bad gateway</html>"), want: want{calls: 3, status: 502, retryable: true}},
		{name: "HTTP 503 then success", handler: failThenOK(1, status(503, "")), want: want{calls: 2, ok: true}},
		{name: "dropped connection", handler: dropConn, want: want{calls: 3, retryable: true, errIs: io.EOF}},
		{name: "dropped connection twice then success", handler: failThenOK(2, dropConn), want: want{calls: 3, ok: true}},
		{name: "attempt timeout", handler: block, opts: func(o *Options) { o.RequestTimeout = 30 * time.Millisecond },
			want: want{calls: 3, retryable: true, errIs: context.DeadlineExceeded}},
		{name: "malformed JSON on 200", handler: status(200, `{"data":[`), want: want{calls: 3, status: 200, retryable: true, errIs: ErrMalformedResponse}},
		{name: "html on 200", handler: status(200, `<html>captive portal</html>`), want: want{calls: 3, status: 200, retryable: true, errIs: ErrMalformedResponse}},
		{name: "null on 200", handler: status(200, `null`), want: want{calls: 3, status: 200, retryable: true, errIs: ErrMalformedResponse}},
		{name: "endless 200 body", handler: func(_ *testing.T, _ int, w http.ResponseWriter, _ *http.Request) {
			chunk := []byte(strings.Repeat("a", 64<<10))
			for {
				if _, err := w.Write(chunk); err != nil {
					return // the client hung up after its cap
				}
			}
		}, want: want{calls: 3, status: 200, retryable: true, errIs: ErrMalformedResponse}},
		{name: "malformed once then success", handler: failThenOK(1, status(200, `{`)), want: want{calls: 2, ok: true}},
		// Valid JSON, so only the size cap can reject it.
		{name: "oversized 200", handler: status(200, `{"data":[],"x":"`+strings.Repeat("a", maxBody)+`"}`), want: want{calls: 3, status: 200, retryable: true, errIs: ErrMalformedResponse}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) { tc.handler(t, n, w, r) })
			var mods []func(*Options)
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			c := newClient(t, s, mods...)
			reg, err := c.GetPublicKey(t.Context(), testAuth(), phoneID)
			if got := s.n(); got != tc.want.calls {
				t.Errorf("server saw %d calls, want %d", got, tc.want.calls)
			}
			if tc.want.ok {
				if err != nil || reg == nil {
					t.Fatalf("GetPublicKey = %v, %v; want success", reg, err)
				}
				return
			}
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if reg != nil {
				t.Errorf("registration %+v returned with an error", reg)
			}
			if ge.Attempts != tc.want.calls {
				t.Errorf("Attempts = %d, want %d", ge.Attempts, tc.want.calls)
			}
			if ge.HTTPStatus != tc.want.status || ge.Code != tc.want.code {
				t.Errorf("HTTP %d code %d, want HTTP %d code %d", ge.HTTPStatus, ge.Code, tc.want.status, tc.want.code)
			}
			if ge.Retryable != tc.want.retryable || ge.RateLimited != tc.want.rateLimited {
				t.Errorf("Retryable=%v RateLimited=%v, want %v %v", ge.Retryable, ge.RateLimited, tc.want.retryable, tc.want.rateLimited)
			}
			if ge.Op != "get" || ge.Object != phoneID {
				t.Errorf("Op/Object = %q/%q", ge.Op, ge.Object)
			}
			if tc.want.errIs != nil && !errors.Is(err, tc.want.errIs) {
				t.Errorf("errors.Is(err, %v) is false; err = %v", tc.want.errIs, err)
			}
			if !strings.HasPrefix(err.Error(), "graph get "+phoneID+": ") {
				t.Errorf("Error() = %q, want the op and object first", err)
			}
			assertNoSecret(t, err.Error(), testToken)
		})
	}
}

func TestGraphErrorFields(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeGraphError(w, 400, gErr{
			Message: "(#100) Invalid parameter", Type: "OAuthException", Code: 100, Subcode: 33, FBTraceID: "AbC",
			ErrorData: map[string]string{"messaging_product": "whatsapp", "details": "Phone number deleted"},
		})
	})
	err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pkixPEM(t, &key2048().PublicKey))
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want *Error", err)
	}
	want := Error{Op: "upload", Object: phoneID, HTTPStatus: 400, Code: 100, Subcode: 33, Type: "OAuthException",
		Message: "(#100) Invalid parameter", Details: "Phone number deleted", FBTraceID: "AbC", Attempts: 1, Failure: FailureGraph, TokenSecret: testTokenSecret}
	got := *ge
	got.Err = nil
	if got != want {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	const text = "graph upload 106540352242922: HTTP 400 code 100 subcode 33 (OAuthException): (#100) Invalid parameter (Phone number deleted) [fbtrace_id AbC] after 1 attempt"
	if err.Error() != text {
		t.Errorf("Error() =\n%s\nwant\n%s", err, text)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Op: "upload", Object: phoneID, HTTPStatus: 400, Code: 100, Subcode: 33, Type: "OAuthException", Message: "msg", FBTraceID: "AbC", Attempts: 1, Failure: FailureGraph},
			"graph upload 106540352242922: HTTP 400 code 100 subcode 33 (OAuthException): msg [fbtrace_id AbC] after 1 attempt"},
		{Error{Op: "get", Object: "1", HTTPStatus: 400, Code: 0, Type: "OAuthException", Message: "cannot authenticate", Attempts: 1, Failure: FailureGraph, TokenSecret: "tok"},
			"graph get 1: HTTP 400 code 0 (OAuthException): cannot authenticate after 1 attempt; fix: Meta cannot authenticate the app user of the token; generate a new system user token for the app and store it in secret tok"},
		{Error{Op: "upload", Object: "1", HTTPStatus: 400, Code: 80007, Attempts: 2, RateLimited: true, Retryable: true, Failure: FailureGraph, Uncertain: "attempt 1: no response (timeout)"},
			"graph upload 1: HTTP 400 code 80007 after 2 attempts (attempt 1: no response (timeout), outcome unknown); rate limited, retry later"},
		{Error{Op: "get", Object: "1", Attempts: 3, Retryable: true, Failure: FailureTransport, Transport: TransportReset, Err: errors.New("read: connection reset by peer")},
			"graph get 1: no response (connection reset): read: connection reset by peer after 3 attempts"},
		{Error{Op: "get", Object: "1", HTTPStatus: 200, Attempts: 1, Retryable: true, Failure: FailureTransport, Transport: TransportEOF, Err: io.ErrUnexpectedEOF},
			"graph get 1: HTTP 200, then the body was cut off (EOF): unexpected EOF after 1 attempt"},
		{Error{Op: "get", Object: "1", HTTPStatus: 400, Code: 80007, Message: "Rate limit hit", Attempts: 1, RateLimited: true, Retryable: true, RegainAccessIn: 90 * time.Second, Failure: FailureGraph},
			"graph get 1: HTTP 400 code 80007: Rate limit hit after 1 attempt; rate limited, retry after ~2 min"},
		{Error{Op: "get", Object: "1", HTTPStatus: 429, Attempts: 3, RateLimited: true, Retryable: true, Err: errors.New("no Graph error object in the body (empty body)")},
			"graph get 1: HTTP 429: no Graph error object in the body (empty body) after 3 attempts; rate limited, retry later"},
		{Error{Op: "get", Object: "1", HTTPStatus: 500, Code: 131000, Attempts: 1, Retryable: true, RegainAccessIn: 5 * time.Minute, Failure: FailureGraph},
			"graph get 1: HTTP 500 code 131000 after 1 attempt; Meta's usage header says access returns in ~5 min"},
		{Error{Op: "list", Object: "2", Attempts: 5, Retryable: true, Err: io.EOF},
			"graph list 2: no response: EOF after 5 attempts"},
		{Error{Op: "get", Object: "1", Err: context.Canceled},
			"graph get 1: no response: context canceled before any attempt"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
		}
	}
}

func TestTransportErrorText(t *testing.T) {
	t.Run("dropped", func(t *testing.T) {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { drop(t)(w) })
		_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
		const want = "graph get 106540352242922: no response (EOF): EOF after 3 attempts"
		if err == nil || err.Error() != want {
			t.Errorf("Error() = %v, want %s", err, want)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		s := newServer(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		_, err := newClient(t, s, func(o *Options) { o.RequestTimeout = 20 * time.Millisecond; o.MaxAttempts = 1 }).GetPublicKey(t.Context(), testAuth(), phoneID)
		const want = "graph get 106540352242922: no response (timeout): the 20ms request timeout passed: context deadline exceeded after 1 attempt"
		if err == nil || err.Error() != want {
			t.Errorf("Error() = %v, want %s", err, want)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		s := newServer(t, func(int, http.ResponseWriter, *http.Request) {})
		c := newClient(t, s)
		s.Close() // nothing listens on the port any more
		_, err := c.GetPublicKey(t.Context(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || ge.Attempts != 3 || !ge.Retryable || ge.HTTPStatus != 0 {
			t.Errorf("err = %v, want 3 retryable attempts without response", err)
		}
	})
	t.Run("TLS to a plain HTTP port is permanent", func(t *testing.T) {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { okKeyBody(w) })
		c, err := New(s.Client(), func() Options {
			o := testOptions(strings.Replace(s.URL, "http://", "https://", 1))
			return o
		}())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetPublicKey(t.Context(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || ge.Attempts != 1 || ge.Retryable {
			t.Errorf("err = %v, want one permanent attempt", err)
		}
	})
}

func TestRateLimit(t *testing.T) {
	usage := func(minutes int) string {
		return fmt.Sprintf(`{"102290129340398":[{"type":"whatsapp","call_count":100,"total_cputime":12,"total_time":9,"estimated_time_to_regain_access":%d},{"type":"other","call_count":3,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}`, minutes)
	}
	limited := func(minutes int, okAfter int) func(int, http.ResponseWriter, *http.Request) {
		return func(n int, w http.ResponseWriter, _ *http.Request) {
			if okAfter > 0 && n > okAfter {
				okKeyBody(w)
				return
			}
			if minutes >= 0 {
				w.Header().Set(usageHeader, usage(minutes))
			}
			writeGraphError(w, 400, gErr{Message: "(#80007) Rate limit hit for WhatsApp Business Account", Type: "OAuthException", Code: 80007, FBTraceID: "Xy1"})
		}
	}

	t.Run("regain beyond deadline: one call", func(t *testing.T) {
		s := newServer(t, limited(10, 0))
		c := newClient(t, s)
		waits := recordSleep(c)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) {
			t.Fatalf("err = %v", err)
		}
		if s.n() != 1 || len(*waits) != 0 {
			t.Errorf("server saw %d calls and the client waited %v; want 1 call, no wait", s.n(), *waits)
		}
		if ge.RegainAccessIn != 10*time.Minute || !ge.RateLimited || !ge.Retryable {
			t.Errorf("RegainAccessIn=%v RateLimited=%v Retryable=%v", ge.RegainAccessIn, ge.RateLimited, ge.Retryable)
		}
		const text = "graph get 106540352242922: HTTP 400 code 80007 (OAuthException): (#80007) Rate limit hit for WhatsApp Business Account [fbtrace_id Xy1] after 1 attempt; rate limited, retry after ~10 min"
		if err.Error() != text {
			t.Errorf("Error() =\n%s\nwant\n%s", err, text)
		}
	})
	t.Run("regain within deadline: waited out and retried", func(t *testing.T) {
		s := newServer(t, limited(1, 1))
		c := newClient(t, s)
		waits := recordSleep(c)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		if _, err := c.GetPublicKey(ctx, testAuth(), phoneID); err != nil {
			t.Fatal(err)
		}
		if s.n() != 2 || len(*waits) != 1 || (*waits)[0] != time.Minute {
			t.Errorf("server saw %d calls, waits %v; want 2 calls after one 1m wait", s.n(), *waits)
		}
	})
	t.Run("regain without deadline longer than MaxBackoff: one call", func(t *testing.T) {
		s := newServer(t, limited(1, 0))
		c := newClient(t, s)
		waits := recordSleep(c)
		_, err := c.GetPublicKey(context.Background(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || s.n() != 1 || len(*waits) != 0 || ge.RegainAccessIn != time.Minute {
			t.Errorf("err=%v calls=%d waits=%v", err, s.n(), *waits)
		}
	})
	// Without an estimate a retry is a guess that costs a call of the
	// hourly budget: the call fails at once and says to retry later.
	t.Run("no usage header: one call", func(t *testing.T) {
		s := newServer(t, limited(-1, 2))
		c := newClient(t, s)
		waits := recordSleep(c)
		_, err := c.GetPublicKey(context.Background(), testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || !ge.RateLimited || s.n() != 1 || len(*waits) != 0 {
			t.Errorf("err=%v calls=%d waits=%v, want the rate limit after 1 call and no wait", err, s.n(), *waits)
		}
	})
	t.Run("regain zero within deadline: one call", func(t *testing.T) {
		s := newServer(t, limited(0, 1))
		c := newClient(t, s)
		waits := recordSleep(c)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
		var ge *Error
		if !errors.As(err, &ge) || !ge.RateLimited || s.n() != 1 || len(*waits) != 0 {
			t.Errorf("err=%v calls=%d waits=%v, want the rate limit after 1 call and no wait", err, s.n(), *waits)
		}
	})
}

func TestRegainAccessIn(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   time.Duration
	}{
		{"absent", nil, 0},
		{"empty", []string{""}, 0},
		{"not JSON", []string{"garbage"}, 0},
		{"array", []string{`[1,2]`}, 0},
		{"entries not a list", []string{`{"1":"x"}`}, 0},
		{"entry not an object", []string{`{"1":[7]}`}, 0},
		{"field missing", []string{`{"1":[{"call_count":100}]}`}, 0},
		{"one", []string{`{"1":[{"estimated_time_to_regain_access":7}]}`}, 7 * time.Minute},
		{"string number", []string{`{"1":[{"estimated_time_to_regain_access":"7"}]}`}, 7 * time.Minute},
		{"fraction", []string{`{"1":[{"estimated_time_to_regain_access":0.5}]}`}, 30 * time.Second},
		{"max across businesses and entries", []string{`{"1":[{"estimated_time_to_regain_access":3},{"estimated_time_to_regain_access":12}],"2":[{"estimated_time_to_regain_access":5}]}`}, 12 * time.Minute},
		{"malformed business skipped", []string{`{"1":"bad","2":[{"estimated_time_to_regain_access":4}]}`}, 4 * time.Minute},
		{"several header lines", []string{`bad`, `{"2":[{"estimated_time_to_regain_access":6}]}`}, 6 * time.Minute},
		{"negative", []string{`{"1":[{"estimated_time_to_regain_access":-5}]}`}, 0},
		{"huge is capped", []string{`{"1":[{"estimated_time_to_regain_access":1e300}]}`}, maxRegain},
		{"not a number", []string{`{"1":[{"estimated_time_to_regain_access":"soon"}]}`}, 0},
	}
	for _, tc := range tests {
		if got := regainAccessIn(tc.values); got != tc.want {
			t.Errorf("%s: regainAccessIn = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeGraphError(w, 500, gErr{Code: 131000, Message: "Something went wrong"})
	})
	c := newClient(t, s, func(o *Options) {
		o.MaxAttempts = 6
		o.BaseBackoff = 100 * time.Millisecond
		o.MaxBackoff = 300 * time.Millisecond
		o.Jitter = func() float64 { return 1 }
	})
	waits := recordSleep(c)
	_, err := c.GetPublicKey(context.Background(), testAuth(), phoneID)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
	if fmt.Sprint(*waits) != fmt.Sprint(want) || s.n() != 6 {
		t.Errorf("waits %v over %d calls, want %v over 6", *waits, s.n(), want)
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Attempts != 6 {
		t.Errorf("err = %v, want 6 attempts", err)
	}

	jitters := []struct {
		j    float64
		want time.Duration
	}{{0, 0}, {0.25, 25 * time.Millisecond}, {-1, 0}, {7, 100 * time.Millisecond}}
	for _, j := range jitters {
		c.opts.Jitter = func() float64 { return j.j }
		if got := c.backoff(1); got != j.want {
			t.Errorf("jitter %v: backoff = %v, want %v", j.j, got, j.want)
		}
	}
}

func TestRetryNeverOverrunsDeadline(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeGraphError(w, 500, gErr{Code: 131000, Message: "Something went wrong"})
	})
	c := newClient(t, s, func(o *Options) { o.BaseBackoff = time.Hour; o.MaxBackoff = 2 * time.Hour })
	waits := recordSleep(c)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
	var ge *Error
	if !errors.As(err, &ge) || ge.Attempts != 1 || ge.Code != 131000 || !ge.Retryable {
		t.Errorf("err = %v, want the first 131000 after 1 attempt", err)
	}
	if s.n() != 1 || len(*waits) != 0 {
		t.Errorf("calls=%d waits=%v, want 1 call and no wait", s.n(), *waits)
	}
}

func TestCallerDeadlineDuringAttempt(t *testing.T) {
	s := newServer(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c := newClient(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
	var ge *Error
	if !errors.As(err, &ge) || ge.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) || !ge.Retryable {
		t.Errorf("err = %v, want 1 attempt ending in the caller's deadline", err)
	}
	if s.n() != 1 {
		t.Errorf("server saw %d calls, want 1", s.n())
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := newClient(t, s, func(o *Options) {
		// A real hour-long wait: only the cancellation can end it.
		o.BaseBackoff, o.MaxBackoff = time.Hour, time.Hour
		o.Jitter = func() float64 { return 1 }
		o.Observe = func(call Call) {
			if call.Retrying {
				cancel()
			}
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := c.GetPublicKey(ctx, testAuth(), phoneID)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		// A guard, not synchronisation: without it a broken wait would
		// hang the package for go test's 10-minute timeout.
		t.Fatal("GetPublicKey still waiting 10s after the context was canceled")
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Attempts != 1 || ge.HTTPStatus != 503 || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the 503 of attempt 1 and context.Canceled", err)
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { okKeyBody(w) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newClient(t, s).GetPublicKey(ctx, testAuth(), phoneID)
	var ge *Error
	if !errors.As(err, &ge) || ge.Attempts != 0 || !errors.Is(err, context.Canceled) || s.n() != 0 {
		t.Errorf("err = %v, calls %d; want context.Canceled before any attempt", err, s.n())
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := wait.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx(canceled, 1h) = %v", err)
	}
	if err := wait.Sleep(t.Context(), time.Microsecond); err != nil {
		t.Errorf("sleepCtx(1µs) = %v", err)
	}
}

func TestObserve(t *testing.T) {
	s := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			writeGraphError(w, 500, gErr{Code: 131000})
			return
		}
		okKeyBody(w)
	})
	var calls []Call
	c := newClient(t, s, func(o *Options) { o.Observe = func(c Call) { c.Duration = 0; calls = append(calls, c) } })
	if _, err := c.GetPublicKey(t.Context(), testAuth(), phoneID); err != nil {
		t.Fatal(err)
	}
	want := []Call{
		{Op: "get", Object: phoneID, Attempt: 1, HTTPStatus: 500, Failure: FailureGraph, Code: 131000, Retrying: true},
		{Op: "get", Object: phoneID, Attempt: 2, HTTPStatus: 500, Failure: FailureGraph, Code: 131000, Retrying: true},
		{Op: "get", Object: phoneID, Attempt: 3, HTTPStatus: 200},
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("Observe saw\n%v\nwant\n%v", calls, want)
	}
}

func TestTokenRedactedFromErrors(t *testing.T) {
	echo := func(status int) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			auth := r.Header.Get("Authorization")
			tok := strings.TrimPrefix(auth, "Bearer ")
			writeGraphError(w, status, gErr{
				Message:   "Malformed access token " + tok,
				Type:      "OAuthException " + tok,
				Code:      190,
				FBTraceID: tok,
				ErrorData: map[string]string{"details": "token=" + tok},
				UserMsg:   auth,
			})
		}
	}
	tests := []struct {
		name    string
		handler func(int, http.ResponseWriter, *http.Request)
		shown   bool // the echo reaches the error text, so [redacted] must
	}{
		{"graph error echoes token", echo(400), true},
		{"non-Graph 502 body echoes header", func(_ int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>upstream rejected Authorization: %s</html>", r.Header.Get("Authorization"))
		}, true},
		{"200 that echoes token is malformed", func(_ int, w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"data": %s`, r.Header.Get("Authorization"))
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.handler)
			_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
			if err == nil {
				t.Fatal("want an error")
			}
			var ge *Error
			errors.As(err, &ge)
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", *ge), ge.Message, ge.Details, ge.Type, ge.FBTraceID} {
				assertNoSecret(t, text, testToken)
			}
			if tc.shown && !strings.Contains(err.Error(), redacted) {
				t.Errorf("Error() = %q, want the token replaced by %s", err, redacted)
			}
		})
	}
}

func TestControlCharactersCleaned(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeGraphError(w, 400, gErr{Code: 100, Message: "line one\n\x1b[31mline\ttwo\r\n" + strings.Repeat("x", 2000)})
	})
	_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatal(err)
	}
	if strings.ContainsAny(err.Error(), "\n\r\t\x1b") || !strings.HasPrefix(ge.Message, "line one [31mline two xxx") || len([]rune(ge.Message)) > 501 {
		t.Errorf("Message = %.80q… (%d runes), want one clean, clipped line", ge.Message, len([]rune(ge.Message)))
	}
}
