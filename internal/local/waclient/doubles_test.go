package waclient

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/flowbackend"
)

// Two business keys, generated once for the package's tests.
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

func publicPEM(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func fingerprint(t *testing.T, k *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// gateway is a test double of the Flows endpoint, written independently
// from Meta's guide: it decrypts with the private keys it holds, answers
// what the sample backend answers, and can be told to get the crypto wrong.
type gateway struct {
	secret []byte

	mu   sync.Mutex
	keys []*rsa.PrivateKey
	bug  string // "", "iv-not-inverted", "wrong-answer", "status-500"
	// seen holds every body answered, to prove each request is a fresh
	// encryption.
	seen  map[string]bool
	posts int
}

func newGateway(secret []byte, keys ...*rsa.PrivateKey) *gateway {
	return &gateway{secret: secret, keys: keys, seen: map[string]bool{}}
}

func (g *gateway) set(bug string, keys ...*rsa.PrivateKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bug, g.keys = bug, keys
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	keys, bug := g.keys, g.bug
	g.posts++
	replayed := g.seen[string(body)]
	g.seen[string(body)] = true
	g.mu.Unlock()

	mac := hmac.New(sha256.New, g.secret)
	mac.Write(body)
	sig, _ := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="))
	if !strings.HasPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=") || !hmac.Equal(sig, mac.Sum(nil)) {
		w.WriteHeader(432)
		return
	}
	if replayed || r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(421)
		return
	}
	var env struct {
		Data string `json:"encrypted_flow_data"`
		Key  string `json:"encrypted_aes_key"`
		IV   string `json:"initial_vector"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if dec.Decode(&env) != nil {
		w.WriteHeader(421)
		return
	}
	encKey, err1 := base64.StdEncoding.DecodeString(env.Key)
	data, err2 := base64.StdEncoding.DecodeString(env.Data)
	iv, err3 := base64.StdEncoding.DecodeString(env.IV)
	if err1 != nil || err2 != nil || err3 != nil || len(encKey) != 256 || len(iv) != 16 {
		w.WriteHeader(421)
		return
	}
	var aesKey []byte
	for _, k := range keys {
		if aesKey, err1 = rsa.DecryptOAEP(sha256.New(), nil, k, encKey, nil); err1 == nil {
			break
		}
	}
	if len(aesKey) != 16 {
		w.WriteHeader(421)
		return
	}
	block, _ := aes.NewCipher(aesKey)
	gcm, _ := cipher.NewGCMWithNonceSize(block, 16)
	plain, err := gcm.Open(nil, iv, data, nil)
	var req flowbackend.FlowRequest
	if err != nil || json.Unmarshal(plain, &req) != nil || req.Version != "3.0" {
		w.WriteHeader(421)
		return
	}
	reply := flowbackend.Respond(req)
	switch {
	case bug == "status-500":
		w.WriteHeader(500)
		return
	case reply.Status == 427:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(427)
		_ = json.NewEncoder(w).Encode(map[string]string{"error_msg": reply.ErrorMsg})
		return
	}
	out, _ := json.Marshal(reply.Response)
	if bug == "wrong-answer" {
		out = []byte(`{"screen":"PARTY","data":{}}`)
	}
	flipped := make([]byte, 16)
	for i := range iv {
		flipped[i] = ^iv[i]
	}
	if bug == "iv-not-inverted" {
		flipped = iv
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, base64.StdEncoding.EncodeToString(gcm.Seal(nil, flipped, out, nil)))
}

// graph is a test double of graphsim's GET of the business key.
type graph struct {
	token string

	mu     sync.Mutex
	pem    string // "" for no key
	status string
	flat   bool // Meta's guide's flat object instead of Graph's data[]
	gets   int
}

func (g *graph) serve(pemKey, status string, flat bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pem, g.status, g.flat = pemKey, status, flat
}

func (g *graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gets++
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+g.token ||
		!strings.HasPrefix(r.URL.Path, "/v24.0/") || !strings.HasSuffix(r.URL.Path, "/whatsapp_business_encryption") {
		w.WriteHeader(400)
		return
	}
	item := map[string]string{"business_public_key": g.pem, "business_public_key_signature_status": g.status}
	switch {
	case g.flat:
		_ = json.NewEncoder(w).Encode(item)
	case g.pem == "":
		_, _ = io.WriteString(w, `{"data":[]}`)
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"data": []any{item}})
	}
}

func (g *graph) getCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets
}

// fixture is a population in front of both doubles.
type fixture struct {
	gw    *gateway
	graph *graph
	pop   *Population
}

var appSecret = []byte("00112233445566778899aabbccddeeff")

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	keys := testKeys()
	f := &fixture{gw: newGateway(appSecret, keys[0]), graph: &graph{token: "tok"}}
	f.graph.serve(publicPEM(t, keys[0]), "VALID", false)
	gw, gr := httptest.NewServer(f.gw), httptest.NewServer(f.graph)
	t.Cleanup(gw.Close)
	t.Cleanup(gr.Close)
	opts.EndpointURL, opts.GraphURL, opts.GraphToken = gw.URL, gr.URL, "tok"
	if opts.AppSecret == nil {
		opts.AppSecret = appSecret
	}
	if opts.Phones == nil {
		opts.Phones = []string{"106540352242922", "106540352250841"}
	}
	if opts.MinKeyTTL == 0 {
		opts.MinKeyTTL, opts.MaxKeyTTL = time.Hour, 2*time.Hour // no expiry unless a test moves the clock
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.pop = p
	return f
}

func (f *fixture) rounds(t *testing.T, n int) Stats {
	t.Helper()
	for range n {
		if err := f.pop.Round(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return f.pop.Stats()
}
