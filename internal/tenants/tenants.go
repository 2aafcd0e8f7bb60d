// Package tenants is the Flows endpoint's view of a fleet's tenants
// (internal/fleet): the key ring of each tenant that has traffic, and the
// Meta app secrets that tenants of another app name, loaded on first use
// and kept in memory with a bound on their count.
//
// # Which secret is a tenant's
//
// Tenant t's ring is the secret <SecretPrefix><t> (a keyring.Ring, which
// loads and refreshes it as for the single-secret stack). It is a tenant
// of this fleet only when the secret exists, is not scheduled for
// deletion, and carries the tag flowkey:fleet = FleetName: anything else
// is ErrUnknown, remembered for NegativeTTL (so that a flood of requests
// to a tenant that is not there costs one DescribeSecret a minute, not one
// a request). A ring that cannot be read for another reason (Secrets
// Manager unreachable, throttled) is kept and retried as a ring always is.
//
// # Memory
//
// At most Capacity rings are kept (ENDPOINT_RING_CACHE), least recently
// used first out; an evicted ring is loaded again on its tenant's next
// request (one DescribeSecret and a GetSecretValue a labelled version).
// A ring of three PEM-held RSA-2048 keys takes about 20 KiB
// (BenchmarkRingMemory measures it: 20,194 bytes), so the default 256
// rings take about 5 MiB and 1,000 about 20 MiB; a KMS-held key keeps only
// its ARN. The app secret stores and the unknown
// tenants are bounded by Capacity too.
package tenants

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keyring"
)

// ErrUnknown is a tenant the fleet does not have: no secret, one scheduled
// for deletion, or one of another fleet.
var ErrUnknown = errors.New("tenants: no such tenant in this fleet")

// Defaults.
const (
	DefaultCapacity    = 256
	DefaultNegativeTTL = time.Minute
)

// SecretsAPI is what the rings and the app secret stores call.
type SecretsAPI interface {
	keyring.SecretsAPI
	appsecret.SecretsAPI
}

// Options configure a Cache. FleetName and SecretPrefix are required.
type Options struct {
	FleetName    string
	SecretPrefix string
	// AppSecretPrefix is where a tenant's own app secret may be; "" allows
	// none.
	AppSecretPrefix string
	// Capacity bounds the rings kept, and the app secrets (DefaultCapacity).
	Capacity int
	// Ring is every ring's options but SecretID (TTL, Floor, KMS, Logger).
	Ring keyring.Options
	// AppSecret is every app secret store's options but SecretID.
	AppSecret appsecret.Options
	// NegativeTTL is how long an unknown tenant is remembered
	// (DefaultNegativeTTL).
	NegativeTTL time.Duration
	Now         func() time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	sm   SecretsAPI
	opts Options

	mu      sync.Mutex
	rings   *lru[*Tenant]
	unknown *lru[time.Time] // tenant → when it stops being remembered
	stores  *lru[*appsecret.Store]
}

// New returns an empty Cache.
func New(sm SecretsAPI, opts Options) (*Cache, error) {
	switch {
	case sm == nil:
		return nil, errors.New("tenants: a Secrets Manager client is required")
	case opts.FleetName == "" || opts.SecretPrefix == "":
		return nil, errors.New("tenants: Options.FleetName and Options.SecretPrefix are required")
	}
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = DefaultNegativeTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{sm: sm, opts: opts, rings: newLRU[*Tenant](opts.Capacity), unknown: newLRU[time.Time](opts.Capacity),
		stores: newLRU[*appsecret.Store](opts.Capacity)}, nil
}

// Tenant is one tenant's key ring.
type Tenant struct {
	ID   string
	Ring *keyring.Ring
}

// Decrypt decrypts with the tenant's live keys (the gateway's Decrypter).
func (t *Tenant) Decrypt(ctx context.Context, block []byte) (keyring.Result, error) {
	return t.Ring.Decrypt(ctx, block)
}

// AppSecret is the app secret the tenant's AWSCURRENT configuration names
// ("" for the fleet's), and whether that configuration has been read.
func (t *Tenant) AppSecret() (id string, known bool) {
	i := t.Ring.Info()
	return i.AppSecretID, i.CurrentRead
}

