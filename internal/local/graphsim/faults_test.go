package graphsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFaultKinds is long for its table: one case per fault kind and body
// shape, each checked, then the call after it checked untouched.
func TestFaultKinds(t *testing.T) {
	cases := []struct {
		name   string
		fault  Fault
		rq     func(f *fixture, t *testing.T) response
		status int
		check  func(t *testing.T, r response)
	}{
		{
			name:   "graph error 131000 with Graph's status",
			fault:  Fault{Op: OpUpload, Kind: FaultGraphError, Code: 131000, Times: 1},
			status: 500,
			check: func(t *testing.T, r response) {
				ge := r.graphErr(t)
				if ge.Error.Code != 131000 || ge.Error.Type != "OAuthException" || ge.Error.ErrorData == nil || ge.Error.ErrorData.MessagingProduct != "whatsapp" {
					t.Errorf("error = %+v", ge.Error)
				}
			},
		},
		{
			name:   "graph error 190 subcode 463 with explicit status",
			fault:  Fault{Kind: FaultGraphError, Code: 190, Subcode: 463, Status: 400, Message: "Error validating access token: Session has expired", Times: 1},
			status: 400,
			check: func(t *testing.T, r response) {
				ge := r.graphErr(t)
				if ge.Error.Code != 190 || ge.Error.Subcode != 463 || !strings.HasPrefix(ge.Error.Message, "Error validating") {
					t.Errorf("error = %+v", ge.Error)
				}
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `"invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
			},
		},
		{
			name:   "graph error 10 is 403",
			fault:  Fault{Kind: FaultGraphError, Code: 10, Times: 1},
			status: 403,
		},
		{
			name:   "graph error 4 carries a usage header",
			fault:  Fault{Kind: FaultGraphError, Code: 4, RegainAccess: 90 * time.Second, Times: 1},
			status: 400,
			check: func(t *testing.T, r response) {
				want := `{"` + testWABA + `":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":2}]}`
				if got := r.header.Get("X-Business-Use-Case-Usage"); got != want {
					t.Errorf("X-Business-Use-Case-Usage = %s\nwant %s", got, want)
				}
			},
		},
		{
			// App-level throttling comes with X-App-Usage alone: no estimate.
			name:   "graph error 4 without an estimate carries only X-App-Usage",
			fault:  Fault{Kind: FaultGraphError, Code: 4, Times: 1},
			status: 400,
			check: func(t *testing.T, r response) {
				if got := r.header.Get("X-Business-Use-Case-Usage"); got != "" {
					t.Errorf("X-Business-Use-Case-Usage = %s, want none", got)
				}
				if got, want := r.header.Get("X-App-Usage"), `{"call_count":100,"total_cputime":25,"total_time":25}`; got != want {
					t.Errorf("X-App-Usage = %s, want %s", got, want)
				}
			},
		},
		{
			name:   "graph error 80004 carries an estimate of 0",
			fault:  Fault{Kind: FaultGraphError, Code: 80004, Times: 1},
			status: 400,
			check: func(t *testing.T, r response) {
				want := `{"` + testWABA + `":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":0}]}`
				if got := r.header.Get("X-Business-Use-Case-Usage"); got != want {
					t.Errorf("X-Business-Use-Case-Usage = %s\nwant %s", got, want)
				}
			},
		},
		{
			name:   "plain 503",
			fault:  Fault{Kind: FaultHTTPStatus, Status: 503, Times: 1},
			status: 503,
			check: func(t *testing.T, r response) {
				if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "503 Service Unavailable") {
					t.Errorf("body %q, type %q", r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name:   "plain 5xx defaults to 502",
			fault:  Fault{Kind: FaultHTTPStatus, Times: 1},
			status: 502,
		},
		{
			name:  "truncated JSON",
			fault: Fault{Op: OpGet, Kind: FaultMalformed, Times: 1},
			rq: func(f *fixture, t *testing.T) response {
				return f.do(t, request{method: http.MethodGet, path: encPath(numA)})
			},
			status: 200,
			check: func(t *testing.T, r response) {
				var v any
				if err := json.Unmarshal(r.body, &v); err == nil || !strings.HasPrefix(string(r.body), `{"data":[{"business_public_key":`) {
					t.Errorf("body %q decodes or is not a truncated GET answer", r.body)
				}
			},
		},
		{
			name:   "HTML with 200",
			fault:  Fault{Kind: FaultMalformed, Malformed: MalformedHTML, Times: 1},
			status: 200,
			check: func(t *testing.T, r response) {
				if !strings.HasPrefix(string(r.body), "<!DOCTYPE html>") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
					t.Errorf("body %q type %q", r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name:   "empty body",
			fault:  Fault{Kind: FaultMalformed, Malformed: MalformedEmpty, Status: 200, Times: 1},
			status: 200,
			check: func(t *testing.T, r response) {
				if len(r.body) != 0 {
					t.Errorf("body %q", r.body)
				}
			},
		},
		{
			name:  "custom body: the guide's flat GET shape",
			fault: Fault{Op: OpGet, Kind: FaultMalformed, Body: `{"business_public_key":" ","business_public_key_signature_status":"MISMATCH"}`, Times: 1},
			rq: func(f *fixture, t *testing.T) response {
				return f.do(t, request{method: http.MethodGet, path: encPath(numA)})
			},
			status: 200,
			check: func(t *testing.T, r response) {
				if string(r.body) != `{"business_public_key":" ","business_public_key_signature_status":"MISMATCH"}` || r.header.Get("Content-Type") != "application/json; charset=UTF-8" {
					t.Errorf("body %q type %q", r.body, r.header.Get("Content-Type"))
				}
			},
		},
		{
			name:   "delay then a normal answer",
			fault:  Fault{Kind: FaultDelay, Delay: 30 * time.Millisecond, Times: 1},
			status: 200,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks := testKeys()
			f := newFixture(t, nil)
			if _, err := f.sim.AddFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			rq := tc.rq
			if rq == nil {
				rq = func(f *fixture, t *testing.T) response { return f.upload(t, numA, ks.pems[0]) }
			}
			start := time.Now()
			r := rq(f, t)
			if r.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.fault.Kind == FaultDelay && time.Since(start) < tc.fault.Delay {
				t.Errorf("answered after %s, before the %s delay", time.Since(start), tc.fault.Delay)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			if len(f.sim.Faults()) != 0 {
				t.Errorf("a Times: 1 fault is still in force after its call")
			}
			// The next call is untouched.
			if r := rq(f, t); r.status != http.StatusOK {
				t.Errorf("second call: HTTP %d %s", r.status, r.body)
			}
		})
	}
}

func TestFaultDropClosesTheConnection(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	if _, err := f.sim.AddFault(Fault{Op: OpUpload, Object: numA, Kind: FaultDrop, Times: 1}); err != nil {
		t.Fatal(err)
	}
	// A fresh connection per request: Go's transport silently retries a
	// request whose reused connection closes without an answer.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, f.srv.URL+encPath(numA),
		strings.NewReader("business_public_key="+strings.ReplaceAll(ks.pems[0], "\n", "%0A")))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := hc.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("dropped call got HTTP %d, want a transport error", res.StatusCode)
	}
	if got := f.sim.Calls(); got.Upload != 1 {
		t.Errorf("uploads counted = %d, want 1", got.Upload)
	}
	if len(f.sim.Keys()) != 0 {
		t.Errorf("a dropped upload stored the key")
	}
	reqs := f.sim.Requests()
	if last := reqs[len(reqs)-1]; last.Outcome != "fault: drop" || last.Status != 0 {
		t.Errorf("request log = %+v", last)
	}
	if r := doWith(t, hc, f.srv.URL, request{method: http.MethodGet, path: encPath(numA)}); r.status != 200 {
		t.Errorf("call after the drop: HTTP %d", r.status)
	}
}

func TestFaultDelayHonoursClientCancel(t *testing.T) {
	s, err := New(Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddPhoneNumber(testWABA, numA, "+1", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddFault(Fault{Kind: FaultDelay, Delay: time.Hour, Times: Forever}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+encPath(numA), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("got HTTP %d through an hour's delay", res.StatusCode)
	}
	// Close waits for handlers: it returns only if the delay gave up when
	// the client did.
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler kept waiting after the client left")
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Outcome != "fault: delay" || reqs[0].Status != 0 {
		t.Errorf("request log = %+v", reqs)
	}
}

func TestFaultScheduling(t *testing.T) {
	ks := testKeys()
	upload := func(f *fixture, t *testing.T, id string) int { return f.upload(t, id, ks.pems[0]).status }
	get := func(f *fixture, t *testing.T, id string) int {
		return f.do(t, request{method: http.MethodGet, path: encPath(id)}).status
	}

	t.Run("twice then success", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Op: OpUpload, Object: numA, Kind: FaultGraphError, Code: 131000, Times: 2})
		got := []int{upload(f, t, numA), upload(f, t, numA), upload(f, t, numA)}
		if got[0] != 500 || got[1] != 500 || got[2] != 200 {
			t.Errorf("statuses = %v, want [500 500 200]", got)
		}
		if c := f.sim.Calls().Of(numA); c.Upload != 3 {
			t.Errorf("uploads counted = %d, want 3 (faulted calls count)", c.Upload)
		}
	})
	t.Run("forever", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Op: OpUpload, Object: numA, Kind: FaultGraphError, Code: 100, Times: Forever})
		for i := range 5 {
			if s := upload(f, t, numA); s != 400 {
				t.Fatalf("call %d: HTTP %d, want 400", i, s)
			}
		}
		if fs := f.sim.Faults(); len(fs) != 1 || fs[0].Used != 5 {
			t.Errorf("Faults = %+v, want one with Used 5", fs)
		}
		f.sim.ClearFaults()
		if s := upload(f, t, numA); s != 200 {
			t.Errorf("after ClearFaults: HTTP %d", s)
		}
	})
	t.Run("after lets calls through first", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Op: OpUpload, Kind: FaultHTTPStatus, Status: 503, Times: 1, After: 2})
		got := []int{upload(f, t, numA), upload(f, t, numB), upload(f, t, numC), upload(f, t, numA)}
		if got[0] != 200 || got[1] != 200 || got[2] != 503 || got[3] != 200 {
			t.Errorf("statuses = %v, want [200 200 503 200]", got)
		}
	})
	t.Run("scoped by number and op", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Op: OpGet, Object: numB, Kind: FaultGraphError, Code: 131000, Times: Forever})
		if upload(f, t, numB) != 200 || get(f, t, numA) != 200 || get(f, t, numB) != 500 {
			t.Errorf("fault leaked outside GET of numB")
		}
	})
	t.Run("list faults and first match wins", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Op: OpList, Kind: FaultGraphError, Code: 2, Times: 1})
		_, _ = f.sim.AddFault(Fault{Op: OpAny, Kind: FaultGraphError, Code: 3, Times: 1})
		r := f.do(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers"})
		if r.status != 503 || r.graphErr(t).Error.Code != 2 {
			t.Errorf("first list: HTTP %d %s, want 503 code 2", r.status, r.body)
		}
		r = f.do(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers"})
		if r.status != 500 || r.graphErr(t).Error.Code != 3 {
			t.Errorf("second list: HTTP %d %s, want 500 code 3", r.status, r.body)
		}
	})
	t.Run("faults act before authentication", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _ = f.sim.AddFault(Fault{Kind: FaultHTTPStatus, Status: 502, Times: 1})
		if r := f.do(t, request{method: http.MethodGet, path: encPath(numA), auth: "Bearer wrong"}); r.status != 502 {
			t.Errorf("HTTP %d, want the scripted 502", r.status)
		}
	})
}

