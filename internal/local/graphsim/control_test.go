package graphsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestControlRoutes walks every control route once, each call building on
// the state the last one left: split up, each part would repeat that set-up.
func TestControlRoutes(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	post := func(path, body string) {
		t.Helper()
		r := f.control(t, http.MethodPost, path, body)
		if r.status/100 != 2 {
			t.Fatalf("POST %s %s: HTTP %d %s", path, body, r.status, r.body)
		}
	}

	post("/_sim/numbers", `{"action":"add","waba":"`+testWABA+`","id":"4000000000001","display_phone_number":"+1 202-555-0150","verified_name":"Added"}`)
	if got := f.sim.PhoneNumbers(testWABA); len(got) != 4 || got[3].ID != "4000000000001" || got[3].VerifiedName != "Added" {
		t.Fatalf("numbers after add = %+v", got)
	}
	post("/_sim/numbers", `{"action":"remove","id":"`+numB+`"}`)
	post("/_sim/numbers", `{"action":"add-waba","waba":"888000888"}`)
	if len(f.sim.PhoneNumbers(testWABA)) != 3 || len(f.sim.State().WABAs) != 2 {
		t.Fatalf("numbers after remove / add-waba = %+v", f.sim.State().WABAs)
	}

	post("/_sim/key", mustJSON(t, map[string]string{"number": numA, "business_public_key": ks.pems[0]}))
	if !bytes.Equal(f.sim.Keys()[numA], ks.ders[0]) {
		t.Fatalf("/_sim/key did not set the key")
	}
	post("/_sim/reregister", `{"number":"`+numA+`"}`)
	if reg, _ := f.sim.Registration(numA); reg.Status != StatusMismatch {
		t.Fatalf("/_sim/reregister: %+v", reg)
	}

	post("/_sim/lag", `{"lag":"3s"}`)
	post("/_sim/lag", `{"number":"`+numC+`","lag":"1m"}`)
	post("/_sim/mismatch", `{"number":"`+numC+`","on":true}`)
	post("/_sim/latency", `{"latency":"1ms"}`)
	post("/_sim/budget", `{"waba":"`+testWABA+`","limit":200,"window":"1h","regain_access":"19m"}`)

	r := f.control(t, http.MethodPost, "/_sim/faults", `{"op":"upload","object":"`+numA+`","kind":"graph_error","code":131000,"times":2}`)
	if r.status != http.StatusCreated || strings.TrimSpace(string(r.body)) == "" {
		t.Fatalf("POST /_sim/faults: HTTP %d %s", r.status, r.body)
	}
	post("/_sim/faults", `{"kind":"delay","delay":"5ms"}`) // times defaults to 1
	if fs := f.sim.Faults(); len(fs) != 2 || fs[0].Times != 2 || fs[0].Code != 131000 || fs[1].Times != 1 || fs[1].Delay != 5*time.Millisecond {
		t.Fatalf("faults = %+v", fs)
	}
	r = f.control(t, http.MethodGet, "/_sim/faults", "")
	var listed []FaultSpec
	if err := json.Unmarshal(r.body, &listed); err != nil || len(listed) != 2 || listed[1].Delay != "5ms" {
		t.Fatalf("GET /_sim/faults: %s", r.body)
	}

	r = f.control(t, http.MethodGet, "/_sim/state", "")
	var st State
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("state: %v: %s", err, r.body)
	}
	if st.Lag != "3s" || st.Latency != "1ms" || len(st.Faults) != 2 || len(st.Budgets) != 1 || st.Budgets[0].RegainAccess != "19m0s" {
		t.Errorf("state = %s", r.body)
	}
	var a, c NumberState
	for _, n := range st.Numbers {
		switch n.ID {
		case numA:
			a = n
		case numC:
			c = n
		}
	}
	if a.Key == nil || a.Key.Fingerprint != Fingerprint(ks.ders[0]) || a.Key.Status != StatusMismatch {
		t.Errorf("numA in state = %+v", a)
	}
	if c.Lag != "1m0s" || !c.MismatchForced || c.Key != nil || c.Served.Keyed {
		t.Errorf("numC in state = %+v", c)
	}
	for _, secret := range append([]string{testToken}, ks.bodies...) {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("state leaks a token or key material")
		}
	}

	r = f.control(t, http.MethodDelete, "/_sim/faults", "")
	if r.status != 200 || len(f.sim.Faults()) != 0 {
		t.Fatalf("DELETE /_sim/faults: HTTP %d, %d faults left", r.status, len(f.sim.Faults()))
	}
	f.do(t, request{method: http.MethodGet, path: encPath(numA) + "?access_token=" + testToken, auth: "-"})
	r = f.control(t, http.MethodGet, "/_sim/requests", "")
	var reqs []Request
	if err := json.Unmarshal(r.body, &reqs); err != nil || len(reqs) != 1 || reqs[0].Op != OpGet || reqs[0].Path != encPath(numA) {
		t.Fatalf("GET /_sim/requests: %s", r.body)
	}
	if strings.Contains(string(r.body), testToken) {
		t.Errorf("request log leaks the token")
	}
	post("/_sim/reset-counters", "")
	if f.sim.Calls().Total() != 0 {
		t.Errorf("reset-counters left counts")
	}
	post("/_sim/budget", `{"waba":"`+testWABA+`","limit":0}`)
	if len(f.sim.Budgets()) != 0 {
		t.Errorf("limit 0 did not remove the budget")
	}
}

