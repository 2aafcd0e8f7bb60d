package graphsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

// usage decodes X-Business-Use-Case-Usage for one business ID.
func usage(t *testing.T, r response, id string) bucEntry {
	t.Helper()
	h := r.header.Get("X-Business-Use-Case-Usage")
	var m map[string][]bucEntry
	if err := json.Unmarshal([]byte(h), &m); err != nil {
		t.Fatalf("X-Business-Use-Case-Usage %q: %v", h, err)
	}
	if len(m) != 1 || len(m[id]) != 1 {
		t.Fatalf("X-Business-Use-Case-Usage %q: want one entry under %s", h, id)
	}
	return m[id][0]
}

func TestBudgetPerWABA(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	if err := f.sim.SetBudget(Budget{WABA: testWABA, Limit: 4}); err != nil {
		t.Fatal(err)
	}
	get := func() response { return f.do(t, request{method: http.MethodGet, path: encPath(numA)}) }
	wantCounts := []int{25, 50, 75, 100}
	for i, want := range wantCounts {
		var r response
		if i == 1 {
			r = f.upload(t, numB, ks.pems[0]) // numbers of the WABA share its budget
		} else {
			r = get()
		}
		if r.status != 200 {
			t.Fatalf("call %d: HTTP %d %s", i, r.status, r.body)
		}
		u := usage(t, r, testWABA)
		if u.Type != "whatsapp_business_management" || u.CallCount != want || u.EstimatedRegain != 0 {
			t.Errorf("call %d usage = %+v, want call_count %d", i, u, want)
		}
		f.clock.Advance(time.Minute)
	}
	// Spent: 80007, HTTP 400; the oldest call leaves the hour in 56 minutes.
	r := get()
	if r.status != http.StatusBadRequest {
		t.Fatalf("over budget: HTTP %d %s", r.status, r.body)
	}
	if ge := r.graphErr(t); ge.Error.Code != 80007 || ge.Error.Type != "OAuthException" {
		t.Errorf("error = %+v", ge.Error)
	}
	if u := usage(t, r, testWABA); u.CallCount != 100 || u.EstimatedRegain != 56 {
		t.Errorf("throttled usage = %+v, want call_count 100, regain 56", u)
	}
	// Refused calls do not extend the window; the list is charged too.
	f.clock.Advance(55 * time.Minute)
	if r := f.do(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers"}); r.status != 400 {
		t.Fatalf("list while spent: HTTP %d", r.status)
	}
	f.clock.Advance(time.Minute)
	if r := get(); r.status != 200 {
		t.Fatalf("after the first call left the window: HTTP %d %s", r.status, r.body)
	}
	// A number of another WABA is not charged.
	if err := f.sim.AddPhoneNumber("555000111", "3000000000001", "+1", "x"); err != nil {
		t.Fatal(err)
	}
	r = f.do(t, request{method: http.MethodGet, path: encPath("3000000000001")})
	if r.status != 200 || r.header.Get("X-Business-Use-Case-Usage") != "" {
		t.Errorf("other WABA: HTTP %d, usage header %q", r.status, r.header.Get("X-Business-Use-Case-Usage"))
	}
	if b := f.sim.Budgets(); len(b) != 1 || b[0].Used != 4 || b[0].Window != time.Hour {
		t.Errorf("Budgets = %+v", b)
	}
}

func TestBudgetReportsConfiguredRegainAndIgnoresRejectedCalls(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.SetBudget(Budget{Limit: 2, Window: 10 * time.Minute, RegainAccess: 19 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Neither a failed authentication nor a faulted call is charged.
	f.do(t, request{method: http.MethodGet, path: encPath(numA), auth: "Bearer wrong"})
	_, _ = f.sim.AddFault(Fault{Kind: FaultHTTPStatus, Status: 502, Times: 1})
	f.do(t, request{method: http.MethodGet, path: encPath(numA)})
	for i := range 2 {
		if r := f.do(t, request{method: http.MethodGet, path: encPath(numA)}); r.status != 200 {
			t.Fatalf("call %d: HTTP %d", i, r.status)
		}
	}
	r := f.do(t, request{method: http.MethodGet, path: encPath(numA)})
	if r.status != 400 || r.graphErr(t).Error.Code != 80007 {
		t.Fatalf("HTTP %d %s, want 80007", r.status, r.body)
	}
	if u := usage(t, r, testWABA); u.EstimatedRegain != 19 {
		t.Errorf("estimated_time_to_regain_access = %d, want the configured 19", u.EstimatedRegain)
	}
	// The global budget also covers numbers without a WABA, keyed by number.
	if err := f.sim.SetBudget(Budget{Limit: 5}); err != nil {
		t.Fatal(err)
	}
	_ = f.sim.AddPhoneNumber("", "4000000000009", "+1", "x")
	r = f.do(t, request{method: http.MethodGet, path: encPath("4000000000009")})
	if u := usage(t, r, "4000000000009"); u.CallCount != 20 {
		t.Errorf("usage = %+v, want call_count 20", u)
	}
	if err := f.sim.SetBudget(Budget{Limit: 0}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, request{method: http.MethodGet, path: encPath(numA)}); r.header.Get("X-Business-Use-Case-Usage") != "" {
		t.Errorf("removed budget still reports usage")
	}
}

func TestSetBudgetValidation(t *testing.T) {
	s, _ := New(Options{Token: testToken})
	for _, b := range []Budget{{WABA: "abc", Limit: 1}, {Limit: -1}, {Limit: 1, Window: -time.Second}, {Limit: 1, RegainAccess: -time.Second}} {
		var ie *InputError
		if err := s.SetBudget(b); !errors.As(err, &ie) {
			t.Errorf("SetBudget(%+v) = %v, want InputError", b, err)
		}
	}
}

func TestCountersAreExact(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	_, _ = f.sim.AddFault(Fault{Op: OpUpload, Object: numC, Kind: FaultGraphError, Code: 131000, Times: 1})
	f.upload(t, numA, ks.pems[0])
	f.upload(t, numB, ks.pems[0])
	f.upload(t, numC, ks.pems[0]) // faulted
	f.upload(t, numC, ks.pems[0])
	f.do(t, request{method: http.MethodGet, path: encPath(numA)})
	f.do(t, request{method: http.MethodGet, path: encPath(numA), auth: "-"}) // 104
	f.do(t, request{method: http.MethodGet, path: encPath("999")})           // unknown
	f.do(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers"})
	f.do(t, request{method: http.MethodGet, path: "/v24.0/" + numA}) // other
	f.do(t, request{method: http.MethodGet, path: "/_sim/state", auth: "-"})

	c := f.sim.Calls()
	if c.Upload != 4 || c.Get != 3 || c.List != 1 || c.Other != 1 || c.Total() != 9 {
		t.Errorf("calls = %+v, want 4 uploads, 3 gets, 1 list, 1 other (control calls not counted)", c.OpCounts)
	}
	if a := c.Of(numA); a.Upload != 1 || a.Get != 2 || a.Other != 1 {
		t.Errorf("numA = %+v", a)
	}
	if c.Of(numC).Upload != 2 || c.Of("999").Get != 1 || c.Of(testWABA).List != 1 {
		t.Errorf("by object = %+v", c.ByObject)
	}
	c.ByObject[numA] = OpCounts{} // a snapshot, not the live map
	if f.sim.Calls().Of(numA).Get != 2 {
		t.Errorf("Calls returned the live map")
	}
	f.sim.ResetCounters()
	if c := f.sim.Calls(); c.Total() != 0 || len(c.ByObject) != 0 {
		t.Errorf("after reset: %+v", c)
	}
}