func TestAddFaultValidation(t *testing.T) {
	cases := []struct {
		name  string
		f     Fault
		field string
	}{
		{"no kind", Fault{Times: 1}, "kind"},
		{"unknown kind", Fault{Kind: "explode", Times: 1}, "kind"},
		{"unknown op", Fault{Op: "delete", Kind: FaultDrop, Times: 1}, "op"},
		{"bad object", Fault{Object: "abc", Kind: FaultDrop, Times: 1}, "object"},
		{"zero times", Fault{Kind: FaultDrop}, "times"},
		{"times below forever", Fault{Kind: FaultDrop, Times: -2}, "times"},
		{"negative after", Fault{Kind: FaultDrop, Times: 1, After: -1}, "after"},
		{"graph error without code", Fault{Kind: FaultGraphError, Times: 1}, "code"},
		{"negative subcode", Fault{Kind: FaultGraphError, Code: 100, Subcode: -3, Times: 1}, "subcode"},
		{"bad status", Fault{Kind: FaultHTTPStatus, Status: 999, Times: 1}, "status"},
		{"delay without duration", Fault{Kind: FaultDelay, Times: 1}, "delay"},
		{"unknown malformed shape", Fault{Kind: FaultMalformed, Malformed: "xml", Times: 1}, "malformed"},
		{"negative regain", Fault{Kind: FaultGraphError, Code: 80007, RegainAccess: -time.Minute, Times: 1}, "regain_access"},
	}
	s, _ := New(Options{Token: testToken})
	for _, tc := range cases {
		_, err := s.AddFault(tc.f)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: AddFault = %v, want InputError on %s", tc.name, err, tc.field)
		}
	}
	if len(s.Faults()) != 0 {
		t.Errorf("rejected faults were installed")
	}
}

