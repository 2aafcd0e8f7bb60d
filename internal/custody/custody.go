// Package custody keeps a flowkey secret's WhatsApp Flows private keys in
// AWS KMS (config.key_custody "kms"): each rotation creates an RSA_2048
// ENCRYPT_DECRYPT KMS key, the secret's version records its ARN and public
// key, and every decryption is a kms:Decrypt with RSAES_OAEP_SHA_256
// (SHA-256 for the hash and MGF1, an empty label: what WhatsApp clients
// send). The private key never leaves KMS.
//
// # One key per rotation
//
// KMS has no idempotency token for CreateKey, and Secrets Manager repeats
// createSecret, so the key of a rotation is found again by two records:
//
//   - Its alias, alias/flowkey/<first 16 hex of sha256(secret ARN)>/<version
//     ID>, created right after the key. A repeated createSecret that finds
//     the alias uses its key (after checking its tags, spec, usage and
//     state), whatever happened after it.
//   - A tag on the SECRET, flowkey:kms-key-creation = <version ID>, written
//     before CreateKey. A createSecret that finds no alias but this tag may
//     have crashed between CreateKey and CreateAlias: it looks for the key
//     by its own tags (flowkey:secret-arn, flowkey:rotation-token; ListKeys
//     and ListResourceTags, the rare path) and aliases it. Without the tag
//     no key can exist for the version, and it creates one.
//
// Two createSecrets of one version at once both create a key; the one
// whose CreateAlias loses retires its own key and uses the alias's.
//
// # The key policy
//
// Every statement's principal is the account; the rotator and decrypt roles
// are named by aws:PrincipalArn, as the stack's own key names its roles, so
// a role re-created under the same name keeps its access (a role named as
// principal is stored as its unique ID) and a role may be created after
// the keys. The policy lets the secret's account administer the key (IAM
// policies decide who) but not use it; it lets the rotator role describe, read the
// public key of, decrypt with (proofs), tag, alias, disable and schedule the
// deletion of the key, and the decrypt roles (the endpoint) decrypt with it,
// each Decrypt only with RSAES_OAEP_SHA_256. The rotator is deliberately not
// allowed kms:PutKeyPolicy, so that a compromised rotator cannot widen who
// may decrypt; CreateKey therefore sets BypassPolicyLockoutSafetyCheck,
// which AWS documents for exactly this intent (the caller must not be able
// to change the policy later). The key stays manageable: the account
// principal keeps kms:PutKeyPolicy.
//
// # Retirement
//
// Retire disables, then schedules for deletion (7-30 days), every key that
// carries the secret's alias prefix and that the caller does not keep (the
// rotation keeps every key a labelled version names). It is idempotent: a
// key pending deletion is left alone, a disabled one is only scheduled.
//
// # Throttling
//
// RSA requests share one quota per account and region. A ThrottlingException
// is retried with jittered exponential backoff until the caller's context
// ends, then reported as an *Error that says so; the endpoint's Decrypter
// retries once, briefly.
//
// # Errors
//
// Every failure is an *Error naming the operation, the key or alias, what
// KMS said and the fix. No error or log line carries key material or
// plaintext.
package custody

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/wait"
)

// Tags on each custody key, and the tag on the secret written before a
// key is created.
const (
	TagSecretARN      = "flowkey:secret-arn"
	TagRotationToken  = "flowkey:rotation-token"
	SecretTagCreation = "flowkey:kms-key-creation"
)

// The environment variables that configure key creation, as the errors
// here name them (internal/config reads them).
const (
	EnvRotatorRoleARN  = config.EnvCustodyKeyRotatorRoleARN
	EnvDecryptRoleARNs = config.EnvCustodyKeyDecryptRoleARNs
)

// Deletion waiting periods KMS allows, in days.
const (
	MinDeletionDays     = 7
	MaxDeletionDays     = 30
	DefaultDeletionDays = 30
)

