package keyring_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

var kmsKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	out := make([]*rsa.PrivateKey, 2)
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

// kmsDoc is the document of a version whose key is k, held by KMS.
func kmsDoc(t testing.TB, k *kmsfake.Key) *string {
	t.Helper()
	key, err := secretdoc.NewKMSKey(k.ARN, k.Public(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}, KeyCustody: "kms"}, Key: key}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return &s
}

// withKMS gives the fixture's ring a KMS client over a fake KMS holding
// one key, and returns both.
func (f *fixture) withKMS(t *testing.T) (*kmsfake.Fake, *kmsfake.Key) {
	t.Helper()
	fk := kmsfake.New(t)
	k := fk.AddKey(kmsfake.KeyOptions{Private: kmsKeys()[0]})
	r, err := keyring.New(f.sm, keyring.Options{SecretID: secretName, TTL: ttl, Floor: floor, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.clock.Advance(d)
			f.slept.Add(int64(d))
			return ctx.Err()
		},
		KMS: custody.NewDecrypter(fk, custody.DecrypterOptions{Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
			Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})})
	if err != nil {
		t.Fatal(err)
	}
	f.ring = r
	return fk, k
}

func kmsBlock(t *testing.T, k *kmsfake.Key) []byte {
	t.Helper()
	b, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.PublicKey(), []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAKMSHeldVersionDecryptsWithKMS: AWSCURRENT's key is in KMS,
// AWSPREVIOUS's in the document. A block for either decrypts, each with
// the key that holds it; a KMS try costs one kms:Decrypt.
func TestAKMSHeldVersionDecryptsWithKMS(t *testing.T) {
	f := newFixture(t)
	fk, k := f.withKMS(t)
	f.sm.Put(f.s, "v2", kmsDoc(t, k), secretsfake.StageCurrent)
	f.put("v1", pairs()[0], secretsfake.StagePrevious)

	res := f.mustDecrypt(kmsBlock(t, k), keyring.LabelCurrent)
	if res.RSAOps != 1 || fk.Calls(kmsfake.OpDecrypt) != 1 {
		t.Errorf("RSAOps %d, kms:Decrypt %d", res.RSAOps, fk.Calls(kmsfake.OpDecrypt))
	}
	res = f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious)
	if res.RSAOps != 2 || fk.Calls(kmsfake.OpDecrypt) != 2 {
		t.Errorf("RSAOps %d, kms:Decrypt %d: the KMS key first, as AWSCURRENT", res.RSAOps, fk.Calls(kmsfake.OpDecrypt))
	}
	// Traffic moves to AWSPREVIOUS's key (clients that cached it): it is
	// tried first, and KMS is no longer asked.
	for range 40 {
		f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious)
	}
	before := fk.Calls(kmsfake.OpDecrypt)
	if res := f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious); res.RSAOps != 1 || fk.Calls(kmsfake.OpDecrypt) != before {
		t.Errorf("most likely key first: RSAOps %d, kms:Decrypt +%d", res.RSAOps, fk.Calls(kmsfake.OpDecrypt)-before)
	}
	f.assertNoKeyMaterial()
}

// TestAKMSKeyThatCannotDecryptIsPassedOver: a disabled key, or throttling,
// is "this key does not decrypt": the ring tries the next key, and when
// none decrypts the answer is ErrNoKey (the endpoint's 421), never a panic
// or another error.
func TestAKMSKeyThatCannotDecryptIsPassedOver(t *testing.T) {
	for name, fault := range map[string]func(fk *kmsfake.Fake, k *kmsfake.Key){
		"disabled":         func(fk *kmsfake.Fake, k *kmsfake.Key) { fk.Update(func() { k.State = types.KeyStateDisabled }) },
		"pending deletion": func(fk *kmsfake.Fake, k *kmsfake.Key) { fk.Update(func() { k.State = types.KeyStatePendingDeletion }) },
		"throttled": func(fk *kmsfake.Fake, _ *kmsfake.Key) {
			fk.FailAlways(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			fk, k := f.withKMS(t)
			f.sm.Put(f.s, "v2", kmsDoc(t, k), secretsfake.StageCurrent)
			f.put("v1", pairs()[0], secretsfake.StagePrevious)
			f.mustDecrypt(kmsBlock(t, k), keyring.LabelCurrent)
			fault(fk, k)
			if _, err := f.decrypt(kmsBlock(t, k)); !errors.Is(err, keyring.ErrNoKey) {
				t.Fatalf("err = %v, want ErrNoKey", err)
			}
			f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious)
			if !strings.Contains(f.logs.String(), "custody: kms:Decrypt failed") {
				t.Error("the KMS failure is not logged")
			}
		})
	}
}

// TestKMSHeldVersionsThatCannotBeUsedAreSkipped: without a KMS client, or
// naming a key outside the secret's account and region, a version is
// skipped and logged; the ring keeps the others.
func TestKMSHeldVersionsThatCannotBeUsedAreSkipped(t *testing.T) {
	fk := kmsfake.New(t)
	home := fk.AddKey(kmsfake.KeyOptions{Private: kmsKeys()[0]})
	foreign := fk.AddKey(kmsfake.KeyOptions{Private: kmsKeys()[1], Account: "444455556666"})

	f := newFixture(t)
	f.sm.Put(f.s, "v2", kmsDoc(t, home), secretsfake.StageCurrent)
	f.put("v1", pairs()[0], secretsfake.StagePrevious)
	f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious)
	if !strings.Contains(f.logs.String(), "the ring has no KMS client") {
		t.Error("no KMS client: not logged")
	}

	f = newFixture(t)
	f.withKMS(t)
	f.sm.Put(f.s, "v2", kmsDoc(t, foreign), secretsfake.StageCurrent)
	f.put("v1", pairs()[0], secretsfake.StagePrevious)
	res := f.mustDecrypt(block(t, pairs()[0]), keyring.LabelPrevious)
	if res.RSAOps != 1 || !strings.Contains(f.logs.String(), "names a KMS key in account 444455556666") {
		t.Errorf("RSAOps %d; logs %s", res.RSAOps, f.logs.String())
	}
}

// TestAnUnavailableKMSKeyNeverHoldsTheUser: when a key could not be used
// (throttled, disabled), the block may be that key's: a refresh cannot help
// within the floor, so the ring answers at once instead of waiting it out.
// A block that every key refuses still waits, since a new key may have
// just appeared.
func TestAnUnavailableKMSKeyNeverHoldsTheUser(t *testing.T) {
	f := newFixture(t)
	fk, k := f.withKMS(t)
	f.sm.Put(f.s, "v2", kmsDoc(t, k), secretsfake.StageCurrent)
	f.put("v1", pairs()[0], secretsfake.StagePrevious)
	f.mustDecrypt(kmsBlock(t, k), keyring.LabelCurrent)
	fk.FailAlways(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
	for range 5 {
		if _, err := f.decrypt(kmsBlock(t, k)); !errors.Is(err, keyring.ErrNoKey) {
			t.Fatalf("err = %v, want ErrNoKey", err)
		}
	}
	if got := time.Duration(f.slept.Load()); got != 0 {
		t.Fatalf("throttled requests waited %s for the floor, want none", got)
	}
	fk.FailAlways(kmsfake.OpDecrypt, nil)
	// A block for no key at all, with every key answering: that one waits.
	if _, err := f.decrypt(block(t, pairs()[3])); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("junk: %v", err)
	}
	if f.slept.Load() == 0 {
		t.Error("a block every key refused did not wait out the floor")
	}
}
