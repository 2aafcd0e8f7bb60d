package graph

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestUploadRequest(t *testing.T) {
	pub := &key2048().PublicKey
	canonical := pkixPEM(t, pub)
	type seen struct {
		method, path, contentType, auth, accept string
		rawBody                                 string
	}
	got := make(chan seen, 1)
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("Accept"), string(b)}
		writeJSON(w, 200, map[string]bool{"success": true})
	})
	// CRLF line ends and surrounding blank lines still yield the canonical PEM.
	in := "\n\n" + strings.ReplaceAll(canonical, "\n", "\r\n") + "\n"
	if err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, in); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != http.MethodPost || r.path != "/v24.0/"+phoneID+"/whatsapp_business_encryption" ||
		r.contentType != "application/x-www-form-urlencoded" || r.auth != "Bearer "+testToken || r.accept != "application/json" {
		t.Errorf("request %s %s, Content-Type %q, Accept %q, Authorization ok=%v", r.method, r.path, r.contentType, r.accept, r.auth == "Bearer "+testToken)
	}
	form, err := url.ParseQuery(r.rawBody)
	if err != nil {
		t.Fatalf("body is not form-encoded: %v", err)
	}
	if len(form) != 1 || form.Get("business_public_key") != canonical {
		t.Errorf("form = %v, want only business_public_key=<canonical PEM>", form)
	}
	if !strings.Contains(r.rawBody, "business_public_key=-----BEGIN+PUBLIC+KEY-----%0A") {
		t.Errorf("body is not URL-encoded: %.60q", r.rawBody)
	}
}

