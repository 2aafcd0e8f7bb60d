package custody

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

const (
	testSecret  = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/whatsapp-flows-key-AbCdEf"
	rotatorRole = "arn:aws:iam::111122223333:role/flowkey-rotator"
	endpoint    = "arn:aws:iam::111122223333:role/flowkey-endpoint"
)

var _ KMSAPI = (*kmsfake.Fake)(nil)

var ctx = context.Background()

// rsaPool is generated once: RSA generation is too slow per test.
var rsaPool = sync.OnceValue(func() []*rsa.PrivateKey {
	out := make([]*rsa.PrivateKey, 4)
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

type fixture struct {
	kms    *kmsfake.Fake
	m      *Manager
	logs   *logbuf.Buffer
	sleeps []time.Duration
	// recorded is the secret's creation tag; Record sets it.
	recorded string
	records  int
}

func newFixture(t *testing.T, opts ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{kms: kmsfake.New(t), logs: &logbuf.Buffer{}}
	n := 0
	f.kms.NewRSAKey = func() (*rsa.PrivateKey, error) { n++; return rsaPool()[(n-1)%len(rsaPool())], nil }
	o := Options{RotatorRoleARN: rotatorRole, DecryptRoleARNs: []string{endpoint}, DeletionDays: 7, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
		Sleep: func(_ context.Context, d time.Duration) error { f.sleeps = append(f.sleeps, d); return nil }}
	for _, fn := range opts {
		fn(&o)
	}
	m, err := New(f.kms, o)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

// request is the Ensure request of version token, recording on the fixture.
func (f *fixture) request(token string) Request {
	return Request{SecretARN: testSecret, Token: token, Recorded: f.recorded,
		Record: func(context.Context) error { f.records++; f.recorded = token; return nil }}
}

// ensureCrashing runs Ensure and reports whether it crashed (kmsfake.Crash).
func (f *fixture) ensureCrashing(t *testing.T, req Request) (crashed bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(kmsfake.Crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	if _, err := f.m.Ensure(ctx, req); err != nil {
		t.Logf("Ensure: %v", err)
	}
	return false
}

// tagged adds a key tagged for the test secret and token.
func (f *fixture) tagged(token string, o kmsfake.KeyOptions) *kmsfake.Key {
	if o.Tags == nil {
		o.Tags = map[string]string{}
	}
	o.Tags[TagSecretARN], o.Tags[TagRotationToken] = testSecret, token
	return f.kms.AddKey(o)
}

func asUnusable(t *testing.T, err error) *UnusableError {
	t.Helper()
	var u *UnusableError
	if !errors.As(err, &u) {
		t.Fatalf("err = %v, want *UnusableError", err)
	}
	return u
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *custody.Error", err, err)
	}
	return e
}

func liveIDs(f *kmsfake.Fake) []string {
	var out []string
	for _, k := range f.Live() {
		if k.Spec == types.KeySpecRsa2048 {
			out = append(out, k.ID)
		}
	}
	return out
}
