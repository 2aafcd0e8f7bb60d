package graphsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type listBody struct {
	Data []struct {
		ID                 string `json:"id"`
		DisplayPhoneNumber string `json:"display_phone_number"`
		VerifiedName       string `json:"verified_name"`
		QualityRating      string `json:"quality_rating"`
	} `json:"data"`
	Paging *struct {
		Cursors struct {
			Before string `json:"before"`
			After  string `json:"after"`
		} `json:"cursors"`
		Next     string `json:"next"`
		Previous string `json:"previous"`
	} `json:"paging"`
}

func (f *fixture) listPage(t *testing.T, rq request) listBody {
	t.Helper()
	r := f.do(t, rq)
	if r.status != http.StatusOK {
		t.Fatalf("list %s: HTTP %d %s", rq.path, r.status, r.body)
	}
	var lb listBody
	if err := json.Unmarshal(r.body, &lb); err != nil {
		t.Fatalf("list body: %v: %s", err, r.body)
	}
	return lb
}

// pathOf strips the server from an absolute next/previous URL.
func (f *fixture) pathOf(t *testing.T, abs string) string {
	t.Helper()
	if !strings.HasPrefix(abs, f.srv.URL+"/") {
		t.Fatalf("paging URL %q is not on this server (%s)", abs, f.srv.URL)
	}
	return strings.TrimPrefix(abs, f.srv.URL)
}

