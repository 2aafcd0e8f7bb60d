package graph

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

const wabaID = "102290129340398"

const listPath = "/v24.0/" + wabaID + "/phone_numbers"

type page struct {
	ids   []string
	after string
	next  string // may hold {base}, replaced by the server's URL
}

func (p page) write(w http.ResponseWriter, base string) {
	data := []map[string]string{}
	for _, id := range p.ids {
		data = append(data, map[string]string{"id": id, "display_phone_number": "+1 555-01" + id, "verified_name": "Shop " + id})
	}
	paging := map[string]any{"cursors": map[string]string{"before": "b", "after": p.after}}
	if p.next != "" {
		paging["next"] = strings.ReplaceAll(p.next, "{base}", base)
	}
	writeJSON(w, 200, map[string]any{"data": data, "paging": paging})
}

func ids(ns []PhoneNumber) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.ID)
	}
	return strings.Join(s, ",")
}

// pagedServer answers by the "after" query parameter ("" for the first page).
func pagedServer(t *testing.T, pages map[string]page) *server {
	var s *server
	s = newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != listPath || r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("request %s without the expected path or token", r.URL.Path)
		}
		if r.URL.Query().Has("access_token") {
			t.Errorf("access_token sent in the query")
		}
		p, ok := pages[r.URL.Query().Get("after")]
		if !ok {
			t.Errorf("no page for %s", r.URL.RawQuery)
			w.WriteHeader(404)
			return
		}
		p.write(w, s.URL)
	})
	return s
}

func TestPhoneNumbersPaging(t *testing.T) {
	s := pagedServer(t, map[string]page{
		"":   {ids: []string{"1", "2"}, after: "c1", next: "{base}" + listPath + "?limit=2&after=c1"},
		"c1": {ids: []string{"3", "2"}, after: "c2", next: "{base}" + listPath + "?limit=2&after=c2&access_token=" + testToken},
		"c2": {ids: []string{"4"}, after: "c3"},
	})
	got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
	if err != nil {
		t.Fatal(err)
	}
	if ids(got) != "1,2,3,4" || s.n() != 3 {
		t.Errorf("got %s in %d calls, want 1,2,3,4 (deduplicated) in 3", ids(got), s.n())
	}
	if got[0] != (PhoneNumber{ID: "1", DisplayPhoneNumber: "+1 555-011", VerifiedName: "Shop 1"}) {
		t.Errorf("first number = %+v", got[0])
	}
}

