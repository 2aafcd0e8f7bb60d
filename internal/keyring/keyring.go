// Package keyring holds the private keys of a flowkey secret's live versions
// and decrypts with them, so that a Flows endpoint keeps working through
// every rotation.
//
// # Which keys
//
// A Ring loads the versions that carry AWSCURRENT, AWSPENDING or AWSPREVIOUS:
// during a rotation WhatsApp clients encrypt to whichever public key they
// cached (the old one, the new one, and after a failed rotation the pending
// one). Versions without one of those labels are dropped: a client that
// still holds such a key gets HTTP 421, re-fetches the key and retries.
//
// # Loading
//
// A refresh is one DescribeSecret (for VersionIdsToStages), then one
// GetSecretValue by VersionId for each labelled version the ring has not
// read before: a version's value never changes, so each is read and parsed
// once per version ID. A version that is not a flowkey document with a key
// is skipped, logged by version ID and by the names of the fields at fault,
// never by content, and not read again. A version with no value yet (the
// AWSPENDING version between RotateSecret and createSecret) is read again
// at the next refresh.
//
// A refresh runs when the loaded keys are older than Options.TTL (on the
// next Decrypt: no goroutine runs in the background, which suits Lambda's
// frozen instances), and at once when no loaded key decrypts a block. One
// refresh runs at a time: concurrent callers wait for it and then try the
// keys it added. Options.Floor is the least time between two refreshes, so
// junk that no key decrypts costs at most one refresh per floor; a miss
// within the floor waits for it to pass (as far as its deadline allows)
// rather than fail a user whose client has just fetched a new key. A failed
// refresh keeps the keys already loaded.
//
// # Key custody
//
// A version whose document holds the private key decrypts in process; a
// version whose key is held by KMS (key.custody "kms") decrypts with
// kms:Decrypt through Options.KMS, once its key ARN is checked to be in the
// secret's own account and region (a version naming a key elsewhere is
// skipped). The order below matters more then: each wrong try is a KMS
// request.
//
// # Order
//
// Keys are tried in order of the share of recent traffic each decrypted (an
// exponentially weighted average over about 32 successes), ties broken
// AWSCURRENT, AWSPENDING, AWSPREVIOUS. In a steady state one key decrypts
// everything, so a request costs one RSA operation.
//
// # Key material
//
// The ring never logs, returns or prints key material: Result holds the
// decrypted block (the caller's AES key), labels, version IDs and counts.
// Log lines name versions and public fingerprints only.
package keyring

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/wait"
)

// Secrets Manager's staging labels, in the order ties are broken.
const (
	LabelCurrent  = "AWSCURRENT"
	LabelPending  = "AWSPENDING"
	LabelPrevious = "AWSPREVIOUS"
)

// The refreshes of a block no loaded key decrypts. Only reasonMiss, where
// every key said the block is not its own, waits out the floor;
// reasonUnavailable, where a key could not be used, does not.
const (
	reasonMiss        = "miss"
	reasonUnavailable = "unavailable"
)

// ErrUnavailable marks a PrivateKey error that says nothing about the
// block: the key could not be asked (KMS throttled the request, or did not
// answer). The ring then tries the next key, and does not wait out its
// floor for a refresh. A disabled or deleted key is not unavailable: it
// will never decrypt again, and a refresh may bring its successor.
var ErrUnavailable = errors.New("keyring: the key could not be used")

// Labels are the labels whose versions the ring loads.
var labels = [...]string{LabelCurrent, LabelPending, LabelPrevious}

// Defaults for Options.
const (
	DefaultTTL         = 5 * time.Minute
	DefaultFloor       = time.Second
	DefaultLoadTimeout = 2 * time.Second
)

// ErrNoKey is a block that no loaded key decrypts, after the refresh the
// floor allowed.
var ErrNoKey = errors.New("keyring: no live key decrypts the block")

// ErrEmpty is a ring that holds no key at all: the secret could not be read,
// or none of its labelled versions holds a key.
var ErrEmpty = errors.New("keyring: no key is loaded")

