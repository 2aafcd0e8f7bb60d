// Package kmsfake is an in-memory AWS KMS for the unit tests of flowkey's
// KMS custody (internal/custody and the packages that use it). It keeps
// what those tests assert on, keys with their specs, states, tags, policies
// and aliases, and decrypts RSAES_OAEP_SHA_256 with real RSA keys. It
// behaves as KMS does where flowkey depends on it: a disabled key answers
// DisabledException, a key pending deletion KMSInvalidStateException, an
// alias is unique, Decrypt checks the key usage and the algorithm, and the
// list operations page. Tests script failures (a ThrottlingException among
// them), simulate a crash right after a call, and inspect the calls made.
//
// It is a call-level fake, not a server: the real emulator the local stack
// and the integration tests run is local-kms.
package kmsfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// Where the fake's own keys live.
const (
	Region  = "us-east-1"
	Account = "111122223333"
)

// Operation names, as recorded by Ops and accepted by FailNext, FailAlways,
// CrashAfter and Calls.
const (
	OpCreateKey           = "CreateKey"
	OpDescribeKey         = "DescribeKey"
	OpGetPublicKey        = "GetPublicKey"
	OpDecrypt             = "Decrypt"
	OpCreateAlias         = "CreateAlias"
	OpListAliases         = "ListAliases"
	OpListKeys            = "ListKeys"
	OpListResourceTags    = "ListResourceTags"
	OpDisableKey          = "DisableKey"
	OpScheduleKeyDeletion = "ScheduleKeyDeletion"
)

// Key is one key's state. Change its fields while setting a test up, or
// with Fake.Update while code runs.
type Key struct {
	ID, ARN     string
	Spec        types.KeySpec
	Usage       types.KeyUsageType
	State       types.KeyState
	Tags        map[string]string
	Policy      string
	Bypass      bool // BypassPolicyLockoutSafetyCheck at CreateKey
	Description string
	Created     time.Time
	Deletion    time.Time // DeletionDate while PendingDeletion
	// Denied makes every call naming the key AccessDeniedException, as for
	// a key whose policy does not let flowkey in (ListKeys still lists it).
	Denied bool

	private *rsa.PrivateKey // RSA keys only
}

// Public is the PKIX DER of an RSA key's public half (nil for others).
func (k *Key) Public() []byte {
	if k.private == nil {
		return nil
	}
	der, err := x509.MarshalPKIXPublicKey(&k.private.PublicKey)
	if err != nil {
		panic(err)
	}
	return der
}

// PublicKey is an RSA key's public key (nil for others).
func (k *Key) PublicKey() *rsa.PublicKey {
	if k.private == nil {
		return nil
	}
	return &k.private.PublicKey
}

// Crash is what a call panics with after CrashAfter: the caller stopped
// right after KMS did the work, as a Lambda that timed out or died.
type Crash struct{ Op string }

// Fake is the in-memory KMS. Set the exported fields before the code under
// test runs.
type Fake struct {
	// NewRSAKey makes each RSA_2048 key; nil generates one (slow: tests
	// that create many keys pass a pool).
	NewRSAKey func() (*rsa.PrivateKey, error)
	// PageSize caps every page of ListAliases and ListKeys (0: the
	// request's Limit, or 50).
	PageSize int
	Now      func() time.Time

	t        testing.TB
	mu       sync.Mutex
	keys     map[string]*Key // by ID
	order    []string        // key IDs in creation order
	aliases  map[string]string
	ops      []string
	calls    map[string]int
	failNext map[string][]error
	failAll  map[string]error
	crash    map[string]bool
	n        int
}

// New returns a Fake with no keys.
func New(t testing.TB) *Fake {
	return &Fake{t: t, keys: map[string]*Key{}, aliases: map[string]string{}, calls: map[string]int{},
		failNext: map[string][]error{}, failAll: map[string]error{}, crash: map[string]bool{}}
}

// ThrottlingException is the error KMS answers when a request quota is
// exceeded; the SDK has no type for it.
func ThrottlingException() error {
	return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
}

