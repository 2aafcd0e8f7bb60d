package graph

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testToken is long and distinctive so that a leak is unmistakable.
const testToken = "EAAGm0PX4ZCpsBAKZBtestTOKENsecret9f8e7d6c5b4a"

const testTokenSecret = "flowkey/graph-token"

func testAuth() Auth {
	return Auth{Token: NewToken(testToken), Version: "v24.0", TokenSecret: testTokenSecret}
}

const phoneID = "106540352242922"

// Keys are generated once per test binary: RSA generation is the slowest
// thing these tests do.
var (
	key2048 = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(2048) })
	key1024 = sync.OnceValue(func() *rsa.PrivateKey { return mustKey(1024) })
)

func mustKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func pkixPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// server counts the requests its handler sees.
type server struct {
	*httptest.Server
	calls atomic.Int32
}

func newServer(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(int(s.calls.Add(1)), w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) n() int { return int(s.calls.Load()) }

// testOptions are fast and deterministic: 1ms backoff, fixed jitter.
func testOptions(baseURL string) Options {
	return Options{
		BaseURL:        baseURL,
		MaxAttempts:    3,
		BaseBackoff:    time.Millisecond,
		MaxBackoff:     4 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
		Jitter:         func() float64 { return 0.5 },
	}
}

func newClient(t *testing.T, s *server, mod ...func(*Options)) *Client {
	t.Helper()
	o := testOptions(s.URL)
	for _, m := range mod {
		m(&o)
	}
	c, err := New(s.Client(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type gErr struct {
	Message   string `json:"message,omitempty"`
	Type      string `json:"type,omitempty"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode,omitempty"`
	FBTraceID string `json:"fbtrace_id,omitempty"`
	ErrorData any    `json:"error_data,omitempty"`
	UserTitle string `json:"error_user_title,omitempty"`
	UserMsg   string `json:"error_user_msg,omitempty"`
}

func writeGraphError(w http.ResponseWriter, status int, e gErr) {
	writeJSON(w, status, map[string]any{"error": e})
}

// drop hijacks the connection and closes it without a response.
func drop(t *testing.T) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
}

// recordSleep replaces the client's wait so tests see the waits it asks
// for without spending them.
func recordSleep(c *Client) *[]time.Duration {
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return waits
}

func assertNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			// Not printing the text: it holds the secret.
			t.Errorf("secret #%d leaked into a %d-byte text", i, len(text))
		}
	}
}
