package appsecret_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

const (
	secretName = "flowkey/meta-app-secret"
	appSecret  = "0123456789abcdef0123456789abcdef"
	ttl        = time.Minute
	floor      = 5 * time.Second
)

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

type fixture struct {
	sm    *secretsfake.Fake
	s     *secretsfake.Secret
	clock *clock
	logs  *logbuf.Buffer
	store *appsecret.Store
}

func newFixture(t *testing.T, value string) *fixture {
	t.Helper()
	f := &fixture{sm: secretsfake.New(t), clock: &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, logs: &logbuf.Buffer{}}
	f.s = f.sm.Add(secretName)
	f.setValue(value)
	var err error
	f.store, err = appsecret.New(f.sm, appsecret.Options{SecretID: secretName, TTL: ttl, Floor: floor, Now: f.clock.Now,
		Logger: slogTo(f.logs)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) setValue(v string) {
	f.sm.Put(f.s, "v"+itoa(len(f.s.Values)), aws.String(v), secretsfake.StageCurrent)
}

func (f *fixture) reads() int { return f.sm.Calls(secretsfake.OpGetSecretValue) }

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		appSecret:                            appSecret,
		"  " + appSecret + "\n":              appSecret,
		`{"app_secret":"` + appSecret + `"}`: appSecret,
		`{"app_id":"123","app_secret":" ` + appSecret + ` "}`: appSecret,
	} {
		got, err := appsecret.Parse(in)
		if err != nil || string(got) != want {
			t.Errorf("Parse(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "  ", "two words", `{"app_secret":1}`, `{"secret":"x"}`, `{"app_secret":"a","app_secret":"b"}`, `{"app_secret":`, `{"app_secret":""}`} {
		_, err := appsecret.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
			continue
		}
		if strings.Contains(err.Error(), "words") {
			t.Errorf("Parse(%q) quotes the value: %v", in, err)
		}
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"encrypted_flow_data":"..."}`)
	good := flowclient.Sign(appSecret, body)
	tests := []struct {
		name, header string
		body         []byte
		want         error
	}{
		{"Meta's signature", good, body, nil},
		{"upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, nil},
		{"missing", "", body, appsecret.ErrMissing},
		{"no prefix", strings.TrimPrefix(good, "sha256="), body, appsecret.ErrMalformed},
		{"sha1", "sha1=" + strings.TrimPrefix(good, "sha256=")[:40], body, appsecret.ErrMalformed},
		{"short", good[:len(good)-2], body, appsecret.ErrMalformed},
		{"long", good + "00", body, appsecret.ErrMalformed},
		{"not hex", good[:len(good)-1] + "g", body, appsecret.ErrMalformed},
		{"two values joined", good + "," + good, body, appsecret.ErrMalformed},
		{"another secret", flowclient.Sign("another", body), body, appsecret.ErrMismatch},
		{"another body", good, []byte(`{"encrypted_flow_data":".."}`), appsecret.ErrMismatch},
		{"one bit", good[:len(good)-1] + flipHex(good[len(good)-1]), body, appsecret.ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, appSecret)
			if err := f.store.Verify(context.Background(), tc.body, tc.header); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAMalformedHeaderNeedsNoSecret(t *testing.T) {
	f := newFixture(t, appSecret)
	for _, h := range []string{"", "sha256=zz", "Bearer x"} {
		_ = f.store.Verify(context.Background(), []byte("x"), h)
	}
	if n := f.reads(); n != 0 {
		t.Fatalf("%d reads of the app secret for headers that cannot match", n)
	}
}

func TestWrongSignaturesReadTheSecretAtMostOncePerFloor(t *testing.T) {
	f := newFixture(t, appSecret)
	body := []byte("body")
	if err := f.store.Verify(context.Background(), body, flowclient.Sign(appSecret, body)); err != nil {
		t.Fatal(err)
	}
	wrong := flowclient.Sign("attacker", body)
	burst := func() {
		for range 100 {
			if err := f.store.Verify(context.Background(), body, wrong); !errors.Is(err, appsecret.ErrMismatch) {
				t.Fatal(err)
			}
		}
	}
	burst()
	if n := f.reads(); n != 1 {
		t.Fatalf("%d reads within the floor, want 1", n)
	}
	f.clock.Advance(floor)
	burst()
	if n := f.reads(); n != 2 {
		t.Fatalf("%d reads after one floor, want 2", n)
	}
}

func TestAResetAppSecretIsPickedUpOnTheFirstMismatchAfterTheFloor(t *testing.T) {
	f := newFixture(t, appSecret)
	body := []byte("body")
	if err := f.store.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.setValue(`{"app_secret":"new-secret"}`)
	f.clock.Advance(floor)
	if err := f.store.Verify(context.Background(), body, flowclient.Sign("new-secret", body)); err != nil {
		t.Fatalf("the new secret is not picked up: %v", err)
	}
	sig, err := f.store.Sign(context.Background(), body)
	if err != nil || sig != flowclient.Sign("new-secret", body) {
		t.Fatalf("Sign: %s, %v", sig, err)
	}
}

func TestTheSecretIsReadAgainAfterTheTTL(t *testing.T) {
	f := newFixture(t, appSecret)
	body := []byte("body")
	for range 3 {
		if err := f.store.Verify(context.Background(), body, flowclient.Sign(appSecret, body)); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(ttl)
	if err := f.store.Verify(context.Background(), body, flowclient.Sign(appSecret, body)); err != nil {
		t.Fatal(err)
	}
	if n := f.reads(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
}

func TestAnUnreadableSecretIsUnavailableNotAMismatch(t *testing.T) {
	f := newFixture(t, "   ")
	body := []byte("body")
	var ue *appsecret.UnavailableError
	if err := f.store.Load(context.Background()); !errors.As(err, &ue) {
		t.Fatalf("Load: %v", err)
	}
	if err := f.store.Verify(context.Background(), body, flowclient.Sign(appSecret, body)); !errors.As(err, &ue) {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := f.store.Sign(context.Background(), body); !errors.As(err, &ue) {
		t.Fatalf("Sign: %v", err)
	}
	if n := f.reads(); n != 1 {
		t.Fatalf("%d reads within the floor, want 1", n)
	}
	// A read that fails later keeps the secret already read.
	g := newFixture(t, appSecret)
	if err := g.store.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.sm.FailAlways(secretsfake.OpGetSecretValue, errors.New("throttled"))
	g.clock.Advance(ttl)
	if err := g.store.Verify(context.Background(), body, flowclient.Sign(appSecret, body)); err != nil {
		t.Fatalf("a failed re-read dropped the secret: %v", err)
	}
	if !strings.Contains(g.logs.String(), "cannot read the app secret") || strings.Contains(g.logs.String(), appSecret) {
		t.Fatalf("logs:\n%s", g.logs.String())
	}
}

func TestNewNeedsAClientAndASecret(t *testing.T) {
	if _, err := appsecret.New(nil, appsecret.Options{SecretID: "x"}); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := appsecret.New(secretsfake.New(t), appsecret.Options{}); err == nil {
		t.Fatal("empty SecretID accepted")
	}
}

func flipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}