func TestPhoneNumbersSinglePage(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"data":[{"id":"7","display_phone_number":"+1 555 0100","verified_name":"Shop"}]}`)
	})
	got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
	if err != nil || ids(got) != "7" || s.n() != 1 {
		t.Errorf("got %s, %v in %d calls", ids(got), err, s.n())
	}
}

func TestPhoneNumbersForeignNext(t *testing.T) {
	foreign := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		page{ids: []string{"666"}}.write(w, "")
	})
	t.Run("rebuilt from cursors.after", func(t *testing.T) {
		s := pagedServer(t, map[string]page{
			"":   {ids: []string{"1"}, after: "c1", next: foreign.URL + listPath + "?after=c1"},
			"c1": {ids: []string{"2"}, after: "c2", next: "https://evil.example" + listPath + "?after=c2"},
			"c2": {ids: []string{"3"}},
		})
		got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if err != nil || ids(got) != "1,2,3" {
			t.Errorf("got %s, %v", ids(got), err)
		}
		if foreign.n() != 0 || s.n() != 3 {
			t.Errorf("foreign host saw %d calls, base %d; want 0 and 3", foreign.n(), s.n())
		}
	})
	t.Run("no cursor to rebuild from", func(t *testing.T) {
		s := pagedServer(t, map[string]page{
			"": {ids: []string{"1"}, next: foreign.URL + listPath + "?after=c1"},
		})
		got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		var ge *Error
		if !errors.As(err, &ge) || !errors.Is(err, ErrMalformedResponse) || got != nil || ge.Op != "list" || ge.Object != wabaID {
			t.Errorf("got %s, %v; want an error and no numbers", ids(got), err)
		}
		if err != nil && !strings.Contains(err.Error(), "not following it with the token") {
			t.Errorf("Error() = %v", err)
		}
		if foreign.n() != 0 {
			t.Errorf("foreign host saw %d calls", foreign.n())
		}
	})
}

func TestPhoneNumbersLoops(t *testing.T) {
	t.Run("next repeats the first page", func(t *testing.T) {
		s := pagedServer(t, map[string]page{"": {ids: []string{"1"}, next: "{base}" + listPath}})
		_, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "paging loops") || s.n() != 1 {
			t.Errorf("err = %v after %d calls", err, s.n())
		}
	})
	t.Run("cursor repeats", func(t *testing.T) {
		s := pagedServer(t, map[string]page{
			"":   {ids: []string{"1"}, after: "c1", next: "{base}" + listPath + "?after=c1"},
			"c1": {ids: []string{"2"}, after: "c1", next: "{base}" + listPath + "?after=c1&limit=5"},
		})
		_, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "paging loops") || s.n() != 2 {
			t.Errorf("err = %v after %d calls", err, s.n())
		}
	})
	t.Run("never ends", func(t *testing.T) {
		var s *server
		s = newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			c := strconv.Itoa(n)
			page{ids: []string{c}, after: c, next: s.URL + listPath + "?after=" + c}.write(w, "")
		})
		_, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), fmt.Sprintf("did not end after %d pages", maxPages)) || s.n() != maxPages {
			t.Errorf("err = %v after %d calls", err, s.n())
		}
	})
}

func TestPhoneNumbersFailures(t *testing.T) {
	t.Run("page 2 retried after 131000", func(t *testing.T) {
		var s *server
		s = newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Query().Get("after") == "":
				page{ids: []string{"1"}, after: "c1", next: s.URL + listPath + "?after=c1"}.write(w, "")
			case n == 2:
				writeGraphError(w, 500, gErr{Code: 131000})
			default:
				page{ids: []string{"2"}}.write(w, "")
			}
		})
		got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if err != nil || ids(got) != "1,2" || s.n() != 3 {
			t.Errorf("got %s, %v in %d calls", ids(got), err, s.n())
		}
	})
	t.Run("permanent error on page 2 returns nothing", func(t *testing.T) {
		var s *server
		s = newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				page{ids: []string{"1"}, after: "c1", next: s.URL + listPath + "?after=c1"}.write(w, "")
				return
			}
			writeGraphError(w, 403, gErr{Code: 200, Message: "(#200) Permissions error", Type: "OAuthException", FBTraceID: "F1"})
		})
		got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		const want = "graph list 102290129340398: HTTP 403 code 200 (OAuthException): (#200) Permissions error [fbtrace_id F1] after 1 attempt" +
			"; fix: the token in secret flowkey/graph-token lacks a permission; give its system user whatsapp_business_management on this WABA (code 10 on this endpoint can also mean the number is not allowed to use Flows)"
		if got != nil || err == nil || err.Error() != want {
			t.Errorf("got %s, %v\nwant error %s", ids(got), err, want)
		}
	})
	for name, body := range map[string]string{
		"bad id":        `{"data":[{"id":"1/../2"}]}`,
		"missing id":    `{"data":[{"display_phone_number":"+1"}]}`,
		"no data array": `{"paging":{}}`,
		"data not list": `{"data":{"id":"1"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })
			got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
			if got != nil || !errors.Is(err, ErrMalformedResponse) || s.n() != 3 {
				t.Errorf("got %s, %v after %d calls; want malformed after 3", ids(got), err, s.n())
			}
		})
	}
	t.Run("empty page with next continues", func(t *testing.T) {
		s := pagedServer(t, map[string]page{
			"":   {after: "c1", next: "{base}" + listPath + "?after=c1"},
			"c1": {ids: []string{"5"}},
		})
		got, err := newClient(t, s).PhoneNumbers(t.Context(), testAuth(), wabaID)
		if err != nil || ids(got) != "5" {
			t.Errorf("got %s, %v", ids(got), err)
		}
	})
}
