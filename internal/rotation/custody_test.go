package rotation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// rsaPool backs the fake KMS's keys: RSA generation is too slow per key.
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

type kmsHarness struct {
	*harness
	kms    *kmsfake.Fake
	sleeps int
}

// configKMS is a configuration-only first version in KMS custody.
func configKMS(ids ...string) string {
	b, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{"phone_number_ids": ids, "access_token_secret_id": tokenSecret, "key_custody": "kms"}})
	return string(b)
}

// newKMSHarness is newHarness with a Rotator that has a custody Manager
// over a fake KMS (7 days' deletion wait; throttling backoff not slept).
func newKMSHarness(t *testing.T, initial string, phoneIDs ...string) *kmsHarness {
	t.Helper()
	h := &kmsHarness{harness: newHarness(t, initial, phoneIDs...), kms: kmsfake.New(t)}
	n := 0
	h.kms.NewRSAKey = func() (*rsa.PrivateKey, error) { n++; return rsaPool()[(n-1)%len(rsaPool())], nil }
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	m, err := custody.New(h.kms, custody.Options{
		RotatorRoleARN: "arn:aws:iam::111122223333:role/flowkey-rotator", DecryptRoleARNs: []string{"arn:aws:iam::111122223333:role/flowkey-endpoint"},
		DeletionDays: 7, Logger: log, Sleep: func(ctx context.Context, _ time.Duration) error { h.sleeps++; return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.rot, err = New(h.state, h.sm, h.keys, h.g, Options{Concurrency: 4, VerifyTimeout: 200 * time.Millisecond, VerifyBackoff: time.Millisecond,
		VerifyMaxBackoff: 5 * time.Millisecond, RollbackReserve: time.Millisecond, Logger: log, Custody: m})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// rawValue is the stored JSON of the version holding label.
func (h *kmsHarness) rawValue(t *testing.T, label string) string {
	t.Helper()
	out, err := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, label))
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.SecretString)
}

// kmsKey is the fake's key named by the version holding label.
func (h *kmsHarness) kmsKey(t *testing.T, label string) *kmsfake.Key {
	t.Helper()
	d := h.doc(t, label)
	if !d.Key.InKMS() {
		t.Fatalf("%s holds a %q key, not a KMS-held one", label, d.Key.GeneratedBy)
	}
	k := h.kms.Key(d.Key.KMSKeyARN)
	if k == nil {
		t.Fatalf("%s names %s, which the fake KMS does not hold", label, d.Key.KMSKeyARN)
	}
	return k
}

func (h *kmsHarness) liveKeys() int { return len(h.kms.Live()) }

// TestKMSCustodyRotations: three rotations in KMS custody. Each makes one
// tagged, aliased key and stores its ARN and public key, never a private
// key; Meta gets the KMS key's public key; testSecret proves it with one
// kms:Decrypt; the key that leaves AWSPREVIOUS is retired at the next
// finishSecret, after the configured waiting period.
func TestKMSCustodyRotations(t *testing.T) {
	h := newKMSHarness(t, configKMS(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	raw := h.rawValue(t, StageCurrent)
	if strings.Contains(raw, "private_key_pem") || strings.Contains(raw, "PRIVATE") {
		t.Fatal("a KMS custody version holds a private key")
	}
	k1 := h.kmsKey(t, StageCurrent)
	if k1.Tags[custody.TagSecretARN] != h.arn || k1.Tags[custody.TagRotationToken] != "v1" || !k1.Bypass || k1.Spec != types.KeySpecRsa2048 {
		t.Errorf("key %s: tags %v, bypass %v, spec %s", k1.ID, k1.Tags, k1.Bypass, k1.Spec)
	}
	if h.kms.Aliases()[custody.AliasName(h.arn, "v1")] != k1.ID || h.sm.Secret(h.arn).Tags[custody.SecretTagCreation] != "v1" {
		t.Errorf("aliases %v, secret tags %v", h.kms.Aliases(), h.sm.Secret(h.arn).Tags)
	}
	want := keypair.FingerprintOf(k1.Public()).String()
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != want {
			t.Errorf("%s holds %.16s, want the KMS key's %.16s", p, got, want)
		}
	}
	if n := h.kms.Calls(kmsfake.OpDecrypt); n != 1 {
		t.Errorf("testSecret made %d kms:Decrypt proofs for %d numbers, want 1", n, len(phones))
	}
	h.assertInvariant(t)

	if err := h.rotate(t, "v2"); err != nil {
		t.Fatal(err)
	}
	if k1.State != types.KeyStateEnabled {
		t.Fatalf("the AWSPREVIOUS key was retired: %s", k1.State)
	}
	k2 := h.kmsKey(t, StageCurrent)
	if err := h.rotate(t, "v3"); err != nil {
		t.Fatal(err)
	}
	if k1.State != types.KeyStatePendingDeletion || time.Until(k1.Deletion) > 7*24*time.Hour || time.Until(k1.Deletion) < 6*24*time.Hour {
		t.Errorf("the key that left AWSPREVIOUS: %s, deletion %s", k1.State, k1.Deletion)
	}
	if k2.State != types.KeyStateEnabled || h.kmsKey(t, StageCurrent).State != types.KeyStateEnabled || h.liveKeys() != 2 {
		t.Errorf("AWSPREVIOUS %s, AWSCURRENT %s, live %d", k2.State, h.kmsKey(t, StageCurrent).State, h.liveKeys())
	}
	if !strings.Contains(h.logs.String(), `"msg":"custody key retired"`) || !strings.Contains(h.logs.String(), k1.ARN) {
		t.Error("the retirement is not logged with the key")
	}
	// Idempotent: finishing again changes nothing.
	before := len(h.kms.Ops())
	if err := h.step(StepFinish, "v3"); err != nil {
		t.Fatal(err)
	}
	for _, op := range h.kms.Ops()[before:] {
		if op == kmsfake.OpDisableKey || op == kmsfake.OpScheduleKeyDeletion {
			t.Errorf("a repeated finishSecret called %s", op)
		}
	}
	h.assertInvariant(t)
}

// TestMovingBetweenCustodiesIsARotation: the configuration names the
// custody; the next rotation makes a key in it. The PEM key stays on
// AWSPREVIOUS (nothing to retire in KMS), and going back to PEM custody
// retires the KMS key once it leaves AWSPREVIOUS.
func TestMovingBetweenCustodiesIsARotation(t *testing.T) {
	h := newKMSHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	if h.doc(t, StageCurrent).Key.InKMS() || len(h.kms.Ops()) != 0 {
		t.Fatalf("PEM custody touched KMS: %v", h.kms.Ops())
	}
	setCustody(t, h, "v1", secretdoc.CustodyKMS)
	if err := h.rotate(t, "v2"); err != nil {
		t.Fatal(err)
	}
	kmsKey := h.kmsKey(t, StageCurrent)
	if h.doc(t, StagePrevious).Key.Pair() == nil {
		t.Error("the PEM key left AWSPREVIOUS")
	}
	setCustody(t, h, "v2", secretdoc.CustodySecretsManager)
	for _, v := range []string{"v3", "v4"} {
		if err := h.rotate(t, v); err != nil {
			t.Fatal(err)
		}
	}
	if h.doc(t, StageCurrent).Key.InKMS() || kmsKey.State != types.KeyStatePendingDeletion || h.liveKeys() != 0 {
		t.Errorf("back in PEM custody: current in KMS %v, old KMS key %s, live %d", h.doc(t, StageCurrent).Key.InKMS(), kmsKey.State, h.liveKeys())
	}
	h.assertInvariant(t)
}

// setCustody rewrites the AWSCURRENT version (ID version) with the custody,
// as set-config's new version would: same key, new configuration.
func setCustody(t *testing.T, h *kmsHarness, version, c string) {
	t.Helper()
	d := h.doc(t, StageCurrent)
	d.Config.KeyCustody = c
	body, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := h.sm.Secret(h.arn)
	s.Values[version] = aws.String(string(body))
}

// TestRetirementNeverTakesAKeyALabelledVersionNames: set-config copies the
// key into a new version and keeps a label on the old one; a key any
// labelled version names stays enabled, whatever the label.
func TestRetirementNeverTakesAKeyALabelledVersionNames(t *testing.T) {
	h := newKMSHarness(t, configKMS(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	k1 := h.kmsKey(t, StageCurrent)
	v1 := h.rawValue(t, StageCurrent)
	for _, v := range []string{"v2", "v3"} {
		if err := h.rotate(t, v); err != nil {
			t.Fatal(err)
		}
		if v == "v2" {
			// A version labelled by hand (or set-config's mark) names k1.
			h.sm.Put(h.sm.Secret(h.arn), "kept", aws.String(v1), "FLOWKEY_SET_CONFIG_PREVIOUS")
		}
	}
	if k1.State != types.KeyStateEnabled {
		t.Errorf("a key a labelled version names was retired: %s", k1.State)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, k := range h.kms.Live() {
			if !yield(k.ID) {
				return
			}
		}
	}); len(got) != 3 {
		t.Errorf("live keys %v, want all three", got)
	}
}

// TestRetirementFailureDoesNotFailTheRotation: the rotation is complete; the
// failure is logged and the next finishSecret retires the key.
func TestRetirementFailureDoesNotFailTheRotation(t *testing.T) {
	h := newKMSHarness(t, configKMS(phones...), phones...)
	for _, v := range []string{"v1", "v2"} {
		if err := h.rotate(t, v); err != nil {
			t.Fatal(err)
		}
	}
	k1 := h.kmsKey(t, StagePrevious)
	h.kms.FailNext(kmsfake.OpDisableKey, kmsfake.AccessDeniedException())
	if err := h.rotate(t, "v3"); err != nil {
		t.Fatalf("a failed retirement failed the rotation: %v", err)
	}
	if k1.State != types.KeyStateEnabled || !strings.Contains(h.logs.String(), "custody keys not all retired; the next finishSecret retries") {
		t.Fatalf("state %s; logs lack the failure", k1.State)
	}
	if err := h.rotate(t, "v4"); err != nil {
		t.Fatal(err)
	}
	if k1.State != types.KeyStatePendingDeletion {
		t.Errorf("the next finishSecret left %s", k1.State)
	}
}
