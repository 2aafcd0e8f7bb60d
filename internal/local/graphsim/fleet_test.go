package graphsim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestFleetNumbersAreDistinctPerWABAAndStable(t *testing.T) {
	s, err := New(Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for i := range 1000 {
		waba := fleetTestWABA(i)
		nums, err := s.AddDemoWABA(waba, 2)
		if err != nil {
			t.Fatalf("AddDemoWABA(%s): %v", waba, err)
		}
		if len(nums) != 2 {
			t.Fatalf("%s: %d numbers", waba, len(nums))
		}
		for _, n := range nums {
			if len(n.ID) != 15 || !idPattern.MatchString(n.ID) || n.WABA != waba {
				t.Errorf("%s: number %+v, want a 15-digit ID of that WABA", waba, n)
			}
			if other, dup := seen[n.ID]; dup {
				t.Fatalf("%s and %s share number %s", other, waba, n.ID)
			}
			seen[n.ID] = waba
		}
		if got := s.PhoneNumbers(waba); len(got) != 2 || got[0] != nums[0] || got[1] != nums[1] {
			t.Errorf("%s lists %+v, want %+v", waba, got, nums)
		}
	}
	if a, b := FleetNumbers("102290129340398", 3), FleetNumbers("102290129340398", 3); a[2] != b[2] {
		t.Errorf("FleetNumbers is not stable: %+v, %+v", a, b)
	}
	// DemoNumbers keeps its fixed IDs, the same for every WABA.
	if d := DemoNumbers("1", 1)[0].ID; d != "106540352242922" || DemoNumbers("2", 1)[0].ID != d {
		t.Errorf("DemoNumbers changed: %s", d)
	}
}

// fleetTestWABA is the i-th WABA ID of the tests' fleets.
func fleetTestWABA(i int) string { return fmt.Sprintf("2000000000%05d", i) }

func TestAddDemoWABARefusesWhatItCannotAdd(t *testing.T) {
	s, err := New(Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDemoWABA("300", 2); err != nil {
		t.Fatal(err)
	}
	taken := s.PhoneNumbers("300")[0].ID
	for name, tc := range map[string]struct {
		waba string
		n    int
	}{
		"no numbers":    {"301", 0},
		"too many":      {"301", 1001},
		"not an ID":     {"30x", 1},
		"WABA exists":   {"300", 1},
		"a number's ID": {taken, 1},
	} {
		t.Run(name, func(t *testing.T) {
			var ie *InputError
			if _, err := s.AddDemoWABA(tc.waba, tc.n); !errors.As(err, &ie) {
				t.Fatalf("AddDemoWABA(%q, %d) = %v, want an *InputError", tc.waba, tc.n, err)
			}
		})
	}
	if got := len(s.PhoneNumbers("")); got != 2 {
		t.Errorf("%d numbers after the refusals, want the first WABA's 2", got)
	}
}

// scopedFixture is newFixture's WABA plus a second one, "200", with two
// numbers, and a token that reaches only the second.
func scopedFixture(t *testing.T) (*fixture, []PhoneNumber) {
	t.Helper()
	f := newFixture(t, nil)
	nums, err := f.sim.AddDemoWABA("200", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.AddToken(tenantToken, "200"); err != nil {
		t.Fatal(err)
	}
	return f, nums
}

const tenantToken = "EAAtenantTOKEN200value"

func TestAScopedTokenReachesOnlyItsWABA(t *testing.T) {
	f, nums := scopedFixture(t)
	ks := testKeys()
	own := nums[0].ID
	bearer := "Bearer " + tenantToken
	cases := []struct {
		name, method, path, body string
		status, code, subcode    int
	}{
		{"its number's key", http.MethodGet, encPath(own), "", 200, 0, 0},
		{"its number's upload", http.MethodPost, encPath(own), "business_public_key=" + urlEscape(ks.pems[0]), 200, 0, 0},
		{"its WABA's list", http.MethodGet, "/v24.0/200/phone_numbers", "", 200, 0, 0},
		{"its WABA's node", http.MethodGet, "/v24.0/200", "", 200, 0, 0},
		{"another WABA's number", http.MethodGet, encPath(numA), "", 400, 100, 33},
		{"another WABA's upload", http.MethodPost, encPath(numA), "business_public_key=" + urlEscape(ks.pems[0]), 400, 100, 33},
		{"another WABA's list", http.MethodGet, "/v24.0/" + testWABA + "/phone_numbers", "", 400, 100, 33},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rq := request{method: tc.method, path: tc.path, auth: bearer}
			if tc.body != "" {
				rq.body, rq.ctype = tc.body, "application/x-www-form-urlencoded"
			}
			r := f.do(t, rq)
			if r.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != 0 {
				if ge := r.graphErr(t); ge.Error.Code != tc.code || ge.Error.Subcode != tc.subcode || ge.Error.Type != "GraphMethodException" {
					t.Errorf("error = %+v, want %d/%d GraphMethodException", ge.Error, tc.code, tc.subcode)
				}
			}
		})
	}
	if got := f.sim.Keys()[numA]; got != nil {
		t.Error("the refused upload changed another WABA's key")
	}
	// The default token still reaches both WABAs.
	for _, id := range []string{numA, own} {
		if r := f.do(t, request{method: http.MethodGet, path: encPath(id)}); r.status != 200 {
			t.Errorf("default token, %s: HTTP %d", id, r.status)
		}
	}
}

func TestARevokedTokenGets190AsAtMeta(t *testing.T) {
	f, nums := scopedFixture(t)
	if err := f.sim.RevokeToken(tenantToken); err != nil {
		t.Fatal(err)
	}
	for _, rq := range []request{
		{method: http.MethodGet, path: encPath(nums[0].ID), auth: "Bearer " + tenantToken},
		{method: http.MethodGet, path: "/v24.0/200/phone_numbers?access_token=" + tenantToken, auth: "-"},
	} {
		r := f.do(t, rq)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("HTTP %d, want 401: %s", r.status, r.body)
		}
		ge := r.graphErr(t)
		if ge.Error.Code != 190 || ge.Error.Subcode != 460 || ge.Error.Type != "OAuthException" || !strings.HasPrefix(ge.Error.Message, "Error validating access token") {
			t.Errorf("error = %+v, want 190/460 OAuthException", ge.Error)
		}
		if www := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(www, `OAuth "Facebook Platform" "invalid_token"`) {
			t.Errorf("WWW-Authenticate = %q", www)
		}
		if strings.Contains(string(r.body)+r.header.Get("WWW-Authenticate"), tenantToken) {
			t.Error("the response echoes the token")
		}
	}
	// A token never issued still gets 190 without a subcode.
	if ge := f.do(t, request{method: http.MethodGet, path: encPath(numA), auth: "Bearer EAAneverISSUED"}).graphErr(t); ge.Error.Code != 190 || ge.Error.Subcode != 0 {
		t.Errorf("unknown token: %+v", ge.Error)
	}
	// Revoked for good; a new token for the same WABA works.
	if err := f.sim.AddToken(tenantToken, "200"); err == nil {
		t.Error("AddToken accepted a revoked token again")
	}
	if err := f.sim.AddToken(tenantToken+"2", "200"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, request{method: http.MethodGet, path: encPath(nums[0].ID), auth: "Bearer " + tenantToken + "2"}); r.status != 200 {
		t.Errorf("the new token: HTTP %d", r.status)
	}
	if st := f.sim.State(); st.Tokens != (TokenScopes{Active: 1, Revoked: 1}) {
		t.Errorf("State.Tokens = %+v", st.Tokens)
	}
}

