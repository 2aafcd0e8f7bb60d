package keyring_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

const secretName = "flowkey/whatsapp-flows-key"

// pairs are generated once per test binary: RSA generation dominates
// otherwise.
var pairs = sync.OnceValue(func() []*keypair.Pair {
	out := make([]*keypair.Pair, 4)
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

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t     testing.TB
	sm    *secretsfake.Fake
	s     *secretsfake.Secret
	clock *clock
	logs  *logbuf.Buffer
	ring  *keyring.Ring
	// slept is the time the ring spent waiting out its floor.
	slept atomic.Int64
}

const (
	ttl   = time.Minute
	floor = 5 * time.Second
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, sm: secretsfake.New(t), clock: &clock{now: testNow}, logs: &logbuf.Buffer{}}
	f.s = f.sm.Add(secretName)
	f.ring = f.newRing(f.sm)
	return f
}

func (f *fixture) newRing(sm keyring.SecretsAPI) *keyring.Ring {
	f.t.Helper()
	r, err := keyring.New(sm, keyring.Options{
		SecretID: secretName, TTL: ttl, Floor: floor,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    f.clock.Now,
		// Waiting out the floor advances the test's clock instead of
		// sleeping.
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.clock.Advance(d)
			f.slept.Add(int64(d))
			return ctx.Err()
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// doc is the secret document of a version holding p.
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

func (f *fixture) put(version string, p *keypair.Pair, labels ...string) {
	f.t.Helper()
	f.sm.Put(f.s, version, doc(f.t, p), labels...)
}

// block encrypts a 16-byte AES key to p as a WhatsApp client does.
func block(t testing.TB, p *keypair.Pair) []byte {
	t.Helper()
	b, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, p.Public(), []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) decrypt(b []byte) (keyring.Result, error) {
	f.t.Helper()
	return f.ring.Decrypt(context.Background(), b)
}

func (f *fixture) mustDecrypt(b []byte, wantLabel string) keyring.Result {
	f.t.Helper()
	res, err := f.decrypt(b)
	if err != nil {
		f.t.Fatalf("Decrypt: %v (result %+v)", err, res)
	}
	if res.Label != wantLabel || string(res.Plaintext) != "0123456789abcdef" {
		f.t.Fatalf("decrypted by %s (%d bytes), want %s", res.Label, len(res.Plaintext), wantLabel)
	}
	return res
}

func (f *fixture) calls() (describe, get int) {
	return f.sm.Calls(secretsfake.OpDescribeSecret), f.sm.Calls(secretsfake.OpGetSecretValue)
}

func (f *fixture) wantCalls(describe, get int) {
	f.t.Helper()
	if d, g := f.calls(); d != describe || g != get {
		f.t.Fatalf("Secrets Manager calls: %d DescribeSecret, %d GetSecretValue; want %d, %d", d, g, describe, get)
	}
}

// assertNoKeyMaterial fails if the logs hold any part of a private key.
func (f *fixture) assertNoKeyMaterial() {
	f.t.Helper()
	logs := f.logs.String()
	if strings.Contains(logs, "PRIVATE KEY") {
		f.t.Fatal("a log line holds a PEM")
	}
	for _, p := range pairs() {
		body := strings.Split(p.PrivatePEM(), "\n")[5]
		if strings.Contains(logs, body) {
			f.t.Fatal("a log line holds a line of a private key")
		}
	}
}

// gated is a Secrets Manager whose DescribeSecret, while gated, announces
// itself on entered and waits for release.
type gated struct {
	*secretsfake.Fake
	mu      sync.Mutex
	on      bool
	entered chan struct{}
	release chan struct{}
}

func (g *gated) gate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.on, g.entered, g.release = true, make(chan struct{}, 16), make(chan struct{})
}

func (g *gated) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	g.mu.Lock()
	on, entered, release := g.on, g.entered, g.release
	g.mu.Unlock()
	if on {
		entered <- struct{}{}
		<-release
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g.Fake.DescribeSecret(ctx, in, o...)
}

// newGatedAfterLoad is a fixture whose ring loaded p[0] as AWSCURRENT
// through a gate, a floor ago, after which p[1] became AWSPENDING: the
// next miss refreshes, and g holds that refresh when gated.
func newGatedAfterLoad(t *testing.T) (*fixture, *gated, []*keypair.Pair) {
	t.Helper()
	f := newFixture(t)
	g := &gated{Fake: f.sm}
	f.ring = f.newRing(g)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(floor)
	f.put("v2", p[1], secretsfake.StagePending)
	return f, g, p
}