// AliasPrefix is the prefix of every alias of secretARN's keys:
// alias/flowkey/<first 16 hex of sha256(secretARN)>/. A hash, because a
// secret ARN holds characters an alias may not.
func AliasPrefix(secretARN string) string {
	sum := sha256.Sum256([]byte(secretARN))
	return "alias/flowkey/" + hex.EncodeToString(sum[:])[:16] + "/"
}

// AliasName is the alias of the key made for version token of secretARN.
func AliasName(secretARN, token string) string { return AliasPrefix(secretARN) + token }

// KMSAPI is the part of the KMS client the rotator calls.
type KMSAPI interface {
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	CreateAlias(ctx context.Context, in *kms.CreateAliasInput, optFns ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	ListAliases(ctx context.Context, in *kms.ListAliasesInput, optFns ...func(*kms.Options)) (*kms.ListAliasesOutput, error)
	ListKeys(ctx context.Context, in *kms.ListKeysInput, optFns ...func(*kms.Options)) (*kms.ListKeysOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, optFns ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	DisableKey(ctx context.Context, in *kms.DisableKeyInput, optFns ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, optFns ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// Options configure a Manager. Zero values take the defaults noted.
type Options struct {
	// RotatorRoleARN and DecryptRoleARNs go into each new key's policy;
	// without them no key can be created (CanCreate).
	RotatorRoleARN  string
	DecryptRoleARNs []string
	// DeletionDays is the waiting period of a retired key (30).
	DeletionDays int
	// Backoff and MaxBackoff pace the retries of a throttled request
	// (250ms, 5s); each wait is jittered.
	Backoff, MaxBackoff time.Duration
	// MaxRetries bounds the retries of one throttled request (8), within
	// the caller's deadline.
	MaxRetries int
	// Sleep waits d or until ctx ends (a timer); tests replace it.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Manager creates, checks, lists and retires a secret's custody keys.
type Manager struct {
	kms  KMSAPI
	opts Options
}

// New returns a Manager. A nil client is an error.
func New(client KMSAPI, opts Options) (*Manager, error) {
	if client == nil {
		return nil, errors.New("custody: a KMS client is required")
	}
	if opts.DeletionDays == 0 {
		opts.DeletionDays = DefaultDeletionDays
	}
	if opts.DeletionDays < MinDeletionDays || opts.DeletionDays > MaxDeletionDays {
		return nil, fmt.Errorf("custody: DeletionDays %d is outside %d-%d", opts.DeletionDays, MinDeletionDays, MaxDeletionDays)
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 8
	}
	if opts.Sleep == nil {
		opts.Sleep = wait.Sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{kms: client, opts: opts}, nil
}

// CanCreate reports why keys cannot be created, if they cannot: the key
// policy needs the rotator's and the decrypting roles' ARNs.
func (m *Manager) CanCreate() error {
	var missing []string
	if m.opts.RotatorRoleARN == "" {
		missing = append(missing, EnvRotatorRoleARN)
	}
	if len(m.opts.DecryptRoleARNs) == 0 {
		missing = append(missing, EnvDecryptRoleARNs)
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{Op: "CreateKey", Problem: "KMS custody is not configured on this function: " + strings.Join(missing, " and ") + " not set",
		Fix: "deploy with the key custody setting (infra/ sets " + EnvRotatorRoleARN + " and " + EnvDecryptRoleARNs + " to the rotator's and the endpoint's roles), " +
			`or set config.key_custody back to "secrets_manager" with set-config`}
}

// Error is a failed KMS operation. It never carries key material.
type Error struct {
	Op      string // the KMS operation, e.g. "CreateKey"
	Key     string // the key ARN, key ID or alias, when there is one
	Problem string
	Fix     string
	// Throttled counts the ThrottlingExceptions of this call (0: none).
	Throttled int
	Err       error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kms ")
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteString(" (" + e.Key + ")")
	}
	b.WriteString(": " + e.Problem)
	if e.Fix != "" {
		b.WriteString("; fix: " + e.Fix)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// jitter is a wait between d/2 and d: retries of many callers spread out.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