func TestTokenControlsRefuseBadInput(t *testing.T) {
	f, _ := scopedFixture(t)
	for name, err := range map[string]error{
		"the default token":  f.sim.AddToken(testToken, "200"),
		"no WABAs":           f.sim.AddToken("EAAother"),
		"an unknown WABA":    f.sim.AddToken("EAAother", "999"),
		"whitespace":         f.sim.AddToken("EAA other", "200"),
		"revoke the default": f.sim.RevokeToken(testToken),
		"revoke unknown":     f.sim.RevokeToken("EAAnever"),
	} {
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an *InputError", name, err)
		}
	}
	if err := f.sim.RevokeToken("EAAnever"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
}

func TestTokenControlRoute(t *testing.T) {
	f, nums := scopedFixture(t)
	if r := f.control(t, http.MethodPost, "/_sim/tokens", `{"action":"add","token":"EAAviaROUTE","wabas":["200"]}`); r.status != 200 {
		t.Fatalf("add: HTTP %d: %s", r.status, r.body)
	}
	if r := f.do(t, request{method: http.MethodGet, path: encPath(nums[1].ID), auth: "Bearer EAAviaROUTE"}); r.status != 200 {
		t.Fatalf("the added token: HTTP %d", r.status)
	}
	if r := f.control(t, http.MethodPost, "/_sim/tokens", `{"action":"revoke","token":"EAAviaROUTE"}`); r.status != 200 {
		t.Fatalf("revoke: HTTP %d: %s", r.status, r.body)
	}
	if r := f.do(t, request{method: http.MethodGet, path: encPath(nums[1].ID), auth: "Bearer EAAviaROUTE"}); r.status != 401 {
		t.Errorf("the revoked token: HTTP %d", r.status)
	}
	for body, want := range map[string]int{
		`{"action":"revoke","token":"EAAnever"}`:     404,
		`{"action":"grant","token":"x"}`:             400,
		`{"action":"add","token":"x","wabas":["1"]}`: 404,
	} {
		if r := f.control(t, http.MethodPost, "/_sim/tokens", body); r.status != want {
			t.Errorf("%s: HTTP %d, want %d", body, r.status, want)
		}
	}
	if strings.Contains(string(f.control(t, http.MethodGet, "/_sim/state", "").body), tenantToken) {
		t.Error("the state shows a token")
	}
}
