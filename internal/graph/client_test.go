package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestBaseURL(t *testing.T) {
	tests := []struct {
		url     string
		ok      bool
		wantErr string // substring of the error
		hidden  string // must not appear in the error
	}{
		{url: "https://graph.facebook.com", ok: true},
		{url: "https://graph.facebook.com/", ok: true},
		{url: "https://graph.facebook.com:8443", ok: true},
		{url: "HTTPS://Graph.Facebook.com", ok: true},
		{url: "http://127.0.0.1:8080", ok: true},
		{url: "http://127.9.8.7", ok: true},
		{url: "http://[::1]:9000", ok: true},
		{url: "http://localhost:3000", ok: true},
		{url: "http://LOCALHOST", ok: true},
		{url: "http://graph.facebook.com", wantErr: "not a loopback host"},
		{url: "http://10.0.0.1:8080", wantErr: "use https://"},
		{url: "http://128.0.0.1", wantErr: "not a loopback host"},
		{url: "http://localhost.evil.example", wantErr: "not a loopback host"},
		{url: "http://127.0.0.1.nip.io", wantErr: "not a loopback host"},
		{url: "http://[::2]", wantErr: "not a loopback host"},
		{url: "https://graph.facebook.com/v24.0", wantErr: "has a path (/v24.0)"},
		{url: "https://graph.facebook.com?x=1", wantErr: "has a query"},
		{url: "https://graph.facebook.com/?", wantErr: "has a query"},
		{url: "https://graph.facebook.com#frag", wantErr: "has a fragment"},
		{url: "https://user:hunter2pw@graph.facebook.com", wantErr: "contains user info", hidden: "hunter2pw"},
		{url: "https://user:hunter2pw@graph.facebook.com:bad", wantErr: "is not a URL", hidden: "hunter2pw"},
		{url: "ftp://graph.facebook.com", wantErr: `has scheme "ftp"`},
		{url: "graph.facebook.com", wantErr: "not an absolute URL"},
		{url: "https://", wantErr: "not an absolute URL"},
		{url: "https://:443", wantErr: "no host name"},
		{url: "https://graph.facebook.com:70000", wantErr: "outside 1-65535"},
		{url: "://x", wantErr: "is not a URL"},
		{url: "https://graph.facebook.com\n", wantErr: "is not a URL"},
	}
	hc := &http.Client{}
	for _, tc := range tests {
		_, err := New(hc, Options{BaseURL: tc.url})
		if errV := ValidateBaseURL(tc.url); (errV == nil) != (err == nil) {
			t.Errorf("%q: ValidateBaseURL and New disagree: %v / %v", tc.url, errV, err)
		}
		if tc.ok {
			if err != nil {
				t.Errorf("%q: %v", tc.url, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q accepted", tc.url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "GRAPH_API_BASE_URL") || !strings.Contains(msg, "fix:") || !strings.Contains(msg, tc.wantErr) {
			t.Errorf("%q: error %q should name GRAPH_API_BASE_URL, contain %q and a fix", tc.url, msg, tc.wantErr)
		}
		if tc.hidden != "" && strings.Contains(msg, tc.hidden) {
			t.Errorf("%q: error reveals the password: %q", tc.url, msg)
		}
	}
}

// A password in GRAPH_API_BASE_URL never reaches the error, not even a
// part of it: url.Parse's own messages quote the bad escape or the text it
// took for a port.
func TestBaseURLErrorsHideThePassword(t *testing.T) {
	for _, tc := range []struct{ url, password string }{
		{"https://user:hun%zzter2pw@graph.facebook.com", "hun%zzter2pw"},
		{"https://user:pw%zz@graph.facebook.com", `"%zz"`},
		{"https://user:hu/nter%zz@graph.facebook.com", "hu/nter%zz"},
		{"https://user:hunter2pw%@graph.facebook.com", "hunter2pw%"},
		{"https://user:hunter 2pw@graph.facebook.com", "hunter 2pw"},
		{"user:hunter%zz2pw@graph.facebook.com", "hunter%zz2pw"},
		{"https://user:hunter2pw@graph.facebook.com:bad", "hunter2pw"},
		{"https://user:hunter2pw@graph face.com", "hunter2pw"},
		{"http://user:hunter2pw@10.0.0.1", "hunter2pw"},
		{"https://us%zzer:hunter2pw@graph.facebook.com", "hunter2pw"},
	} {
		err := ValidateBaseURL(tc.url)
		if err == nil {
			t.Errorf("%q accepted", tc.url)
			continue
		}
		msg := err.Error()
		for i := 0; i+4 <= len(tc.password); i++ {
			if w := tc.password[i : i+4]; strings.Contains(msg, w) {
				t.Errorf("%q: the error repeats %q of the password: %s", tc.url, w, msg)
			}
		}
		if !strings.Contains(msg, "GRAPH_API_BASE_URL") || !strings.Contains(msg, "fix:") {
			t.Errorf("%q: %s does not name the variable and a fix", tc.url, msg)
		}
	}
}

func TestBaseURLNormalised(t *testing.T) {
	c, err := New(&http.Client{}, Options{BaseURL: "https://graph.facebook.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.endpoint("v24.0", "1", "phone_numbers").String(); got != "https://graph.facebook.com/v24.0/1/phone_numbers" {
		t.Errorf("endpoint = %s", got)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil || !strings.Contains(err.Error(), "http.Client is nil") {
		t.Errorf("New(nil) = %v, want an error about the nil client", err)
	}
	c, err := New(&http.Client{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.BaseURL != DefaultBaseURL || o.MaxAttempts != 5 || o.BaseBackoff != 200*time.Millisecond ||
		o.MaxBackoff != 10*time.Second || o.RequestTimeout != 10*time.Second || o.Jitter == nil || o.Observe != nil {
		t.Errorf("defaults not applied: %+v", o)
	}
	if j := o.Jitter(); j < 0 || j >= 1 {
		t.Errorf("default jitter %v outside [0,1)", j)
	}
	bad := []struct {
		opts Options
		want string
	}{
		{Options{MaxAttempts: -1}, "Options.MaxAttempts=-1 is negative"},
		{Options{BaseBackoff: -time.Second}, "Options.BaseBackoff=-1s is negative"},
		{Options{MaxBackoff: -time.Second}, "Options.MaxBackoff=-1s is negative"},
		{Options{RequestTimeout: -time.Second}, "Options.RequestTimeout=-1s is negative"},
		{Options{BaseBackoff: time.Minute}, "Options.MaxBackoff=10s is below BaseBackoff 1m0s"},
	}
	for _, b := range bad {
		if _, err := New(&http.Client{}, b.opts); err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("New(%+v) = %v, want %q and a fix", b.opts, err, b.want)
		}
	}
}

func TestValidateVersion(t *testing.T) {
	for _, v := range []string{"v24.0", "v21.0", "v26.0", "v3.10", DefaultVersion} {
		if err := ValidateVersion(v); err != nil {
			t.Errorf("ValidateVersion(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "24.0", "v24", "V24.0", "v24.0/", "v24.0\n", "v24.0.1", "v24.x", "latest", "v٢.٠", "../v24.0"} {
		err := ValidateVersion(v)
		if err == nil || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), `fix: use a live version such as "v24.0"`) {
			t.Errorf("ValidateVersion(%q) = %v, want an invalid-input error with a fix", v, err)
		}
	}
}

// TestInvalidInputNoIO checks that every bad argument is refused before a
// request leaves the client.
func TestInvalidInputNoIO(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { okKeyBody(w) })
	c := newClient(t, s)
	good := pkixPEM(t, &key2048().PublicKey)
	type call func(Auth, string) error
	calls := map[string]call{
		"upload": func(a Auth, id string) error { return c.UploadPublicKey(t.Context(), a, id, good) },
		"get": func(a Auth, id string) error {
			_, err := c.GetPublicKey(t.Context(), a, id)
			return err
		},
		"list": func(a Auth, id string) error {
			_, err := c.PhoneNumbers(t.Context(), a, id)
			return err
		},
	}
	badIDs := []string{"", "12a", "../1", "1/2", "1?x=1", "1#x", " 1", "1\n", "-1", "1.0", "１２", "%31", strings.Repeat("9", 33)}
	withTok := func(tok string) Auth { return Auth{Token: NewToken(tok), Version: "v24.0"} }
	badAuth := []struct {
		name string
		auth Auth
		want string
	}{
		{"empty token", withTok(""), "Auth.Token is empty"},
		{"token with newline", withTok(testToken + "\n"), "Auth.Token contains spaces or control characters"},
		{"token with space", withTok("a " + testToken), "Auth.Token contains spaces"},
		{"empty version", Auth{Token: NewToken(testToken)}, "Auth.Version"},
		{"bad version", Auth{Token: NewToken(testToken), Version: "24.0/../../x"}, "is not of the form v<major>.<minor>"},
	}
	for name, f := range calls {
		for _, id := range badIDs {
			err := f(testAuth(), id)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("%s(%q) = %v, want invalid input with a fix", name, id, err)
			}
		}
		for _, b := range badAuth {
			err := f(b.auth, phoneID)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), b.want) {
				t.Errorf("%s with %s = %v, want %q", name, b.name, err, b.want)
			}
			if err != nil {
				assertNoSecret(t, err.Error(), testToken)
			}
		}
	}
	if s.n() != 0 {
		t.Errorf("server saw %d calls, want 0", s.n())
	}
}

func TestZeroClientDoesNotPanic(t *testing.T) {
	for _, c := range []*Client{nil, {}} {
		if _, err := c.GetPublicKey(t.Context(), testAuth(), phoneID); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("GetPublicKey on %#v = %v", c, err)
		}
		if err := c.UploadPublicKey(t.Context(), testAuth(), phoneID, "x"); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("UploadPublicKey on %#v = %v", c, err)
		}
		if _, err := c.PhoneNumbers(t.Context(), testAuth(), phoneID); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("PhoneNumbers on %#v = %v", c, err)
		}
	}
}

func TestAuthNeverPrintsToken(t *testing.T) {
	a := testAuth()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("call", "auth", a, "token", a.Token)
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%q", a.Token),
		fmt.Sprintf("%v", &a), fmt.Sprint(a.Token), string(js), logged.String(),
	} {
		assertNoSecret(t, text, testToken)
		if !strings.Contains(text, redacted) {
			t.Errorf("%q does not show %s", text, redacted)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	c, err := New(&http.Client{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"https://graph.facebook.com/v24.0/1/phone_numbers?after=x":      true,
		"https://GRAPH.facebook.com:443/v24.0/1/phone_numbers":          true,
		"http://graph.facebook.com/v24.0/1/phone_numbers":               false,
		"https://graph.facebook.com:8443/v24.0/1/phone_numbers":         false,
		"https://graph.facebook.com.evil.example/v24.0/1":               false,
		"https://evil.example/v24.0/1":                                  false,
		"https://user@graph.facebook.com/v24.0/1":                       false,
		"https://graph.facebook.com@evil.example/v24.0/1/phone_numbers": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.sameOrigin(u); got != want {
			t.Errorf("sameOrigin(%s) = %v, want %v", raw, got, want)
		}
	}
}