// PerTenantAppSecrets reports whether tenants may name their own app
// secret (AppSecretPrefix is set).
func (c *Cache) PerTenantAppSecrets() bool { return c.opts.AppSecretPrefix != "" }

// Tenant returns id's ring, loading it on first use. The error is
// ErrUnknown for a tenant the fleet does not have; another error is a
// ring that could not be read yet, returned with it.
func (c *Cache) Tenant(ctx context.Context, id string) (*Tenant, error) {
	if !fleet.ValidTenantID(id) {
		return nil, ErrUnknown
	}
	c.mu.Lock()
	if until, ok := c.unknown.get(id); ok {
		if c.opts.Now().Before(until) {
			c.mu.Unlock()
			return nil, ErrUnknown
		}
		c.unknown.remove(id)
	}
	t, ok := c.rings.get(id)
	if !ok {
		ropts := c.opts.Ring
		ropts.SecretID = fleet.SecretName(c.opts.SecretPrefix, id)
		r, err := keyring.New(c.sm, ropts)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		t = &Tenant{ID: id, Ring: r}
		// In the cache before it loads: concurrent requests share its one
		// load (a ring runs one refresh at a time).
		c.rings.put(id, t)
	}
	c.mu.Unlock()

	info := t.Ring.Info()
	var err error
	if !info.Loaded {
		err = t.Ring.Refresh(ctx)
		info = t.Ring.Info()
	}
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf), info.Loaded && (info.Deleted || info.Tags[fleet.TagFleet] != c.opts.FleetName):
		c.forget(id, t)
		return nil, ErrUnknown
	case !info.Loaded && err != nil && !errors.Is(err, keyring.ErrEmpty):
		return t, fmt.Errorf("tenants: tenant %s: %w", id, err)
	}
	return t, nil
}

// forget drops t and remembers that id is not a tenant.
func (c *Cache) forget(id string, t *Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.rings.peek(id); ok && cur == t {
		c.rings.remove(id)
	}
	c.unknown.put(id, c.opts.Now().Add(c.opts.NegativeTTL))
}

// Verifier returns the store of the app secret id, which a tenant's
// configuration names; it is read on first use. An id outside
// AppSecretPrefix is refused: the fleet's IAM does not reach it.
func (c *Cache) Verifier(id string) (*appsecret.Store, error) {
	if !fleet.InPrefix(id, c.opts.AppSecretPrefix) {
		return nil, fmt.Errorf("tenants: app secret %s is not under the fleet's app secret prefix %q", id, c.opts.AppSecretPrefix)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stores.get(id); ok {
		return s, nil
	}
	o := c.opts.AppSecret
	o.SecretID = id
	s, err := appsecret.New(c.sm, o)
	if err != nil {
		return nil, err
	}
	c.stores.put(id, s)
	return s, nil
}

// Len is the number of rings kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rings.len()
}

// lru is a map bounded by count, least recently used first out. It takes
// no lock: Cache holds its mutex.
type lru[V any] struct {
	cap   int
	ll    *list.List // front: most recent
	items map[string]*list.Element
}

type lruItem[V any] struct {
	key string
	val V
}

func newLRU[V any](capacity int) *lru[V] {
	return &lru[V]{cap: capacity, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns key's value and makes it the most recent.
func (l *lru[V]) get(key string) (V, bool) {
	e, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.ll.MoveToFront(e)
	return e.Value.(*lruItem[V]).val, true
}

// peek returns key's value and leaves the order alone.
func (l *lru[V]) peek(key string) (V, bool) {
	e, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.Value.(*lruItem[V]).val, true
}

// put sets key, the most recent, evicting the least recent past cap.
func (l *lru[V]) put(key string, val V) {
	if e, ok := l.items[key]; ok {
		e.Value.(*lruItem[V]).val = val
		l.ll.MoveToFront(e)
		return
	}
	l.items[key] = l.ll.PushFront(&lruItem[V]{key: key, val: val})
	for l.ll.Len() > l.cap {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.items, old.Value.(*lruItem[V]).key)
	}
}

func (l *lru[V]) remove(key string) {
	if e, ok := l.items[key]; ok {
		l.ll.Remove(e)
		delete(l.items, key)
	}
}

func (l *lru[V]) len() int { return l.ll.Len() }