func TestListPagesWithCursors(t *testing.T) {
	f := newFixture(t, nil)
	want := []string{numA, numB, numC}
	for i := range 4 { // 7 numbers: pages of 2, 2, 2, 1
		id := "2000000000000" + string(rune('0'+i))
		if err := f.sim.AddPhoneNumber(testWABA, id, "+1 202-555-019"+string(rune('0'+i)), "Other"); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if err := f.sim.AddPhoneNumber("555000111", "3000000000001", "+1", "Elsewhere"); err != nil {
		t.Fatal(err)
	}

	var got []string
	var pages int
	path := "/v24.0/" + testWABA + "/phone_numbers"
	for path != "" {
		lb := f.listPage(t, request{method: http.MethodGet, path: path})
		pages++
		if len(lb.Data) == 0 || lb.Paging == nil || lb.Paging.Cursors.Before == "" || lb.Paging.Cursors.After == "" {
			t.Fatalf("page %d lacks data or cursors: %+v", pages, lb)
		}
		if len(lb.Data) > 2 {
			t.Fatalf("page %d has %d items, want at most the page size 2", pages, len(lb.Data))
		}
		if (pages == 1) != (lb.Paging.Previous == "") {
			t.Errorf("page %d previous = %q", pages, lb.Paging.Previous)
		}
		for _, d := range lb.Data {
			if d.DisplayPhoneNumber == "" || d.VerifiedName == "" || d.QualityRating != "GREEN" {
				t.Errorf("item lacks default fields: %+v", d)
			}
			got = append(got, d.ID)
		}
		path = ""
		if lb.Paging.Next != "" {
			path = f.pathOf(t, lb.Paging.Next)
			if strings.Contains(path, "access_token") {
				t.Errorf("next carries access_token although the request sent it as a header: %s", path)
			}
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if pages != 4 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("walked %d pages, got %v\nwant 4 pages, %v", pages, got, want)
	}

	// limit overrides the page size; previous walks back.
	lb := f.listPage(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers?limit=5"})
	if len(lb.Data) != 5 || lb.Paging.Next == "" {
		t.Fatalf("limit=5: %d items, next %q", len(lb.Data), lb.Paging.Next)
	}
	lb2 := f.listPage(t, request{method: http.MethodGet, path: f.pathOf(t, lb.Paging.Next)})
	if len(lb2.Data) != 2 || lb2.Data[1].ID != want[6] || lb2.Paging.Next != "" {
		t.Fatalf("second page with limit 5: %+v", lb2)
	}
	back := f.listPage(t, request{method: http.MethodGet, path: f.pathOf(t, lb2.Paging.Previous)})
	if len(back.Data) != 5 || back.Data[0].ID != want[0] {
		t.Fatalf("previous page: %+v", back)
	}
}

func TestListKeepsAccessTokenAndFieldsInNext(t *testing.T) {
	f := newFixture(t, nil)
	lb := f.listPage(t, request{method: http.MethodGet, auth: "-",
		path: "/v24.0/" + testWABA + "/phone_numbers?access_token=" + testToken + "&fields=display_phone_number"})
	next, err := url.Parse(lb.Paging.Next)
	if err != nil {
		t.Fatal(err)
	}
	q := next.Query()
	if q.Get("access_token") != testToken || q.Get("fields") != "display_phone_number" || q.Get("limit") != "2" || q.Get("after") == "" {
		t.Fatalf("next = %s", lb.Paging.Next)
	}
	if lb.Data[0].VerifiedName != "" || lb.Data[0].ID == "" {
		t.Errorf("fields=display_phone_number returned %+v; want id and the asked field only", lb.Data[0])
	}
	lb2 := f.listPage(t, request{method: http.MethodGet, auth: "-", path: f.pathOf(t, lb.Paging.Next)})
	if len(lb2.Data) != 1 || lb2.Data[0].ID != numC {
		t.Errorf("second page = %+v", lb2.Data)
	}
}

func TestListEdgeCases(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.AddWABA("777000777"); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, request{method: http.MethodGet, path: "/v24.0/777000777/phone_numbers"})
	if strings.TrimSpace(string(r.body)) != `{"data":[]}` {
		t.Errorf("empty WABA: %s", r.body)
	}
	for _, q := range []string{"limit=abc", "limit=0", "after=notacursor", "before=Zm9v"} {
		r := f.do(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers?" + q})
		if r.status != http.StatusBadRequest || r.graphErr(t).Error.Code != 100 {
			t.Errorf("%s: HTTP %d %s, want 400 code 100", q, r.status, r.body)
		}
	}
	// A number removed between pages does not break the walk.
	lb := f.listPage(t, request{method: http.MethodGet, path: "/v24.0/" + testWABA + "/phone_numbers"})
	if err := f.sim.RemovePhoneNumber(numB); err != nil {
		t.Fatal(err)
	}
	lb2 := f.listPage(t, request{method: http.MethodGet, path: f.pathOf(t, lb.Paging.Next)})
	if len(lb2.Data) != 1 || lb2.Data[0].ID != numC {
		t.Errorf("after removing the cursor's number: %+v", lb2.Data)
	}
}

func TestLagServesPreviousKeyUntilItExpires(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	if err := f.sim.SetLag("", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.upload(t, numA, ks.pems[0])
	if key, _ := f.getKey(t, numA); key != "" {
		t.Fatalf("inside the lag of the first upload GET shows a key; want none")
	}
	f.clock.Advance(10 * time.Second)
	if key, st := f.getKey(t, numA); key != ks.pems[0] || st != StatusValid {
		t.Fatalf("after the lag GET = (%.30q, %q)", key, st)
	}

	f.upload(t, numA, ks.pems[1])
	f.clock.Advance(9 * time.Second)
	if key, _ := f.getKey(t, numA); key != ks.pems[0] {
		t.Fatalf("9s after the upload (lag 10s) GET should still show the previous key")
	}
	// The truth moves at once.
	if reg, _ := f.sim.Registration(numA); reg.BusinessPublicKey != ks.pems[1] {
		t.Errorf("Registration ignores lag: want the new key")
	}
	if !bytes.Equal(f.sim.Keys()[numA], ks.ders[1]) {
		t.Errorf("Keys shows the lagged key")
	}
	st := f.sim.State().Numbers[0]
	if st.Served.Fingerprint != Fingerprint(ks.ders[0]) || st.Key.Fingerprint != Fingerprint(ks.ders[1]) || st.PreviousKey.Fingerprint != Fingerprint(ks.ders[0]) {
		t.Errorf("state = %+v", st)
	}
	f.clock.Advance(time.Second)
	if key, _ := f.getKey(t, numA); key != ks.pems[1] {
		t.Fatalf("at the end of the lag GET should show the new key")
	}

	// Two uploads inside one lag window: the first never shows.
	f.upload(t, numA, ks.pems[2])
	f.clock.Advance(5 * time.Second)
	f.upload(t, numA, ks.pems[0])
	f.clock.Advance(5 * time.Second)
	if key, _ := f.getKey(t, numA); key != ks.pems[2] {
		t.Errorf("10s after the first of two uploads GET should show it")
	}
	f.clock.Advance(5 * time.Second)
	if key, _ := f.getKey(t, numA); key != ks.pems[0] {
		t.Errorf("after both lags GET should show the last upload")
	}
}

func TestLagPerNumber(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	if err := f.sim.SetLag(numB, time.Minute); err != nil {
		t.Fatal(err)
	}
	f.upload(t, numA, ks.pems[0])
	f.upload(t, numB, ks.pems[0])
	if key, _ := f.getKey(t, numA); key != ks.pems[0] {
		t.Errorf("numA has no lag but GET lags")
	}
	if key, _ := f.getKey(t, numB); key != "" {
		t.Errorf("numB lags a minute but GET shows the key at once")
	}
	if err := f.sim.SetLag("", 0); err != nil { // clears per-number lags too
		t.Fatal(err)
	}
	if key, _ := f.getKey(t, numB); key != ks.pems[0] {
		t.Errorf("SetLag(\"\", 0) left numB's lag in place")
	}
	var ie *InputError
	if err := f.sim.SetLag(numA, -time.Second); !errors.As(err, &ie) || ie.Field != "lag" {
		t.Errorf("negative lag = %v", err)
	}
	if err := f.sim.SetLag("999", time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("lag on unknown number = %v", err)
	}
}

func TestForcedMismatch(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numA, ks.pems[0])
	f.upload(t, numB, ks.pems[0])
	if err := f.sim.SetMismatch(numA, true); err != nil {
		t.Fatal(err)
	}
	if key, st := f.getKey(t, numA); key != " " || st != StatusMismatch {
		t.Fatalf("forced MISMATCH: GET = (%q, %q), want (\" \", MISMATCH)", key, st)
	}
	if _, st := f.getKey(t, numB); st != StatusValid {
		t.Errorf("MISMATCH on numA leaked to numB")
	}
	f.upload(t, numA, ks.pems[1]) // persists across uploads
	if _, st := f.getKey(t, numA); st != StatusMismatch {
		t.Errorf("an upload cleared a forced MISMATCH")
	}
	if !bytes.Equal(f.sim.Keys()[numA], ks.ders[1]) {
		t.Errorf("Keys must still show the key Meta holds under MISMATCH")
	}
	if err := f.sim.SetMismatch(numA, false); err != nil {
		t.Fatal(err)
	}
	if key, st := f.getKey(t, numA); key != ks.pems[1] || st != StatusValid {
		t.Errorf("after clearing: GET = (%.20q, %q)", key, st)
	}
	if err := f.sim.SetMismatch("", true); err != nil {
		t.Fatal(err)
	}
	if _, st := f.getKey(t, numB); st != StatusMismatch {
		t.Errorf("global MISMATCH did not apply to numB")
	}
	_ = f.sim.SetMismatch(numC, true)
	if err := f.sim.SetMismatch("", false); err != nil {
		t.Fatal(err)
	}
	if reg, _ := f.sim.Registration(numC); reg.Keyed {
		t.Errorf("numC has no key; Registration = %+v", reg)
	}
	if f.sim.State().Numbers[2].MismatchForced {
		t.Errorf("SetMismatch(\"\", false) left a per-number flag")
	}
}

func TestReregisterLastsUntilReupload(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numA, ks.pems[0])
	if err := f.sim.Reregister(numA); err != nil {
		t.Fatal(err)
	}
	if key, st := f.getKey(t, numA); key != " " || st != StatusMismatch {
		t.Fatalf("after re-registration GET = (%q, %q)", key, st)
	}
	f.upload(t, numA, ks.pems[0])
	if _, st := f.getKey(t, numA); st != StatusValid {
		t.Errorf("a re-upload did not clear the stale signature")
	}
	if err := f.sim.Reregister("999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reregister(unknown) = %v", err)
	}
}

func TestSetKeyBehindTheBack(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numA, ks.pems[0])
	before := f.sim.Calls()
	if err := f.sim.SetKey(numA, ks.pems[2], ""); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.sim.Keys()[numA], ks.ders[2]) {
		t.Errorf("Keys does not show the key set behind the back")
	}
	if key, st := f.getKey(t, numA); key != ks.pems[2] || st != StatusValid {
		t.Errorf("GET after SetKey = (%.20q, %q)", key, st)
	}
	if got := f.sim.Calls(); got.Upload != before.Upload {
		t.Errorf("SetKey counted an upload")
	}
	if err := f.sim.SetKey(numB, ks.pems[0], StatusMismatch); err != nil {
		t.Fatal(err)
	}
	if _, st := f.getKey(t, numB); st != StatusMismatch {
		t.Errorf("SetKey with MISMATCH: status %q", st)
	}
	cases := []struct {
		id, pem, status, field string
		notFound               bool
	}{
		{numA, ks.rsa1k, "", "business_public_key", false},
		{numA, "garbage", "", "business_public_key", false},
		{numA, ks.pems[0], "BROKEN", "status", false},
		{"999", ks.pems[0], "", "number", true},
	}
	for _, tc := range cases {
		err := f.sim.SetKey(tc.id, tc.pem, tc.status)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tc.field || errors.Is(err, ErrNotFound) != tc.notFound {
			t.Errorf("SetKey(%s, %s) = %v, want InputError on %s", tc.id, tc.status, err, tc.field)
		}
		for _, b := range ks.bodies {
			if err != nil && strings.Contains(err.Error(), b) {
				t.Errorf("error quotes key material")
			}
		}
	}
	if !bytes.Equal(f.sim.Keys()[numA], ks.ders[2]) {
		t.Errorf("a rejected SetKey changed the key")
	}
}

