package graphsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name  string
		opts  Options
		field string
	}{
		{"no token", Options{}, "Options.Token"},
		{"token with space", Options{Token: "a b"}, "Options.Token"},
		{"negative page size", Options{Token: "t", PageSize: -1}, "Options.PageSize"},
		{"huge page size", Options{Token: "t", PageSize: 5000}, "Options.PageSize"},
		{"bad default version", Options{Token: "t", DefaultVersion: "24.0"}, "Options.DefaultVersion"},
		{"bad version list", Options{Token: "t", Versions: []string{"v24.0", "latest"}}, "Options.Versions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("New = %v, want InputError on %s", err, tc.field)
			}
			if ie.Fix == "" || ie.Problem == "" {
				t.Errorf("error lacks problem or fix: %v", err)
			}
		})
	}
}

func TestUploadThenGet(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	r := f.upload(t, numA, ks.pems[0])
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"success":true}` {
		t.Fatalf("upload: HTTP %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if v := r.header.Get("Facebook-Api-Version"); v != "v24.0" {
		t.Errorf("facebook-api-version = %q", v)
	}
	key, status := f.getKey(t, numA)
	if key != ks.pems[0] || status != StatusValid {
		t.Fatalf("GET = (%q, %q), want the uploaded PEM and VALID", key, status)
	}
	if got := f.sim.Keys()[numA]; !bytes.Equal(got, ks.ders[0]) {
		t.Errorf("Keys()[numA] is not the uploaded key's DER")
	}
	if _, ok := f.sim.Keys()[numB]; ok {
		t.Errorf("Keys() has numB, which has no key")
	}
	// A second upload replaces the first: one active key per number.
	f.upload(t, numA, ks.pems[1])
	if key, _ := f.getKey(t, numA); key != ks.pems[1] {
		t.Errorf("after re-upload GET returns the old key")
	}
}

func TestGetWithoutKeyAndFields(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	r := f.do(t, request{method: http.MethodGet, path: encPath(numB)})
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"data":[]}` {
		t.Fatalf("GET of a number without key: HTTP %d %s", r.status, r.body)
	}
	f.upload(t, numB, ks.pems[0])
	r = f.do(t, request{method: http.MethodGet, path: encPath(numB) + "?fields=business_public_key_signature_status"})
	if strings.TrimSpace(string(r.body)) != `{"data":[{"business_public_key_signature_status":"VALID"}]}` {
		t.Errorf("fields=status: %s", r.body)
	}
	r = f.do(t, request{method: http.MethodGet, path: encPath(numB) + "?fields=bogus"})
	if ge := r.graphErr(t); ge.Error.Code != 100 || !strings.Contains(ge.Error.Message, "nonexisting field (bogus)") {
		t.Errorf("unknown field: %+v", ge.Error)
	}
}

// Without fields, GET answers as Meta's v23 reference example does: the
// status alone. A client that wants the key must ask for it, and the
// request log shows what it asked for.
func TestGetWithoutFieldsAnswersTheStatusAlone(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numA, ks.pems[0])
	r := f.do(t, request{method: http.MethodGet, path: encPath(numA)})
	if strings.TrimSpace(string(r.body)) != `{"data":[{"business_public_key_signature_status":"VALID"}]}` {
		t.Errorf("GET without fields: %s", r.body)
	}
	if key, status := f.getKey(t, numA); key != ks.pems[0] || status != StatusValid {
		t.Errorf("GET with both fields = (%.20q, %q), want the key and VALID", key, status)
	}
	var fields []string
	for _, rq := range f.sim.Requests() {
		if rq.Op == OpGet {
			fields = append(fields, rq.Fields)
		}
	}
	if want := []string{"", "business_public_key,business_public_key_signature_status"}; !slices.Equal(fields, want) {
		t.Errorf("requests recorded fields %q, want %q", fields, want)
	}
}

func TestUploadBodyEncodings(t *testing.T) {
	ks := testKeys()
	multipartBody := func() (string, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("business_public_key", ks.pems[1])
		_ = mw.Close()
		return b.String(), mw.FormDataContentType()
	}
	mb, mct := multipartBody()
	cases := []struct {
		name string
		rq   request
	}{
		{"urlencoded", request{form: url.Values{"business_public_key": {ks.pems[1]}}}},
		{"multipart", request{body: mb, ctype: mct}},
		{"json", request{body: mustJSON(t, map[string]string{"business_public_key": ks.pems[1]}), ctype: "application/json"}},
		{"query", request{path: "?business_public_key=" + url.QueryEscape(ks.pems[1])}},
		{"token in form", request{form: url.Values{"business_public_key": {ks.pems[1]}, "access_token": {testToken}}, auth: "-"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rq := tc.rq
			rq.method = http.MethodPost
			rq.path = encPath(numA) + rq.path
			if r := f.do(t, rq); r.status != http.StatusOK {
				t.Fatalf("HTTP %d %s", r.status, r.body)
			}
			if !bytes.Equal(f.sim.Keys()[numA], ks.ders[1]) {
				t.Errorf("key not stored")
			}
		})
	}
}