func TestLatency(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.SetLatency(40 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := f.do(t, request{method: http.MethodGet, path: encPath(numA)}); r.status != 200 {
		t.Fatalf("HTTP %d", r.status)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("answered in %s, under the 40ms latency", d)
	}
	var ie *InputError
	if err := f.sim.SetLatency(-time.Millisecond); !errors.As(err, &ie) {
		t.Errorf("negative latency = %v", err)
	}
}

// RemoveFault ends one fault; the others keep their order and progress.
func TestRemoveFault(t *testing.T) {
	f := newFixture(t, nil)
	upload := func(f *fixture, t *testing.T, id string) int { return f.upload(t, id, testKeys().pems[0]).status }
	first, _ := f.sim.AddFault(Fault{Op: OpUpload, Kind: FaultGraphError, Code: 131000, Times: Forever})
	second, _ := f.sim.AddFault(Fault{Op: OpUpload, Kind: FaultHTTPStatus, Status: 503, Times: 2})
	if s := upload(f, t, numA); s != 500 {
		t.Fatalf("with both faults: HTTP %d, want the first one's 500", s)
	}
	if !f.sim.RemoveFault(first) {
		t.Fatal("RemoveFault of a fault in force = false")
	}
	if f.sim.RemoveFault(first) {
		t.Error("RemoveFault of a removed fault = true")
	}
	if s := upload(f, t, numA); s != 503 {
		t.Errorf("after removing the first: HTTP %d, want the second one's 503", s)
	}
	r := f.control(t, http.MethodDelete, "/_sim/faults?id="+strconv.Itoa(second), "")
	if r.status != http.StatusOK || len(f.sim.Faults()) != 0 {
		t.Errorf("DELETE /_sim/faults?id=%d: HTTP %d %s, faults %+v", second, r.status, r.body, f.sim.Faults())
	}
	if s := upload(f, t, numA); s != 200 {
		t.Errorf("with no fault left: HTTP %d", s)
	}
	for _, q := range []string{"?id=" + strconv.Itoa(second), "?id=x", "?id=0"} {
		want := http.StatusBadRequest
		if q == "?id="+strconv.Itoa(second) {
			want = http.StatusNotFound
		}
		if r := f.control(t, http.MethodDelete, "/_sim/faults"+q, ""); r.status != want || !strings.Contains(string(r.body), "graphsim: id:") {
			t.Errorf("DELETE /_sim/faults%s: HTTP %d %s, want %d naming the id", q, r.status, r.body, want)
		}
	}
}

// InFlight counts a call from the moment it is counted until it is on
// record, whether it is answered or its client goes away. (A GET: the
// server notices a client leave only once the request body is read.)
func TestInFlight(t *testing.T) {
	f := newFixture(t, nil)
	_, _ = f.sim.AddFault(Fault{Op: OpGet, Kind: FaultDelay, Delay: time.Hour, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+encPath(numA), nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	waitUntil(t, "the held call in flight", func() bool { return f.sim.InFlight() == 1 && f.sim.State().InFlight == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the held call was answered")
	}
	waitUntil(t, "the abandoned call on record", func() bool { return f.sim.InFlight() == 0 })
	if s := f.upload(t, numA, testKeys().pems[0]).status; s != 200 || f.sim.InFlight() != 0 {
		t.Errorf("an answered call: HTTP %d, in flight %d after it", s, f.sim.InFlight())
	}
}

// waitUntil polls a condition the simulator has no event for.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// An upload held by a delay whose client gives up ends with the client,
// as FaultDelay promises: it never lands later. (net/http notices a client
// leave only once the request body is read.)
func TestFaultDelayEndsAHeldUploadWhenItsClientLeaves(t *testing.T) {
	f := newFixture(t, nil)
	// Longer than waitUntil's deadline, short enough that the server's
	// Close (which waits for its handlers) ends if the hold does not.
	_, _ = f.sim.AddFault(Fault{Op: OpUpload, Kind: FaultDelay, Delay: 15 * time.Second, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		body := url.Values{"business_public_key": {testKeys().pems[0]}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+encPath(numA), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	waitUntil(t, "the held upload in flight", func() bool { return f.sim.InFlight() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the held upload was answered")
	}
	waitUntil(t, "the abandoned upload on record", func() bool { return f.sim.InFlight() == 0 })
	if _, ok := f.sim.Keys()[numA]; ok {
		t.Error("the abandoned upload stored its key")
	}
	if reqs := f.sim.Requests(); len(reqs) != 1 || reqs[0].Status != 0 || reqs[0].Outcome != "fault: delay" {
		t.Errorf("request log = %+v", reqs)
	}
}
