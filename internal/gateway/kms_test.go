package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

var kmsPrivate = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type kmsFixture struct {
	*fixture
	kms *kmsfake.Fake
	key *kmsfake.Key
}

// newKMSFixture: AWSCURRENT's key is held by a fake KMS, AWSPREVIOUS holds
// pairs()[1] as PEM; the ring decrypts KMS-held versions through
// custody.Decrypter, as functions/endpoint builds it.
func newKMSFixture(t *testing.T) *kmsFixture {
	t.Helper()
	var opts Options
	f := &kmsFixture{fixture: newFixture(t, func(o *Options) { opts = *o }), kms: kmsfake.New(t)}
	f.key = f.kms.AddKey(kmsfake.KeyOptions{Private: kmsPrivate()})
	key, err := secretdoc.NewKMSKey(f.key.ARN, f.key.Public(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	body, err := (&secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}, KeyCustody: "kms"}, Key: key}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	f.sm.Put(f.keys, "v3", &s, secretsfake.StageCurrent)
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dec := custody.NewDecrypter(f.kms, custody.DecrypterOptions{Logger: log, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	ring, err := keyring.New(f.sm, keyring.Options{SecretID: keySecret, TTL: ttl, Floor: floor, Logger: log, Now: f.clock.Now, KMS: dec,
		Sleep: func(ctx context.Context, d time.Duration) error { f.clock.Advance(d); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	opts.Keys = ring
	if f.h, err = New(opts); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *kmsFixture) encryptKMS(payload string) *flowclient.Request {
	f.t.Helper()
	r, err := flowclient.Encrypt(f.key.PublicKey(), []byte(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

const ping = `{"version":"3.0","action":"ping"}`

func TestAKMSHeldKeyServesRequests(t *testing.T) {
	f := newKMSFixture(t)
	req := f.encryptKMS(ping)
	if got := f.open(req, f.do(event(req.Body))); got != `{"data":{"status":"active"}}` {
		t.Fatalf("got %s", got)
	}
	f.wantLog(map[string]any{"outcome": "ping", "status": 200.0, "key_label": "AWSCURRENT", "rsa_ops": 1.0})
	if f.kms.Calls(kmsfake.OpDecrypt) != 1 {
		t.Errorf("%d kms:Decrypt calls", f.kms.Calls(kmsfake.OpDecrypt))
	}
	// A client still on the AWSPREVIOUS (PEM) key: KMS is tried first, as
	// AWSCURRENT, then the PEM key.
	old := f.encrypt(1, ping)
	f.open(old, f.do(event(old.Body)))
	f.wantLog(map[string]any{"key_label": "AWSPREVIOUS", "rsa_ops": 2.0})
}

// TestUnauthenticatedTrafficCostsNoKMSRequest: the signature is checked
// before anything else.
func TestUnauthenticatedTrafficCostsNoKMSRequest(t *testing.T) {
	f := newKMSFixture(t)
	req := f.encryptKMS(ping)
	ev := event(req.Body)
	ev.Headers["x-hub-signature-256"] = flowclient.Sign("another-app-secret", req.Body)
	if resp := f.do(ev); resp.StatusCode != 432 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := f.kms.Calls(kmsfake.OpDecrypt); n != 0 {
		t.Errorf("%d kms:Decrypt calls for a request Meta did not sign", n)
	}
}

// TestWhenKMSCannotDecryptTheAnswerIs421: throttling that outlasts the one
// retry, a key disabled or pending deletion behind flowkey's back: no key
// decrypts, and the client gets 421 (it re-fetches the key and retries),
// never 500. A client of the PEM key is served all the while.
func TestWhenKMSCannotDecryptTheAnswerIs421(t *testing.T) {
	for name, fault := range map[string]func(f *kmsFixture){
		"throttled":        func(f *kmsFixture) { f.kms.FailAlways(kmsfake.OpDecrypt, kmsfake.ThrottlingException()) },
		"disabled":         func(f *kmsFixture) { f.kms.Update(func() { f.key.State = types.KeyStateDisabled }) },
		"pending deletion": func(f *kmsFixture) { f.kms.Update(func() { f.key.State = types.KeyStatePendingDeletion }) },
		"access denied":    func(f *kmsFixture) { f.kms.FailAlways(kmsfake.OpDecrypt, kmsfake.AccessDeniedException()) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newKMSFixture(t)
			fault(f)
			req := f.encryptKMS(ping)
			resp := f.do(event(req.Body))
			if resp.StatusCode != 421 || resp.Body != "" {
				t.Fatalf("got %d %q, want an empty 421", resp.StatusCode, resp.Body)
			}
			f.wantLog(map[string]any{"outcome": "no_key", "status": 421.0})
			old := f.encrypt(1, ping)
			f.open(old, f.do(event(old.Body)))
		})
	}
	t.Run("throttled once", func(t *testing.T) {
		f := newKMSFixture(t)
		f.kms.FailNext(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
		req := f.encryptKMS(ping)
		f.open(req, f.do(event(req.Body)))
		if f.kms.Calls(kmsfake.OpDecrypt) != 2 {
			t.Errorf("%d kms:Decrypt calls, want the throttled one and its retry", f.kms.Calls(kmsfake.OpDecrypt))
		}
	})
}