func TestUploadRejectsBadKeys(t *testing.T) {
	ks := testKeys()
	cases := []struct {
		name    string
		form    url.Values
		details string
	}{
		{"1024-bit RSA", url.Values{"business_public_key": {ks.rsa1k}}, "1024 bits"},
		{"not PEM", url.Values{"business_public_key": {"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}}, "not PEM"},
		{"empty", url.Values{"business_public_key": {""}}, "not PEM"},
		{"EC key", url.Values{"business_public_key": {ks.ec}}, "ECDSA"},
		{"PKCS#1 block", url.Values{"business_public_key": {ks.pkcs1}}, `"RSA PUBLIC KEY"`},
		{"private key", url.Values{"business_public_key": {ks.priv}}, `"PRIVATE KEY"`},
		{"trailing data", url.Values{"business_public_key": {ks.pems[0] + "junk"}}, "after the PEM block"},
		{"two keys", url.Values{"business_public_key": {ks.pems[0] + ks.pems[1]}}, "after the PEM block"},
		{"missing parameter", url.Values{"other": {"x"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			r := f.do(t, request{method: http.MethodPost, path: encPath(numA), form: tc.form})
			if r.status != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400: %s", r.status, r.body)
			}
			ge := r.graphErr(t)
			if ge.Error.Code != 100 || ge.Error.Type != "OAuthException" || ge.Error.Subcode != 0 || ge.Error.FBTraceID == "" {
				t.Errorf("error = %+v, want code 100 OAuthException with fbtrace_id", ge.Error)
			}
			if tc.details == "" {
				if ge.Error.Message != "(#100) The parameter business_public_key is required" {
					t.Errorf("message = %q", ge.Error.Message)
				}
			} else if ge.Error.ErrorData == nil || !strings.Contains(ge.Error.ErrorData.Details, tc.details) {
				t.Errorf("error_data = %+v, want details containing %q", ge.Error.ErrorData, tc.details)
			}
			for _, body := range ks.bodies {
				if strings.Contains(string(r.body), body) {
					t.Fatalf("error body echoes key material")
				}
			}
			if len(f.sim.Keys()) != 0 {
				t.Errorf("a rejected key was stored")
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	ks := testKeys()
	const wrong = "EAAwrongTOKENxyz"
	cases := []struct {
		name   string
		rq     request
		status int
		code   int
		www    string
	}{
		{"bearer", request{}, 200, 0, ""},
		{"oauth scheme", request{auth: "OAuth " + testToken}, 200, 0, ""},
		{"query access_token", request{auth: "-", path: "?access_token=" + testToken}, 200, 0, ""},
		{"missing", request{auth: "-"}, 401, 104, `"invalid_request"`},
		{"wrong bearer", request{auth: "Bearer " + wrong}, 401, 190, `"invalid_token"`},
		{"wrong query", request{auth: "-", path: "?access_token=" + wrong}, 401, 190, `"invalid_token"`},
		{"basic scheme", request{auth: "Basic " + testToken}, 401, 190, `"invalid_token"`},
		{"bearer without token", request{auth: "Bearer"}, 401, 190, `"invalid_token"`},
		{"token prefix", request{auth: "Bearer " + testToken[:10]}, 401, 190, `"invalid_token"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.upload(t, numA, ks.pems[0])
			rq := tc.rq
			rq.method = http.MethodGet
			rq.path = encPath(numA) + rq.path
			r := f.do(t, rq)
			if r.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code == 0 {
				return
			}
			ge := r.graphErr(t)
			if ge.Error.Code != tc.code || ge.Error.Type != "OAuthException" {
				t.Errorf("error = %+v, want code %d OAuthException", ge.Error, tc.code)
			}
			if www := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(www, `OAuth "Facebook Platform" `+tc.www) {
				t.Errorf("WWW-Authenticate = %q", www)
			}
			all := string(r.body) + r.header.Get("WWW-Authenticate")
			if strings.Contains(all, wrong) || strings.Contains(all, testToken) {
				t.Errorf("the response echoes a token")
			}
		})
	}
}

func TestUnknownObjectsAndEdges(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		path    string
		code    int
		subcode int
		typ     string
		message string
	}{
		{"upload to unknown number", http.MethodPost, encPath("999"), 100, 33, "GraphMethodException",
			"Unsupported post request. Object with ID '999' does not exist, cannot be loaded due to missing permissions, or does not support this operation."},
		{"get of unknown number", http.MethodGet, encPath("999"), 100, 33, "GraphMethodException", "Unsupported get request. Object with ID '999'"},
		{"list of unknown WABA", http.MethodGet, "/v24.0/999/phone_numbers", 100, 33, "GraphMethodException", "Object with ID '999'"},
		{"delete on a number", http.MethodDelete, encPath(numA), 100, 33, "GraphMethodException", "Unsupported delete request."},
		{"key endpoint on a WABA", http.MethodGet, encPath(testWABA), 100, 0, "OAuthException",
			"(#100) Tried accessing nonexisting field (whatsapp_business_encryption) on node type (WhatsAppBusinessAccount)"},
		{"phone_numbers on a number", http.MethodGet, "/v24.0/" + numA + "/phone_numbers", 100, 0, "OAuthException",
			"nonexisting field (phone_numbers) on node type (WhatsAppBusinessPhoneNumber)"},
		{"version without v", http.MethodGet, "/24.0/" + numA + "/whatsapp_business_encryption", 2500, 0, "OAuthException",
			"Unknown path components: /" + numA + "/whatsapp_business_encryption"},
		{"version without minor", http.MethodGet, "/v24/" + numA + "/whatsapp_business_encryption", 2500, 0, "OAuthException", "Unknown path components: /"},
		{"extra component", http.MethodGet, encPath(numA) + "/extra", 2500, 0, "OAuthException", "Unknown path components: /extra"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			r := f.do(t, request{method: tc.method, path: tc.path, form: url.Values{"business_public_key": {"x"}}})
			if r.status != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400: %s", r.status, r.body)
			}
			ge := r.graphErr(t)
			if ge.Error.Code != tc.code || ge.Error.Subcode != tc.subcode || ge.Error.Type != tc.typ || !strings.Contains(ge.Error.Message, tc.message) {
				t.Errorf("error = %+v\nwant code %d/%d %s containing %q", ge.Error, tc.code, tc.subcode, tc.typ, tc.message)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, func(o *Options) { o.Versions = []string{"v23.0", "v24.0"}; o.DefaultVersion = "v23.0" })
	f.upload(t, numA, ks.pems[0])
	for path, want := range map[string]int{
		encPath(numA): 200,
		"/v23.0/" + numA + "/whatsapp_business_encryption": 200,
		"/" + numA + "/whatsapp_business_encryption":       200, // Graph serves the default version
		"/v99.0/" + numA + "/whatsapp_business_encryption": 400,
	} {
		r := f.do(t, request{method: http.MethodGet, path: path})
		if r.status != want {
			t.Errorf("GET %s: HTTP %d, want %d: %s", path, r.status, want, r.body)
		}
		if want == 400 {
			if ge := r.graphErr(t); ge.Error.Code != 2500 {
				t.Errorf("GET %s: code %d, want 2500", path, ge.Error.Code)
			}
		}
	}
	r := f.do(t, request{method: http.MethodGet, path: "/" + numA + "/whatsapp_business_encryption"})
	if v := r.header.Get("Facebook-Api-Version"); v != "v23.0" {
		t.Errorf("versionless call reports version %q, want the default v23.0", v)
	}
}

func TestRemovedNumberAnswers100_33(t *testing.T) {
	ks := testKeys()
	f := newFixture(t, nil)
	f.upload(t, numB, ks.pems[0])
	if err := f.sim.RemovePhoneNumber(numB); err != nil {
		t.Fatal(err)
	}
	r := f.upload(t, numB, ks.pems[1])
	if ge := r.graphErr(t); r.status != 400 || ge.Error.Code != 100 || ge.Error.Subcode != 33 {
		t.Fatalf("upload after removal: HTTP %d %+v", r.status, ge.Error)
	}
	if _, ok := f.sim.Keys()[numB]; ok {
		t.Errorf("a removed number still holds a key")
	}
	if err := f.sim.RemovePhoneNumber(numB); !errors.Is(err, ErrNotFound) {
		t.Errorf("second removal = %v, want ErrNotFound", err)
	}
}

func TestNodeRead(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, request{method: http.MethodGet, path: "/v24.0/" + numA})
	var got map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil || got["id"] != numA || got["verified_name"] != "Flowkey Test" {
		t.Fatalf("GET /%s: HTTP %d %s", numA, r.status, r.body)
	}
}