func TestNumbersAndWABAs(t *testing.T) {
	f := newFixture(t, nil)
	var ie *InputError
	cases := []struct {
		name              string
		waba, id, display string
		field             string
	}{
		{"non-numeric id", testWABA, "pn-1", "+1", "id"},
		{"empty id", testWABA, "", "+1", "id"},
		{"non-numeric waba", "waba", "4000000000001", "+1", "waba"},
		{"duplicate", testWABA, numA, "+1", "id"},
		{"id is a WABA", "", testWABA, "+1", "id"},
		{"waba is a number", numA, "4000000000002", "+1", "waba"},
		{"same ids", "4000000000003", "4000000000003", "+1", "waba"},
	}
	for _, tc := range cases {
		err := f.sim.AddPhoneNumber(tc.waba, tc.id, tc.display, "x")
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: AddPhoneNumber = %v, want InputError on %s", tc.name, err, tc.field)
		}
	}
	// A number without a WABA answers the key endpoints but is in no list.
	if err := f.sim.AddPhoneNumber("", "4000000000009", "+1 202-555-0177", "Loose"); err != nil {
		t.Fatal(err)
	}
	if key, _ := f.getKey(t, "4000000000009"); key != "" {
		t.Errorf("new number has a key")
	}
	if got := f.sim.PhoneNumbers(testWABA); len(got) != 3 {
		t.Errorf("PhoneNumbers(testWABA) = %d numbers, want 3", len(got))
	}
	if got := f.sim.PhoneNumbers(""); len(got) != 4 {
		t.Errorf("PhoneNumbers(\"\") = %d numbers, want 4", len(got))
	}
	if err := f.sim.AddWABA(numA); !errors.As(err, &ie) {
		t.Errorf("AddWABA(number ID) = %v", err)
	}
}
