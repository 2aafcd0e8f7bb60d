package kmsfake_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/flowkey/flowkey/internal/fake/kmsfake"
)

var ctx = context.Background()

var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
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

func newFake(t *testing.T) *kmsfake.Fake {
	f := kmsfake.New(t)
	n := 0
	f.NewRSAKey = func() (*rsa.PrivateKey, error) { n++; return rsaKeys()[(n-1)%2], nil }
	return f
}

func createRSA(t *testing.T, f *kmsfake.Fake, tags ...string) *types.KeyMetadata {
	t.Helper()
	in := &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt, Policy: aws.String(`{"Version":"2012-10-17"}`), BypassPolicyLockoutSafetyCheck: true}
	for i := 0; i+1 < len(tags); i += 2 {
		in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(tags[i]), TagValue: aws.String(tags[i+1])})
	}
	out, err := f.CreateKey(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata
}

func assertCode(t *testing.T, err error, want string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestCreateKeyRecordsTagsPolicyAndDescribesByEveryName(t *testing.T) {
	f := newFake(t)
	md := createRSA(t, f, "flowkey:secret-arn", "arn:s", "flowkey:rotation-token", "v1")
	if _, err := f.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/flowkey/x/v1"), TargetKeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	k := f.Key(*md.KeyId)
	if k.Tags["flowkey:rotation-token"] != "v1" || !k.Bypass || k.Policy == "" || k.Spec != types.KeySpecRsa2048 || k.State != types.KeyStateEnabled {
		t.Fatalf("key = %+v", k)
	}
	for _, name := range []string{*md.KeyId, *md.Arn, "alias/flowkey/x/v1", "arn:aws:kms:us-east-1:111122223333:alias/flowkey/x/v1"} {
		out, err := f.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
		if err != nil || aws.ToString(out.KeyMetadata.Arn) != *md.Arn || out.KeyMetadata.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
			t.Errorf("DescribeKey(%s) = %+v, %v", name, out, err)
		}
	}
	_, err := f.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	assertCode(t, err, "NotFoundException")
	_, err = f.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/flowkey/x/v1"), TargetKeyId: md.KeyId})
	assertCode(t, err, "AlreadyExistsException")
	tags, err := f.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: md.Arn})
	if err != nil || len(tags.Tags) != 2 || aws.ToString(tags.Tags[0].TagKey) != "flowkey:rotation-token" {
		t.Errorf("ListResourceTags = %+v, %v", tags, err)
	}
}

func TestDecryptIsRSAOAEPSHA256WithTheKeysPrivateHalf(t *testing.T) {
	f := newFake(t)
	md := createRSA(t, f)
	pub, err := f.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.Arn})
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKIXPublicKey(pub.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef")
	block, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, key.(*rsa.PublicKey), secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Decrypt(ctx, &kms.DecryptInput{KeyId: md.Arn, CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	if err != nil || !bytes.Equal(out.Plaintext, secret) || aws.ToString(out.KeyId) != *md.Arn {
		t.Fatalf("Decrypt = %+v, %v", out, err)
	}
	other := createRSA(t, f)
	_, err = f.Decrypt(ctx, &kms.DecryptInput{KeyId: other.Arn, CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	assertCode(t, err, "InvalidCiphertextException")
	_, err = f.Decrypt(ctx, &kms.DecryptInput{KeyId: md.Arn, CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
	assertCode(t, err, "InvalidKeyUsageException")
	_, err = f.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	assertCode(t, err, "ValidationException")
	signing := f.AddKey(kmsfake.KeyOptions{Usage: types.KeyUsageTypeSignVerify})
	_, err = f.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(signing.ARN), CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	assertCode(t, err, "InvalidKeyUsageException")
}

func TestKeyStates(t *testing.T) {
	f := newFake(t)
	f.Now = func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }
	md := createRSA(t, f)
	decrypt := func() error {
		_, err := f.Decrypt(ctx, &kms.DecryptInput{KeyId: md.Arn, CiphertextBlob: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		return err
	}
	if _, err := f.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.Arn}); err != nil {
		t.Fatal(err)
	}
	assertCode(t, decrypt(), "DisabledException")
	_, err := f.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: md.Arn})
	assertCode(t, err, "DisabledException")
	if _, err := f.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.Arn}); err != nil {
		t.Fatalf("disabling a disabled key: %v", err)
	}
	_, err = f.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn, PendingWindowInDays: aws.Int32(6)})
	assertCode(t, err, "ValidationException")
	out, err := f.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn, PendingWindowInDays: aws.Int32(7)})
	if err != nil || !aws.ToTime(out.DeletionDate).Equal(f.Now().Add(7*24*time.Hour)) {
		t.Fatalf("ScheduleKeyDeletion = %+v, %v", out, err)
	}
	assertCode(t, decrypt(), "KMSInvalidStateException")
	_, err = f.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn})
	assertCode(t, err, "KMSInvalidStateException")
	_, err = f.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.Arn})
	assertCode(t, err, "KMSInvalidStateException")
	_, err = f.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/late"), TargetKeyId: md.KeyId})
	assertCode(t, err, "KMSInvalidStateException")
	d, err := f.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
	if err != nil || d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.DeletionDate == nil || d.KeyMetadata.Enabled {
		t.Fatalf("DescribeKey = %+v, %v", d, err)
	}
	if len(f.Live()) != 0 || len(f.Keys()) != 1 {
		t.Errorf("Live %d, Keys %d", len(f.Live()), len(f.Keys()))
	}
}

