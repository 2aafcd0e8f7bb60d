package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/metrics"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

const (
	keySecret = "flowkey/whatsapp-flows-key"
	appSecret = "flowkey/meta-app-secret"
	appValue  = "6f1d2b0c9a8e7d6c5b4a39281706f5e4"
	floor     = 5 * time.Second
	ttl       = 5 * time.Minute
)

var pairs = sync.OnceValue(func() []*keypair.Pair {
	out := make([]*keypair.Pair, 3)
	for i := range out {
		p, err := keypair.Generate(rand.Reader)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
})

var testNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeBackend records calls and answers with answer (a 200 echoing the
// action by default).
type fakeBackend struct {
	mu     sync.Mutex
	calls  []*backend.Request
	answer func(ctx context.Context, r *backend.Request) (*backend.Response, error)
}

func (b *fakeBackend) Call(ctx context.Context, r *backend.Request) (*backend.Response, error) {
	b.mu.Lock()
	b.calls = append(b.calls, r)
	answer := b.answer
	b.mu.Unlock()
	if answer != nil {
		return answer(ctx, r)
	}
	return &backend.Response{Status: 200, Response: json.RawMessage(`{"screen":"NEXT","data":{"ok":true}}`)}, nil
}

func (b *fakeBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

type fixture struct {
	t       testing.TB
	sm      *secretsfake.Fake
	keys    *secretsfake.Secret
	clock   *clock
	logs    *logbuf.Buffer
	emf     *logbuf.Buffer
	backend *fakeBackend
	h       *Handler
}

type setup func(*Options)

func skipSignature(o *Options) { o.SkipSignatureCheck, o.Verifier = true, nil }

// newFixture: AWSCURRENT holds pairs()[0], AWSPREVIOUS pairs()[1].
func newFixture(t testing.TB, setups ...setup) *fixture {
	t.Helper()
	f := &fixture{t: t, sm: secretsfake.New(t), clock: &clock{now: testNow}, logs: &logbuf.Buffer{}, emf: &logbuf.Buffer{}, backend: &fakeBackend{}}
	f.keys = f.sm.Add(keySecret)
	f.sm.Put(f.keys, "v1", doc(t, pairs()[1]), secretsfake.StagePrevious)
	f.sm.Put(f.keys, "v2", doc(t, pairs()[0]), secretsfake.StageCurrent)
	app := f.sm.Add(appSecret)
	f.sm.Put(app, "a1", aws.String(`{"app_secret":"`+appValue+`"}`), secretsfake.StageCurrent)
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ring, err := keyring.New(f.sm, keyring.Options{SecretID: keySecret, TTL: ttl, Floor: floor, Logger: log, Now: f.clock.Now,
		Sleep: func(ctx context.Context, d time.Duration) error { f.clock.Advance(d); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	store, err := appsecret.New(f.sm, appsecret.Options{SecretID: appSecret, TTL: ttl, Floor: floor, Logger: log, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Verifier: store, Keys: ring, Backend: f.backend, Logger: log,
		Metrics: metrics.NewEndpoint(f.emf, "flowkey-endpoint", f.clock.Now), Now: f.clock.Now}
	for _, s := range setups {
		s(&opts)
	}
	if f.h, err = New(opts); err != nil {
		t.Fatal(err)
	}
	return f
}

func doc(t testing.TB, p *keypair.Pair) *string {
	t.Helper()
	d := secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion,
		Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}},
		Key:    secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, testNow)}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return &s
}

// encrypt makes a request to pairs()[key] as a WhatsApp client does.
func (f *fixture) encrypt(key int, payload string) *flowclient.Request {
	f.t.Helper()
	r, err := flowclient.Encrypt(pairs()[key].Public(), []byte(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// event is the Function URL event of a signed POST of body.
func event(body []byte) events.LambdaFunctionURLRequest {
	return events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/",
		Headers: map[string]string{"content-type": "application/json", "x-hub-signature-256": flowclient.Sign(appValue, body)},
		Body:    string(body),
		RequestContext: events.LambdaFunctionURLRequestContext{RequestID: "url-request-1",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/"}},
	}
}

func base64Event(body []byte) events.LambdaFunctionURLRequest {
	ev := event(body)
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	return ev
}

func (f *fixture) do(ev events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	f.t.Helper()
	resp, err := f.h.Handle(context.Background(), ev)
	if err != nil {
		f.t.Fatalf("Handle returned an error: %v", err)
	}
	return resp
}

// open decrypts a 200 for the client that sent req.
func (f *fixture) open(req *flowclient.Request, resp events.LambdaFunctionURLResponse) string {
	f.t.Helper()
	if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "text/plain" {
		f.t.Fatalf("got %d %v %q; want 200 text/plain\nlogs:\n%s", resp.StatusCode, resp.Headers, resp.Body, f.logs.String())
	}
	plain, err := req.Decrypt(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(plain)
}

// lastLog is the last "request" log line, decoded.
func (f *fixture) lastLog() map[string]any {
	f.t.Helper()
	var last map[string]any
	for l := range strings.Lines(f.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			last = m
		}
	}
	if last == nil {
		f.t.Fatalf("no request log line:\n%s", f.logs.String())
	}
	return last
}

// wantLog checks fields of the last request log line.
func (f *fixture) wantLog(want map[string]any) {
	f.t.Helper()
	got := f.lastLog()
	for k, v := range want {
		if got[k] != v {
			f.t.Errorf("log %s = %v (%T), want %v; line %v", k, got[k], got[k], v, got)
		}
	}
}

func (f *fixture) smCalls() int { return f.sm.TotalCalls() }

// fixedKey is a Decrypter that returns one AES key without RSA, for the
// benchmark of everything else.
type fixedKey []byte

func (k fixedKey) Decrypt(context.Context, []byte) (keyring.Result, error) {
	return keyring.Result{Plaintext: append([]byte(nil), k...), Label: keyring.LabelCurrent, RSAOps: 1}, nil
}

// benchPrivateKey is the AWSCURRENT private key, through its PKCS#8 PEM.
func benchPrivateKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	block, _ := pem.Decode([]byte(pairs()[0].PrivatePEM()))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}