func TestControlRejectsBadInput(t *testing.T) {
	ks := testKeys()
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the error message
	}{
		{"unknown route", http.MethodGet, "/_sim/nope", "", 404, "routes: GET /_sim/state"},
		{"wrong method", http.MethodGet, "/_sim/lag", "", 405, "use POST"},
		{"empty body", http.MethodPost, "/_sim/lag", "", 400, "body: is empty"},
		{"not JSON", http.MethodPost, "/_sim/lag", "lag=3s", 400, "is not valid JSON"},
		{"two objects", http.MethodPost, "/_sim/lag", `{"lag":"1s"}{"lag":"2s"}`, 400, "after the JSON object"},
		{"unknown field", http.MethodPost, "/_sim/lag", `{"lag":"1s","extra":1}`, 400, `unknown field "extra"`},
		{"wrong type", http.MethodPost, "/_sim/lag", `{"lag":3}`, 400, `field "lag" must be a JSON string`},
		{"bad duration", http.MethodPost, "/_sim/lag", `{"lag":"3 sec"}`, 400, `lag: "3 sec" is not a duration`},
		{"negative lag", http.MethodPost, "/_sim/lag", `{"lag":"-1s"}`, 400, "lag: -1s is negative"},
		{"lag unknown number", http.MethodPost, "/_sim/lag", `{"number":"999","lag":"1s"}`, 404, `phone number "999" does not exist`},
		{"mismatch without on", http.MethodPost, "/_sim/mismatch", `{"number":""}`, 400, "on: is missing"},
		{"bad action", http.MethodPost, "/_sim/numbers", `{"action":"rename","id":"1"}`, 400, `action: "rename" is not an action`},
		{"bad number id", http.MethodPost, "/_sim/numbers", `{"action":"add","waba":"1","id":"x1"}`, 400, `id: "x1" is not a Graph ID`},
		{"remove unknown", http.MethodPost, "/_sim/numbers", `{"action":"remove","id":"999"}`, 404, "does not exist"},
		{"bad key", http.MethodPost, "/_sim/key", mustJSON(t, map[string]string{"number": numA, "business_public_key": ks.rsa1k}), 400, "business_public_key: the RSA key is 1024 bits"},
		{"bad fault kind", http.MethodPost, "/_sim/faults", `{"kind":"boom"}`, 400, `kind: "boom" is not a fault kind`},
		{"fault times 0", http.MethodPost, "/_sim/faults", `{"kind":"drop","times":0}`, 400, "times: is 0"},
		{"fault bad delay", http.MethodPost, "/_sim/faults", `{"kind":"delay","delay":"soon"}`, 400, `delay: "soon" is not a duration`},
		{"fault with id", http.MethodPost, "/_sim/faults", `{"kind":"drop","id":4}`, 400, "id/used"},
		{"budget bad window", http.MethodPost, "/_sim/budget", `{"limit":3,"window":"hour"}`, 400, `window: "hour" is not a duration`},
		{"budget negative", http.MethodPost, "/_sim/budget", `{"limit":-3}`, 400, "limit: is -3"},
		{"latency bad", http.MethodPost, "/_sim/latency", `{"latency":"fast"}`, 400, "latency:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			before := f.sim.State()
			r := f.control(t, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.status, r.body)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("error %q, want it to contain %q", r.body, tc.want)
			}
			for _, b := range ks.bodies {
				if strings.Contains(e.Error, b) {
					t.Fatalf("error echoes key material")
				}
			}
			after := f.sim.State()
			if mustJSON(t, before) != mustJSON(t, after) {
				t.Errorf("a rejected control call changed the state")
			}
		})
	}
}