// SecretsAPI is the part of the Secrets Manager client a Ring calls.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Options configure a Ring. SecretID is required.
type Options struct {
	// SecretID is the flowkey key secret (name or ARN).
	SecretID string
	// TTL is how long loaded keys are trusted (DefaultTTL).
	TTL time.Duration
	// Floor is the least time between two refreshes (DefaultFloor).
	Floor time.Duration
	// LoadTimeout bounds one refresh (DefaultLoadTimeout). A refresh runs
	// on a context detached from the caller's cancellation, since callers
	// that did not start it wait for it too.
	LoadTimeout time.Duration
	// Logger receives refreshes and skipped versions (slog.Default()).
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends, whichever is first (a timer); a
	// miss within the floor waits it out with it. Tests that drive Now
	// pass one that advances their clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// KMS decrypts with the versions whose key is held by KMS; without it
	// such versions are skipped (and logged).
	KMS KMSDecrypter
}

// Result is what one Decrypt did.
type Result struct {
	// Plaintext is the decrypted block, nil on failure.
	Plaintext []byte
	// Label is the best label of the version that decrypted: AWSCURRENT,
	// AWSPENDING or AWSPREVIOUS; "" on failure.
	Label string
	// VersionID is the version that decrypted.
	VersionID string
	// RSAOps is the number of private-key operations tried (each, for a
	// KMS-held key, a kms:Decrypt request).
	RSAOps int
	// Refreshed is true when this call ran a refresh (not when it only
	// waited for another caller's), so that summing it counts refreshes.
	Refreshed bool
}

// Ring is safe for concurrent use.
type Ring struct {
	sm   SecretsAPI
	opts Options

	mu        sync.Mutex
	keys      []*entry          // the live keys, most likely first; replaced, never changed in place
	seen      map[string]*entry // every labelled version read so far, usable or not; replaced, never changed
	gen       uint64            // counts finished refreshes, failed ones too
	loaded    bool              // a refresh has succeeded
	loadedAt  time.Time         // end of the last successful refresh
	triedOnce bool
	tried     time.Time     // start of the last refresh, for the floor
	lastErr   error         // of the last refresh
	inflight  chan struct{} // closed when the running refresh ends
	info      Info          // what the last successful refresh read

	// waitHook runs when a caller starts waiting for another's refresh
	// (tests only: it lets a test release a gated refresh once every
	// caller waits, without sleeping).
	waitHook func()
}

// entry is one version. Its fields other than score never change after a
// refresh publishes it; score is read and written under Ring.mu.
type entry struct {
	version     string
	label       string
	fingerprint string
	key         PrivateKey // nil: the version holds no usable key
	score       float64
	// appSecretID is the document's config.app_secret_id; parsed is
	// whether the version is a flowkey document at all.
	appSecretID string
	parsed      bool
}

// Info is what the ring knows about its secret from its last successful
// refresh: its tags, whether it is scheduled for deletion, and what its
// AWSCURRENT version's configuration names. A Flows endpoint serving a
// fleet decides with it which tenant a secret belongs to and which Meta
// app secret checks its requests.
type Info struct {
	// Loaded: a refresh has succeeded.
	Loaded bool
	// Tags are the secret's tags (a copy).
	Tags map[string]string
	// Deleted: the secret is scheduled for deletion.
	Deleted bool
	// CurrentRead: the AWSCURRENT version was read and parsed, so
	// AppSecretID is its config.app_secret_id ("" when it names none).
	CurrentRead bool
	AppSecretID string
}

// Info returns what the last successful refresh read.
func (r *Ring) Info() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.info
	i.Tags = maps.Clone(i.Tags)
	return i
}

