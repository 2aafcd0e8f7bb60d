package tenants

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

var pairs [3]*keypair.Pair

func TestMain(m *testing.M) {
	for i := range pairs {
		var err error
		if pairs[i], err = keypair.Generate(nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

var testNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func docOf(tb testing.TB, p *keypair.Pair, appSecret string) *string {
	tb.Helper()
	d := secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}, AppSecretID: appSecret}}
	if p != nil {
		d.Key = secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, testNow)
	}
	b, err := d.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return aws.String(string(b))
}

// addTenant is an enrolled tenant of fleet "prod" whose labels hold the
// first n test pairs (AWSCURRENT, AWSPENDING, AWSPREVIOUS).
func addTenant(tb testing.TB, sm *secretsfake.Fake, id string, n int) *secretsfake.Secret {
	tb.Helper()
	s := sm.Add(fleet.SecretName(fleet.DefaultSecretPrefix, id))
	s.Tags = map[string]string{fleet.TagFleet: "prod", fleet.TagTenant: id}
	for i, label := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"}[:n] {
		sm.Put(s, fmt.Sprintf("v%d-%s", i, id), docOf(tb, pairs[i], ""), label)
	}
	return s
}

func newCache(tb testing.TB, sm *secretsfake.Fake, capacity int, clock *testClock) *Cache {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	c, err := New(sm, Options{FleetName: "prod", SecretPrefix: fleet.DefaultSecretPrefix, AppSecretPrefix: "flowkey/app-secrets/", Capacity: capacity,
		// A miss within the floor advances the test's clock, never sleeps.
		Ring: keyring.Options{Logger: log, Now: clock.Now, Sleep: func(ctx context.Context, d time.Duration) error { clock.advance(d); return ctx.Err() }}, AppSecret: appsecret.Options{Logger: log, Now: clock.Now}, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func block(tb testing.TB, p *keypair.Pair) []byte {
	tb.Helper()
	b, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, p.Public(), []byte("0123456789abcdef"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestATenantsRingLoadsOnceAndDecrypts(t *testing.T) {
	sm := secretsfake.New(t)
	addTenant(t, sm, "acme", 2)
	c := newCache(t, sm, 4, &testClock{now: testNow})
	a, err := c.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Decrypt(context.Background(), block(t, pairs[1]))
	if err != nil || res.Label != "AWSPENDING" {
		t.Fatalf("decrypt: %+v, %v", res, err)
	}
	again, err := c.Tenant(context.Background(), "acme")
	if err != nil || again != a || sm.Calls(secretsfake.OpDescribeSecret) != 1 {
		t.Errorf("second lookup: %v, same %v, %d DescribeSecret", err, again == a, sm.Calls(secretsfake.OpDescribeSecret))
	}
	if id, known := a.AppSecret(); id != "" || !known {
		t.Errorf("app secret %q, %v", id, known)
	}
}

func TestUnknownTenantsAreRememberedForAMinute(t *testing.T) {
	sm := secretsfake.New(t)
	clock := &testClock{now: testNow}
	c := newCache(t, sm, 4, clock)
	other := addTenant(t, sm, "other", 1)
	other.Tags[fleet.TagFleet] = "prod-2"
	gone := addTenant(t, sm, "gone", 1)
	gone.DeletedDate = aws.Time(testNow)
	for _, id := range []string{"ghost", "other", "gone", "Bad/ID"} {
		if _, err := c.Tenant(context.Background(), id); !errors.Is(err, ErrUnknown) {
			t.Errorf("%s: %v", id, err)
		}
	}
	calls := sm.Calls(secretsfake.OpDescribeSecret)
	if calls != 3 || c.Len() != 0 {
		t.Errorf("%d DescribeSecret, %d rings kept", calls, c.Len())
	}
	for range 10 {
		if _, err := c.Tenant(context.Background(), "ghost"); !errors.Is(err, ErrUnknown) {
			t.Fatal(err)
		}
	}
	if n := sm.Calls(secretsfake.OpDescribeSecret); n != calls {
		t.Errorf("a remembered unknown tenant was looked up again (%d calls)", n-calls)
	}
	clock.advance(DefaultNegativeTTL)
	addTenant(t, sm, "ghost", 1) // enrolled meanwhile
	if _, err := c.Tenant(context.Background(), "ghost"); err != nil {
		t.Errorf("after the negative TTL: %v", err)
	}
}

// The cache keeps at most Capacity rings, least recently used first out;
// an evicted ring loads again on its next use.
func TestTheRingCacheIsBoundedAndAnEvictedRingReloads(t *testing.T) {
	sm := secretsfake.New(t)
	c := newCache(t, sm, 3, &testClock{now: testNow})
	ctx := context.Background()
	for i := range 3 {
		addTenant(t, sm, fmt.Sprintf("t%d", i), 1)
		if _, err := c.Tenant(ctx, fmt.Sprintf("t%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Tenant(ctx, "t0"); err != nil { // t0 is now the most recent; t1 the least
		t.Fatal(err)
	}
	addTenant(t, sm, "t3", 1)
	if _, err := c.Tenant(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 {
		t.Errorf("%d rings kept, capacity 3", c.Len())
	}
	before := sm.Calls(secretsfake.OpDescribeSecret)
	for _, id := range []string{"t0", "t2", "t3"} {
		if _, err := c.Tenant(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := sm.Calls(secretsfake.OpDescribeSecret); n != before {
		t.Errorf("kept rings were loaded again (%d calls)", n-before)
	}
	t1, err := c.Tenant(ctx, "t1")
	if err != nil || sm.Calls(secretsfake.OpDescribeSecret) != before+1 {
		t.Fatalf("the evicted ring: %v, %d calls", err, sm.Calls(secretsfake.OpDescribeSecret)-before)
	}
	if _, err := t1.Decrypt(ctx, block(t, pairs[0])); err != nil {
		t.Errorf("the reloaded ring does not decrypt: %v", err)
	}
}

func TestAFailedLoadKeepsTheRingAndRetries(t *testing.T) {
	sm := secretsfake.New(t)
	addTenant(t, sm, "acme", 1)
	clock := &testClock{now: testNow}
	c := newCache(t, sm, 4, clock)
	sm.FailNext(secretsfake.OpDescribeSecret, errors.New("connection reset"))
	a, err := c.Tenant(context.Background(), "acme")
	if err == nil || errors.Is(err, ErrUnknown) || a == nil {
		t.Fatalf("got %v, %v", a, err)
	}
	clock.advance(keyring.DefaultFloor)
	if res, err := a.Decrypt(context.Background(), block(t, pairs[0])); err != nil || res.Label != "AWSCURRENT" {
		t.Errorf("after the floor: %+v, %v", res, err)
	}
}

// Concurrent first requests for a tenant share one load.
func TestConcurrentLookupsShareOneLoad(t *testing.T) {
	sm := secretsfake.New(t)
	addTenant(t, sm, "acme", 3)
	c := newCache(t, sm, 4, &testClock{now: testNow})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.Tenant(context.Background(), "acme"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := sm.Calls(secretsfake.OpDescribeSecret); n != 1 {
		t.Errorf("%d DescribeSecret for one tenant", n)
	}
}

// A fleet of 50 tenants, each decrypting with its own key only.
func TestFiftyTenantsEachDecryptWithTheirOwnKeys(t *testing.T) {
	sm := secretsfake.New(t)
	c := newCache(t, sm, DefaultCapacity, &testClock{now: testNow})
	blocks := [3][]byte{block(t, pairs[0]), block(t, pairs[1]), block(t, pairs[2])}
	for i := range 50 {
		id := fmt.Sprintf("tenant-%02d", i)
		s := sm.Add(fleet.SecretName(fleet.DefaultSecretPrefix, id))
		s.Tags = map[string]string{fleet.TagFleet: "prod"}
		sm.Put(s, "v-"+id, docOf(t, pairs[i%3], ""), "AWSCURRENT")
	}
	for i := range 50 {
		tn, err := c.Tenant(context.Background(), fmt.Sprintf("tenant-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tn.Decrypt(context.Background(), blocks[i%3]); err != nil {
			t.Errorf("tenant %d: its own key: %v", i, err)
		}
		if _, err := tn.Decrypt(context.Background(), blocks[(i+1)%3]); !errors.Is(err, keyring.ErrNoKey) {
			t.Errorf("tenant %d decrypted another tenant's block: %v", i, err)
		}
	}
	if c.Len() != 50 {
		t.Errorf("%d rings", c.Len())
	}
}

func TestAppSecretStoresArePerSecretAndUnderThePrefix(t *testing.T) {
	sm := secretsfake.New(t)
	c := newCache(t, sm, 2, &testClock{now: testNow})
	a, err := c.Verifier("flowkey/app-secrets/a")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Verifier("flowkey/app-secrets/a"); again != a {
		t.Error("a second store for one app secret")
	}
	if _, err := c.Verifier("elsewhere/a"); err == nil {
		t.Error("an app secret outside the prefix is used")
	}
	if !c.PerTenantAppSecrets() {
		t.Error("PerTenantAppSecrets with a prefix")
	}
	for _, id := range []string{"b", "c"} {
		if _, err := c.Verifier("flowkey/app-secrets/" + id); err != nil {
			t.Fatal(err)
		}
	}
	if c.stores.len() != 2 {
		t.Errorf("%d stores kept, capacity 2", c.stores.len())
	}
}