func TestListsPage(t *testing.T) {
	f := newFake(t)
	f.PageSize = 2
	for i := range 5 {
		f.AddKey(kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
		f.AddAlias("alias/a"+string(rune('0'+i)), f.Keys()[i].ID)
	}
	var keys, aliases []string
	var marker *string
	for {
		out, err := f.ListKeys(ctx, &kms.ListKeysInput{Marker: marker, Limit: aws.Int32(1000)})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range out.Keys {
			keys = append(keys, aws.ToString(k.KeyId))
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	marker = nil
	for {
		out, err := f.ListAliases(ctx, &kms.ListAliasesInput{Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Aliases {
			aliases = append(aliases, aws.ToString(a.AliasName))
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if len(keys) != 5 || !slices.Equal(aliases, []string{"alias/a0", "alias/a1", "alias/a2", "alias/a3", "alias/a4"}) {
		t.Errorf("keys %v, aliases %v", keys, aliases)
	}
	if f.Calls(kmsfake.OpListKeys) != 3 || f.Calls(kmsfake.OpListAliases) != 3 {
		t.Errorf("pages: %d ListKeys, %d ListAliases", f.Calls(kmsfake.OpListKeys), f.Calls(kmsfake.OpListAliases))
	}
}

func TestScriptedFailuresDeniedKeysAndCrashes(t *testing.T) {
	f := newFake(t)
	f.FailNext(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
	_, err := f.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	assertCode(t, err, "ThrottlingException")
	if len(f.Keys()) != 0 {
		t.Fatal("a failed CreateKey made a key")
	}
	denied := f.AddKey(kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
	denied.Denied = true
	_, err = f.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(denied.ID)})
	assertCode(t, err, "AccessDeniedException")

	f.CrashAfter(kmsfake.OpCreateKey)
	func() {
		defer func() {
			if r := recover(); r != (kmsfake.Crash{Op: kmsfake.OpCreateKey}) {
				t.Errorf("recovered %v, want the crash", r)
			}
		}()
		createRSA(t, f)
		t.Error("CreateKey returned after CrashAfter")
	}()
	if len(f.Keys()) != 2 {
		t.Errorf("the crashed CreateKey left %d keys, want the denied one and the new one", len(f.Keys()))
	}
	createRSA(t, f) // the crash was one-shot, and the lock was released
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.ListKeys(cancelled, &kms.ListKeysInput{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	want := []string{"CreateKey", "ListResourceTags", "CreateKey", "CreateKey", "ListKeys"}
	if !slices.Equal(f.Ops(), want) {
		t.Errorf("Ops = %v, want %v", f.Ops(), want)
	}
}