// AccessDeniedException is KMS's answer to a caller the policies refuse.
func AccessDeniedException() error {
	return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User is not authorized to perform this operation", Fault: smithy.FaultClient}
}

// KeyOptions describe a key added by AddKey. Zero values: RSA_2048,
// ENCRYPT_DECRYPT, Enabled, the fake's account.
type KeyOptions struct {
	Spec    types.KeySpec
	Usage   types.KeyUsageType
	State   types.KeyState
	Account string
	Tags    map[string]string
	Private *rsa.PrivateKey // for an RSA key; nil makes one
}

// AddKey adds a key, unrecorded, as if made outside the code under test.
func (f *Fake) AddKey(o KeyOptions) *Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, err := f.newKey(o.Spec, o.Usage, o.Account, o.Private)
	if err != nil {
		f.t.Fatalf("kmsfake: AddKey: %v", err)
	}
	if o.State != "" {
		k.State = o.State
	}
	for tk, tv := range o.Tags {
		k.Tags[tk] = tv
	}
	return k
}

// AddAlias points alias at key ID id, unrecorded.
func (f *Fake) AddAlias(alias, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aliases[alias] = id
}

// Key is the key named by ID, ARN or alias, or nil.
func (f *Fake) Key(name string) *Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, _ := f.resolve(name, true)
	return k
}

// Keys is every key, in creation order.
func (f *Fake) Keys() []*Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Key, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, f.keys[id])
	}
	return out
}

// Live is the keys that are not pending deletion, in creation order.
func (f *Fake) Live() []*Key {
	return slices.DeleteFunc(f.Keys(), func(k *Key) bool { return k.State == types.KeyStatePendingDeletion })
}

// Aliases maps each alias to its key ID.
func (f *Fake) Aliases() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.aliases))
	for a, id := range f.aliases {
		out[a] = id
	}
	return out
}

// Update runs fn under the fake's lock, to change keys while code runs.
func (f *Fake) Update(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// FailNext makes the next call of op return err, once; queued errors come
// in order, before any FailAlways error.
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = append(f.failNext[op], err)
}

// FailAlways makes every call of op return err; nil stops it.
func (f *Fake) FailAlways(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failAll, op)
		return
	}
	f.failAll[op] = err
}

// CrashAfter makes the next successful call of op panic with Crash after
// its effect is in place, once.
func (f *Fake) CrashAfter(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crash[op] = true
}

// Calls is the number of calls of op, failed ones included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Ops is every call's operation name, in order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// enter records a call and returns the failure scripted for it, or the
// context's error (as the SDK does before sending).
func (f *Fake) enter(ctx context.Context, op string) error {
	f.ops = append(f.ops, op)
	f.calls[op]++
	if err := ctx.Err(); err != nil {
		return err
	}
	if errs := f.failNext[op]; len(errs) > 0 {
		f.failNext[op] = errs[1:]
		return errs[0]
	}
	return f.failAll[op]
}

// done panics with Crash if CrashAfter asked for it. Callers hold f.mu,
// which the deferred unlock releases during the panic.
func (f *Fake) done(op string) {
	if f.crash[op] {
		delete(f.crash, op)
		panic(Crash{Op: op})
	}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fake) newKey(spec types.KeySpec, usage types.KeyUsageType, account string, priv *rsa.PrivateKey) (*Key, error) {
	if spec == "" {
		spec = types.KeySpecRsa2048
	}
	if usage == "" {
		usage = types.KeyUsageTypeEncryptDecrypt
	}
	if account == "" {
		account = Account
	}
	f.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.n)
	k := &Key{ID: id, ARN: "arn:aws:kms:" + Region + ":" + account + ":key/" + id, Spec: spec, Usage: usage,
		State: types.KeyStateEnabled, Tags: map[string]string{}, Created: f.now()}
	if strings.HasPrefix(string(spec), "RSA_") {
		if priv == nil {
			bits, _ := strconv.Atoi(strings.TrimPrefix(string(spec), "RSA_"))
			var err error
			if bits == 2048 && f.NewRSAKey != nil {
				priv, err = f.NewRSAKey()
			} else {
				priv, err = rsa.GenerateKey(rand.Reader, bits)
			}
			if err != nil {
				return nil, err
			}
		}
		k.private = priv
	}
	f.keys[id] = k
	f.order = append(f.order, id)
	return k, nil
}