// New returns a Ring that has loaded nothing yet: the first Decrypt (or
// Refresh) loads the keys.
func New(sm SecretsAPI, opts Options) (*Ring, error) {
	if sm == nil {
		return nil, errors.New("keyring: a Secrets Manager client is required")
	}
	if opts.SecretID == "" {
		return nil, errors.New("keyring: Options.SecretID is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Floor <= 0 {
		opts.Floor = DefaultFloor
	}
	if opts.LoadTimeout <= 0 {
		opts.LoadTimeout = DefaultLoadTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = wait.Sleep
	}
	return &Ring{sm: sm, opts: opts, seen: map[string]*entry{}}, nil
}

// Decrypt recovers block with the first live key that decrypts it. It
// refreshes first when the keys are older than the TTL, and once more when
// none decrypts (as far as the floor allows), then tries the keys it had not
// tried. The error is ErrNoKey or ErrEmpty.
func (r *Ring) Decrypt(ctx context.Context, block []byte) (Result, error) {
	var res Result
	keys, gen, stale := r.snapshot()
	if stale {
		res.Refreshed = r.refresh(ctx, "ttl", gen)
		keys, gen, _ = r.snapshot()
	}
	ok, unavailable := r.try(ctx, keys, block, &res)
	if ok {
		return res, nil
	}
	// A block every key refused may be for a key that has just appeared:
	// that miss waits out the floor if it must. When a key could not be
	// asked (KMS throttling), the block may well be that key's, and waiting
	// would only hold the user: refresh if the floor allows, else answer at
	// once.
	reason := reasonMiss
	if unavailable > 0 {
		reason = reasonUnavailable
	}
	if r.refresh(ctx, reason, gen) {
		res.Refreshed = true
	}
	after, _, _ := r.snapshot()
	// Only the keys this call has not tried: a key that failed fails again.
	fresh := make([]*entry, 0, len(after))
	for _, e := range after {
		if !slices.ContainsFunc(keys, func(k *entry) bool { return k.version == e.version }) {
			fresh = append(fresh, e)
		}
	}
	if ok, _ := r.try(ctx, fresh, block, &res); ok {
		return res, nil
	}
	if len(after) == 0 {
		return res, ErrEmpty
	}
	return res, ErrNoKey
}

// Refresh loads the keys now unless the floor forbids it, and reports why
// the ring is unusable, if it is. Call it at start-up so that the first
// request does not wait for Secrets Manager.
func (r *Ring) Refresh(ctx context.Context) error {
	_, gen, _ := r.snapshot()
	r.refresh(ctx, "start", gen)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.lastErr != nil:
		return r.lastErr
	case len(r.keys) == 0:
		return ErrEmpty
	}
	return nil
}

// try attempts each key in order and records the one that decrypts. When
// none does, unavailable counts the keys that could not be used at all
// (ErrUnavailable), as opposed to keys that said the block is not theirs.
func (r *Ring) try(ctx context.Context, keys []*entry, block []byte, res *Result) (ok bool, unavailable int) {
	for _, e := range keys {
		res.RSAOps++
		out, err := e.key.DecryptOAEP(ctx, block)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				unavailable++
			}
			continue
		}
		res.Plaintext, res.Label, res.VersionID = out, e.label, e.version
		r.credit(e.version)
		return true, 0
	}
	return false, unavailable
}

// decay weighs the last ~32 successes: the score of a key is about the share
// of recent traffic it decrypted.
const decay = 1 - 1.0/32

// credit moves the score of every key towards the one that just decrypted,
// and reorders the keys (into a new slice) when that changes who is first.
func (r *Ring) credit(version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.keys {
		e.score *= decay
		if e.version == version {
			e.score += 1 - decay
		}
	}
	if !slices.IsSortedFunc(r.keys, byLikelihood) {
		r.keys = slices.SortedStableFunc(slices.Values(r.keys), byLikelihood)
	}
}

func byLikelihood(a, b *entry) int {
	switch {
	case a.score > b.score:
		return -1
	case a.score < b.score:
		return 1
	}
	return labelRank(a.label) - labelRank(b.label)
}

func labelRank(l string) int {
	if i := slices.Index(labels[:], l); i >= 0 {
		return i
	}
	return len(labels)
}

// snapshot returns the live keys, the refresh generation they came from, and
// whether they are due for a refresh.
func (r *Ring) snapshot() ([]*entry, uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stale := !r.loaded || r.opts.Now().Sub(r.loadedAt) >= r.opts.TTL
	return r.keys, r.gen, stale
}