// TestConcurrentUse drives 25 numbers at once through the Graph API while
// controls and snapshots run alongside; run it with -race.
func TestConcurrentUse(t *testing.T) {
	ks := testKeys()
	const n = 25
	s, err := NewDemo(testToken, testWABA, n)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sim: s}
	f.srv = newServer(t, s)
	numbers := DemoNumbers(testWABA, n)

	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i, pn := range numbers {
		wg.Go(func() {
			key := ks.pems[i%len(ks.pems)]
			r := doQuiet(f.srv.URL, request{method: http.MethodPost, path: encPath(pn.ID), body: "business_public_key=" + urlEscape(key), ctype: "application/x-www-form-urlencoded"})
			if r.err != nil || r.status != 200 {
				errs <- fmt.Errorf("upload %s: %v HTTP %d", pn.ID, r.err, r.status)
				return
			}
			r = doQuiet(f.srv.URL, request{method: http.MethodGet, path: encPath(pn.ID)})
			if r.err != nil || r.status != 200 || !strings.Contains(string(r.body), `"VALID"`) {
				errs <- fmt.Errorf("get %s: %v HTTP %d %s", pn.ID, r.err, r.status, r.body)
			}
		})
	}
	for range 5 {
		wg.Go(func() {
			_ = s.State()
			_ = s.Keys()
			_ = s.Calls()
			_, _ = s.AddFault(Fault{Op: OpOther, Kind: FaultDrop, Times: 1})
			_ = s.SetLag("", 0)
			_ = doQuiet(f.srv.URL, request{method: http.MethodGet, path: "/_sim/state", auth: "-"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := s.Calls()
	if c.Upload != n || c.Get != n || c.Total() != 2*n {
		t.Errorf("calls = %+v, want exactly %d uploads and %d reads", c.OpCounts, n, n)
	}
	keys := s.Keys()
	for i, pn := range numbers {
		if c.Of(pn.ID).Upload != 1 || c.Of(pn.ID).Get != 1 {
			t.Errorf("%s counted %+v", pn.ID, c.Of(pn.ID))
		}
		if !bytes.Equal(keys[pn.ID], ks.ders[i%len(ks.ders)]) {
			t.Errorf("%s holds the wrong key", pn.ID)
		}
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numA, ks.pems[0])
	f.upload(t, numA, ks.rsa1k)
	f.do(t, request{method: http.MethodGet, path: encPath(numA) + "?access_token=" + testToken, auth: "-"})
	f.do(t, request{method: http.MethodGet, path: encPath(numA), auth: "Bearer " + testToken + "x"})
	f.control(t, http.MethodPost, "/_sim/key", mustJSON(t, map[string]string{"number": numB, "business_public_key": ks.pems[1]}))
	f.control(t, http.MethodPost, "/_sim/key", mustJSON(t, map[string]string{"number": numB, "business_public_key": ks.priv}))
	logs := f.logs.String()
	for _, secret := range append([]string{testToken}, ks.bodies...) {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain a token or key material")
		}
	}
	if !strings.Contains(logs, Fingerprint(ks.ders[0])) || !strings.Contains(logs, Fingerprint(ks.ders[1])) {
		t.Errorf("logs should name uploaded keys by fingerprint:\n%s", logs)
	}
	if !strings.Contains(logs, `"outcome":"graph error"`) {
		t.Errorf("logs do not record the failed calls:\n%s", logs)
	}
}

func TestNewDemo(t *testing.T) {
	s, err := NewDemo(testToken, testWABA, 3)
	if err != nil {
		t.Fatal(err)
	}
	nums := s.PhoneNumbers(testWABA)
	if len(nums) != 3 {
		t.Fatalf("%d numbers", len(nums))
	}
	seen := map[string]bool{}
	for _, pn := range nums {
		if len(pn.ID) != 15 || !idPattern.MatchString(pn.ID) || seen[pn.ID] || !strings.HasPrefix(pn.DisplayPhoneNumber, "+1 ") || pn.VerifiedName == "" {
			t.Errorf("number %+v is not a realistic distinct 15-digit ID with a display number", pn)
		}
		seen[pn.ID] = true
	}
	if got := DemoNumbers(testWABA, 3); mustJSON(t, got) != mustJSON(t, nums) {
		t.Errorf("DemoNumbers differs from what NewDemo created")
	}
	for _, tc := range []struct {
		token, waba string
		n           int
	}{{testToken, testWABA, 0}, {testToken, testWABA, 1001}, {testToken, "", 3}, {testToken, "waba", 3}, {"", testWABA, 3}} {
		if _, err := NewDemo(tc.token, tc.waba, tc.n); err == nil {
			t.Errorf("NewDemo(token set %t, %q, %d) succeeded", tc.token != "", tc.waba, tc.n)
		}
	}
}