// resolve finds a key by ID, ARN, alias name or alias ARN (aliases only
// when byAlias).
func (f *Fake) resolve(name string, byAlias bool) (*Key, error) {
	if byAlias {
		if a, ok := strings.CutPrefix(name, "arn:aws:kms:"+Region+":"+Account+":"); ok && strings.HasPrefix(a, "alias/") {
			name = a
		}
		if strings.HasPrefix(name, "alias/") {
			id, ok := f.aliases[name]
			if !ok {
				return nil, &types.NotFoundException{Message: aws.String("Alias arn:aws:kms:" + Region + ":" + Account + ":" + name + " is not found.")}
			}
			name = id
		}
	}
	if i := strings.LastIndex(name, ":key/"); i >= 0 && strings.HasPrefix(name, "arn:") {
		k, ok := f.keys[name[i+len(":key/"):]]
		if !ok || k.ARN != name {
			return nil, &types.NotFoundException{Message: aws.String("Key '" + name + "' does not exist")}
		}
		return k, nil
	}
	k, ok := f.keys[name]
	if !ok {
		return nil, &types.NotFoundException{Message: aws.String("Key '" + name + "' does not exist")}
	}
	return k, nil
}

// reachable resolves a key the caller may use: a key marked Denied is
// AccessDeniedException, as a key policy that shuts the caller out is.
func (f *Fake) reachable(name string, byAlias bool) (*Key, error) {
	k, err := f.resolve(name, byAlias)
	if err != nil {
		return nil, err
	}
	if k.Denied {
		return nil, AccessDeniedException()
	}
	return k, nil
}

// live resolves a reachable key (by ID or ARN) for an operation that KMS
// refuses on a key pending deletion.
func (f *Fake) live(name string) (*Key, error) {
	k, err := f.reachable(name, false)
	if err != nil {
		return nil, err
	}
	if k.State == types.KeyStatePendingDeletion {
		return nil, &types.KMSInvalidStateException{Message: aws.String(k.ARN + " is pending deletion.")}
	}
	return k, nil
}

// usable resolves a reachable key for an operation that needs it enabled.
func (f *Fake) usable(name string, byAlias bool) (*Key, error) {
	k, err := f.reachable(name, byAlias)
	if err != nil {
		return nil, err
	}
	switch k.State {
	case types.KeyStateEnabled:
		return k, nil
	case types.KeyStateDisabled:
		return nil, &types.DisabledException{Message: aws.String(k.ARN + " is disabled.")}
	}
	return nil, &types.KMSInvalidStateException{Message: aws.String(k.ARN + " is " + string(k.State))}
}

func (k *Key) metadata() *types.KeyMetadata {
	md := &types.KeyMetadata{KeyId: aws.String(k.ID), Arn: aws.String(k.ARN), AWSAccountId: aws.String(strings.Split(k.ARN, ":")[4]),
		KeySpec: k.Spec, KeyUsage: k.Usage, KeyState: k.State, Enabled: k.State == types.KeyStateEnabled,
		CreationDate: aws.Time(k.Created), Description: aws.String(k.Description), KeyManager: types.KeyManagerTypeCustomer, Origin: types.OriginTypeAwsKms}
	if k.State == types.KeyStatePendingDeletion {
		md.DeletionDate = aws.Time(k.Deletion)
	}
	if k.Usage == types.KeyUsageTypeEncryptDecrypt && k.private != nil {
		md.EncryptionAlgorithms = []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}
	}
	return md
}

// decryptOAEP is RSAES_OAEP_SHA_256: SHA-256 for the hash and MGF1, empty label.
func (k *Key) decryptOAEP(block []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), nil, k.private, block, nil)
}
