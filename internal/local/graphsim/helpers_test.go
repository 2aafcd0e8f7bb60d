package graphsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

const (
	testToken = "EAAtestTOKENvalue0123456789"
	testWABA  = "102290129340398"
	numA      = "106540352242922"
	numB      = "106540352250841"
	numC      = "106540352258760"
)

// testKeySet is generated once per test binary: RSA generation is slow.
type testKeySet struct {
	pems   []string // three distinct RSA-2048 PKIX PEMs
	ders   [][]byte
	rsa1k  string // RSA-1024 PKIX PEM
	ec     string // P-256 PKIX PEM
	pkcs1  string // RSA-2048 as "RSA PUBLIC KEY"
	priv   string // RSA-2048 private key PEM (PKCS#8)
	bodies []string
}

var testKeys = sync.OnceValue(func() testKeySet {
	var ks testKeySet
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			panic(err)
		}
		ks.ders = append(ks.ders, der)
		ks.pems = append(ks.pems, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
		if ks.pkcs1 == "" {
			ks.pkcs1 = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
			p8, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				panic(err)
			}
			ks.priv = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ks.rsa1k = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ = x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ks.ec = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, p := range append(append([]string{}, ks.pems...), ks.rsa1k, ks.ec, ks.pkcs1, ks.priv) {
		ks.bodies = append(ks.bodies, pemBody(p))
	}
	return ks
})

// pemBody is a line from the middle of a PEM's base64: if it shows up in
// output, key material leaked.
func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	return lines[len(lines)/2]
}

// testClock is an injectable clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	sim   *Sim
	srv   *httptest.Server
	clock *testClock
	logs  *logbuf.Buffer
}

// newFixture starts a simulator with WABA testWABA holding numA, numB, numC.
func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), logs: &logbuf.Buffer{}}
	opts := Options{Token: testToken, Now: f.clock.Now, Logger: newJSONLogger(f.logs)}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for i, id := range []string{numA, numB, numC} {
		if err := s.AddPhoneNumber(testWABA, id, "+1 202-555-010"+string(rune('0'+i)), "Flowkey Test"); err != nil {
			t.Fatalf("AddPhoneNumber: %v", err)
		}
	}
	f.sim = s
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) graphErr(t *testing.T) graphErrorBody {
	t.Helper()
	var ge graphErrorBody
	if err := json.Unmarshal(r.body, &ge); err != nil || ge.Error.Message == "" {
		t.Fatalf("body is not a Graph error (HTTP %d): %s", r.status, r.body)
	}
	return ge
}

type graphErrorBody struct {
	Error struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		Subcode   int    `json:"error_subcode"`
		FBTraceID string `json:"fbtrace_id"`
		ErrorData *struct {
			MessagingProduct string `json:"messaging_product"`
			Details          string `json:"details"`
		} `json:"error_data"`
	} `json:"error"`
}

type request struct {
	method string
	path   string // may carry a query
	form   url.Values
	body   string // raw body, with ctype
	ctype  string
	auth   string // Authorization header; "" = "Bearer testToken"; "-" = none
}

func (f *fixture) do(t *testing.T, rq request) response {
	t.Helper()
	return doWith(t, http.DefaultClient, f.srv.URL, rq)
}

func doWith(t *testing.T, hc *http.Client, base string, rq request) response {
	t.Helper()
	var body io.Reader
	ctype := rq.ctype
	switch {
	case rq.form != nil:
		body = strings.NewReader(rq.form.Encode())
		ctype = "application/x-www-form-urlencoded"
	case rq.body != "":
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(context.Background(), rq.method, base+rq.path, body)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch rq.auth {
	case "":
		req.Header.Set("Authorization", "Bearer "+testToken)
	case "-":
	default:
		req.Header.Set("Authorization", rq.auth)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func encPath(id string) string { return "/v24.0/" + id + "/whatsapp_business_encryption" }

func (f *fixture) upload(t *testing.T, id, pemKey string) response {
	t.Helper()
	return f.do(t, request{method: http.MethodPost, path: encPath(id), form: url.Values{"business_public_key": {pemKey}}})
}

type getBody struct {
	Data []struct {
		Key    *string `json:"business_public_key"`
		Status *string `json:"business_public_key_signature_status"`
	} `json:"data"`
}

// getKey GETs a number's key, asking for both fields as graph.Client
// does, and returns (pem, status); ("", "") for an empty data array.
func (f *fixture) getKey(t *testing.T, id string) (string, string) {
	t.Helper()
	r := f.do(t, request{method: http.MethodGet, path: encPath(id) + "?fields=business_public_key,business_public_key_signature_status"})
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", id, r.status, r.body)
	}
	var gb getBody
	if err := json.Unmarshal(r.body, &gb); err != nil {
		t.Fatalf("GET body: %v: %s", err, r.body)
	}
	switch len(gb.Data) {
	case 0:
		return "", ""
	case 1:
		if gb.Data[0].Key == nil || gb.Data[0].Status == nil {
			t.Fatalf("GET item lacks a field: %s", r.body)
		}
		return *gb.Data[0].Key, *gb.Data[0].Status
	default:
		t.Fatalf("GET returned %d items: %s", len(gb.Data), r.body)
		return "", ""
	}
}

// control POSTs a JSON body to a control route.
func (f *fixture) control(t *testing.T, method, path, body string) response {
	t.Helper()
	return f.do(t, request{method: method, path: path, body: body, ctype: "application/json", auth: "-"})
}

func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newServer(t *testing.T, s *Sim) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

type quietResponse struct {
	status int
	body   []byte
	err    error
}

// doQuiet is do for goroutines: it reports failures instead of calling t.Fatal.
func doQuiet(base string, rq request) quietResponse {
	req, err := http.NewRequestWithContext(context.Background(), rq.method, base+rq.path, strings.NewReader(rq.body))
	if err != nil {
		return quietResponse{err: err}
	}
	if rq.ctype != "" {
		req.Header.Set("Content-Type", rq.ctype)
	}
	if rq.auth == "" {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return quietResponse{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return quietResponse{status: res.StatusCode, body: b, err: err}
}

func urlEscape(s string) string { return url.QueryEscape(s) }