func TestUploadResponses(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		calls int
		ok    bool
	}{
		{"success", `{"success":true}`, 1, true},
		{"success false", `{"success":false}`, 3, false},
		{"no success field", `{}`, 3, false},
		{"success as string", `{"success":"true"}`, 3, false},
		{"not JSON", `OK`, 3, false},
		{"empty", ``, 3, false},
	}
	pemText := pkixPEM(t, &key2048().PublicKey)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, tc.body) })
			err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pemText)
			if s.n() != tc.calls {
				t.Errorf("server saw %d calls, want %d", s.n(), tc.calls)
			}
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ge *Error
			if !errors.As(err, &ge) || !errors.Is(err, ErrMalformedResponse) || !ge.Retryable || ge.HTTPStatus != 200 || ge.Attempts != 3 {
				t.Errorf("err = %v, want a retryable malformed-response *Error after 3 attempts", err)
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"success":false}`) })
		err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pemText)
		const want = "graph upload 106540352242922: HTTP 200: malformed response: success is false after 3 attempts"
		if err == nil || err.Error() != want {
			t.Errorf("Error() = %v\nwant       %s", err, want)
		}
	})
}

func TestUploadRetriesDroppedConnection(t *testing.T) {
	pemText := pkixPEM(t, &key2048().PublicKey)
	s := newServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		// Every attempt must carry the whole form again.
		if err := r.ParseForm(); err != nil || r.PostForm.Get("business_public_key") != pemText {
			t.Errorf("attempt %d: form incomplete (%v)", n, err)
		}
		if n <= 2 {
			drop(t)(w)
			return
		}
		writeJSON(w, 200, map[string]bool{"success": true})
	})
	if err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pemText); err != nil || s.n() != 3 {
		t.Errorf("err = %v after %d calls, want success on the 3rd", err, s.n())
	}
}

func TestUploadRejectsBadKeysWithoutIO(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]bool{"success": true})
	})
	c := newClient(t, s)
	priv := key2048()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	pkcs1Priv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}))
	good := pkixPEM(t, &priv.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name, pem, want string
	}{
		{"blank", "  \n", "is blank"},
		{"garbage", "hello", "is not PEM"},
		{"PKCS#8 private key", privPEM, "PRIVATE key"},
		{"PKCS#1 private key", pkcs1Priv, "PRIVATE key"},
		{"public then private", good + privPEM, "PRIVATE key"},
		{"two public keys", good + good, "text after the PEM block"},
		{"text before", "key:\n" + good, "text before the PEM block"},
		{"1024-bit", pkixPEM(t, &key1024().PublicKey), "is a 1024-bit RSA key; Flows needs 2048 bits"},
		{"e=3", pkixPEM(t, &rsa.PublicKey{N: priv.N, E: 3}), "has public exponent 3; Flows needs 65537"},
		{"ECDSA", pkixPEM(t, &ec.PublicKey), "is an ECDSA key, not RSA"},
		{"certificate", strings.Replace(good, "PUBLIC KEY", "CERTIFICATE", 2), `has PEM type "CERTIFICATE"`},
		{"corrupt DER", strings.Replace(good, "MIIB", "MIIA", 1), "is not a valid PKIX public key"},
		{"encrypted headers", strings.Replace(good, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1), "has PEM headers"},
	}
	for _, tc := range tests {
		err := c.UploadPublicKey(t.Context(), testAuth(), phoneID, tc.pem)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s: err = %v, want invalid input containing %q and a fix", tc.name, err, tc.want)
			continue
		}
		assertNoSecret(t, err.Error(), pemLines(tc.pem)...)
	}
	if s.n() != 0 {
		t.Errorf("server saw %d calls, want 0", s.n())
	}
}

// pemLines returns the base64 lines of every block in text.
func pemLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func TestUploadPEMRedactedFromErrors(t *testing.T) {
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		k := r.PostForm.Get("business_public_key")
		lines := strings.Split(k, "\n")
		writeGraphError(w, 400, gErr{
			Code: 100, Type: "OAuthException",
			Message:   "(#100) Param business_public_key must be a valid key: " + k,
			ErrorData: map[string]string{"details": "line 2 was " + lines[1] + " and url " + url.QueryEscape(k)},
			UserTitle: "raw " + r.Form.Encode(),
		})
	})
	pemText := pkixPEM(t, &key2048().PublicKey)
	err := newClient(t, s).UploadPublicKey(t.Context(), testAuth(), phoneID, pemText)
	var ge *Error
	if !errors.As(err, &ge) || ge.Code != 100 {
		t.Fatalf("err = %v", err)
	}
	secrets := append(pemLines(pemText), url.QueryEscape(pemText), testToken)
	for _, text := range []string{err.Error(), fmt.Sprintf("%#v", *ge)} {
		assertNoSecret(t, text, secrets...)
	}
	if !strings.HasPrefix(ge.Message, "(#100) Param business_public_key must be a valid key: "+redacted) {
		t.Errorf("Message = %q", ge.Message)
	}
}

func TestGetPublicKeyShapes(t *testing.T) {
	pub := &key2048().PublicKey
	good := pkixPEM(t, pub)
	wantDER, _ := x509.MarshalPKIXPublicKey(pub)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
	oneLine := strings.ReplaceAll(good, "\n", "")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key2048())
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))

	flat := func(k, st any) string {
		b, _ := json.Marshal(map[string]any{"business_public_key": k, "business_public_key_signature_status": st})
		return string(b)
	}
	wrapped := func(k, st any) string {
		b, _ := json.Marshal(map[string]any{"data": []any{map[string]any{"business_public_key": k, "business_public_key_signature_status": st}}})
		return string(b)
	}
	tests := []struct {
		name       string
		body       string
		wantPEM    string
		wantStatus string
		wantKey    bool
		problem    string // substring of KeyProblem; "" for none
	}{
		{"flat VALID", flat(good, "VALID"), good, StatusValid, true, ""},
		{"wrapped VALID", wrapped(good, "VALID"), good, StatusValid, true, ""},
		{"wrapped MISMATCH blank", wrapped(" ", "MISMATCH"), " ", StatusMismatch, false, ""},
		{"flat MISMATCH blank", flat(" ", "MISMATCH"), " ", StatusMismatch, false, ""},
		{"wrapped MISMATCH with key", wrapped(good, "MISMATCH"), good, StatusMismatch, true, ""},
		{"empty data", `{"data":[]}`, "", "", false, ""},
		{"empty object", `{}`, "", "", false, ""},
		{"null key", wrapped(nil, nil), "", "", false, ""},
		{"status Meta invented", wrapped(good, "PENDING"), good, "PENDING", true, ""},
		{"first data entry wins", `{"data":[{"business_public_key":" ","business_public_key_signature_status":"MISMATCH"},{"business_public_key":"x","business_public_key_signature_status":"VALID"}]}`, " ", StatusMismatch, false, ""},
		{"PKCS#1", wrapped(pkcs1, "VALID"), pkcs1, StatusValid, true, ""},
		{"lost line breaks", wrapped(oneLine, "VALID"), oneLine, StatusValid, true, ""},
		{"escaped line breaks", wrapped(strings.ReplaceAll(good, "\n", `\n`), "VALID"), strings.ReplaceAll(good, "\n", `\n`), StatusValid, true, ""},
		{"1024-bit", wrapped(pkixPEM(t, &key1024().PublicKey), "VALID"), pkixPEM(t, &key1024().PublicKey), StatusValid, false, "is a 1024-bit RSA key"},
		{"e=3", wrapped(pkixPEM(t, &rsa.PublicKey{N: pub.N, E: 3}), "VALID"), pkixPEM(t, &rsa.PublicKey{N: pub.N, E: 3}), StatusValid, false, "public exponent 3"},
		{"ECDSA", flat(pkixPEM(t, &ec.PublicKey), "VALID"), pkixPEM(t, &ec.PublicKey), StatusValid, false, "ECDSA"},
		{"garbage", wrapped("AAA BBB", "MISMATCH"), "AAA BBB", StatusMismatch, false, "is not PEM"},
		{"private key", wrapped(privPEM, "VALID"), privPEM, StatusValid, false, "PRIVATE key"},
		// Meta's v23 reference example of a VALID answer has no key: Meta
		// holds one that flowkey cannot see, which is not "no key".
		{"VALID without a key", `{"data":[{"business_public_key_signature_status":"VALID"}]}`, "", StatusValid, false, "Meta answered VALID but returned no key"},
		{"VALID with a blank key", wrapped(" ", "VALID"), " ", StatusValid, false, "Meta answered VALID but returned no key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/v24.0/"+phoneID+"/whatsapp_business_encryption" || r.Header.Get("Authorization") != "Bearer "+testToken {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				// Without fields, Meta's v23 example answers the status alone.
				if got := r.URL.RawQuery; got != "fields=business_public_key%2Cbusiness_public_key_signature_status" {
					t.Errorf("query = %q, want the two fields asked for explicitly", got)
				}
				io.WriteString(w, tc.body)
			})
			reg, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
			if err != nil {
				t.Fatal(err)
			}
			if reg.PublicKeyPEM != tc.wantPEM || reg.Status != tc.wantStatus {
				t.Errorf("PEM %.30q status %q, want %.30q %q", reg.PublicKeyPEM, reg.Status, tc.wantPEM, tc.wantStatus)
			}
			if tc.wantKey {
				if reg.PublicKey == nil || reg.PublicKey.N.Cmp(pub.N) != 0 || !bytes.Equal(reg.PublicDER, wantDER) || reg.KeyProblem != "" {
					t.Errorf("key not parsed: key=%v DER %d bytes problem %q", reg.PublicKey != nil, len(reg.PublicDER), reg.KeyProblem)
				}
				return
			}
			if reg.PublicKey != nil || reg.PublicDER != nil {
				t.Errorf("PublicKey set for %s", tc.name)
			}
			if tc.problem == "" && reg.KeyProblem != "" || !strings.Contains(reg.KeyProblem, tc.problem) {
				t.Errorf("KeyProblem = %q, want %q", reg.KeyProblem, tc.problem)
			}
			assertNoSecret(t, reg.KeyProblem, pemLines(tc.wantPEM)...)
		})
	}
}

func TestGetPublicKeyMalformedShapes(t *testing.T) {
	for _, body := range []string{`null`, `[]`, `{"data":{}}`, `{"data":[1]}`, `{"business_public_key":7}`, `{"data":[]} trailing`} {
		s := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })
		_, err := newClient(t, s).GetPublicKey(t.Context(), testAuth(), phoneID)
		if !errors.Is(err, ErrMalformedResponse) || s.n() != 3 {
			t.Errorf("%s: err = %v after %d calls, want malformed after 3", body, err, s.n())
		}
	}
}

func TestGetPublicKeyOverTLS(t *testing.T) {
	good := pkixPEM(t, &key2048().PublicKey)
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"data": []any{map[string]string{"business_public_key": good, "business_public_key_signature_status": "VALID"}}})
	}))
	defer s.Close()
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("unexpected TLS server URL %s", s.URL)
	}
	c, err := New(s.Client(), testOptions(s.URL))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.GetPublicKey(t.Context(), testAuth(), phoneID)
	if err != nil || reg.PublicKey == nil || reg.Status != StatusValid {
		t.Fatalf("GetPublicKey over TLS = %+v, %v", reg, err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	good := pkixPEM(t, &key2048().PublicKey)
	var seen sync.Map
	s := newServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		// Each number's first attempt fails, so retries run concurrently too.
		if _, again := seen.LoadOrStore(r.URL.Path, true); !again {
			writeGraphError(w, 500, gErr{Code: 131000})
			return
		}
		writeJSON(w, 200, map[string]any{"data": []any{map[string]string{"business_public_key": good, "business_public_key_signature_status": "VALID"}}})
	})
	c := newClient(t, s)
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.GetPublicKey(t.Context(), testAuth(), fmt.Sprint(1000+i))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s.n() != 2*n {
		t.Errorf("server saw %d calls, want %d", s.n(), 2*n)
	}
}

func BenchmarkDecodeRegistration(b *testing.B) {
	good := pkixPEM(b, &key2048().PublicKey)
	body, _ := json.Marshal(map[string]any{"data": []any{map[string]string{"business_public_key": good, "business_public_key_signature_status": "VALID"}}})
	b.ReportAllocs()
	for b.Loop() {
		reg, err := decodeRegistration(body)
		if err != nil || reg.PublicKey == nil {
			b.Fatal(reg, err)
		}
	}
}
