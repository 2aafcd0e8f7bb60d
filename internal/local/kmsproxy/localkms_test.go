package kmsproxy_test

// What flowkey relies on in local-kms, tested on local-kms itself with the
// real SDK client: local-kms has no functional tests of RSA decryption of
// its own. Where local-kms departs from AWS's documented behaviour, the
// test says so in a "Divergence" comment and pins what local-kms does; the
// proxy corrects the divergences flowkey relies on (kmsproxy.Corrections,
// proxy_test.go), so the product is tested against AWS's answers.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/stack"
)

const testSecretARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/whatsapp-flows-key-AbCdEf"

// custodyPolicy is a key policy of the shape flowkey's custody keys carry.
const custodyPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:Describe*","kms:Get*","kms:List*","kms:PutKeyPolicy","kms:ScheduleKeyDeletion"],"Resource":"*"},
 {"Sid":"Rotator","Effect":"Allow","Principal":{"AWS":"` + stack.RotatorRoleARN + `"},"Action":["kms:GetPublicKey","kms:Decrypt","kms:DescribeKey","kms:DisableKey","kms:ScheduleKeyDeletion","kms:TagResource","kms:CreateAlias","kms:PutKeyPolicy"],"Resource":"*"},
 {"Sid":"Endpoint","Effect":"Allow","Principal":{"AWS":"` + stack.EndpointRoleARN + `"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}}]}`

func TestLocalKMSCreatesAnRSA2048EncryptionKeyWithTagsAndAPolicy(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	ctx := ctxT(t)
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt,
		Description: aws.String("flowkey custody key"), Policy: aws.String(custodyPolicy),
		Tags: []types.Tag{{TagKey: aws.String("flowkey:secret-arn"), TagValue: aws.String(testSecretARN)},
			{TagKey: aws.String("flowkey:rotation-token"), TagValue: aws.String("5f1c7d6e-0000-4000-8000-000000000001")}},
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	m := out.KeyMetadata
	arn := aws.ToString(m.Arn)
	if want := "arn:aws:kms:us-east-1:111122223333:key/" + aws.ToString(m.KeyId); arn != want {
		t.Errorf("Arn = %q, want %q", arn, want)
	}
	desc, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	d := desc.KeyMetadata
	if d.KeySpec != types.KeySpecRsa2048 || d.KeyUsage != types.KeyUsageTypeEncryptDecrypt || d.KeyState != types.KeyStateEnabled || !d.Enabled {
		t.Errorf("DescribeKey: KeySpec %s, KeyUsage %s, KeyState %s, Enabled %v", d.KeySpec, d.KeyUsage, d.KeyState, d.Enabled)
	}
	if !slices.Contains(d.EncryptionAlgorithms, types.EncryptionAlgorithmSpecRsaesOaepSha256) {
		t.Errorf("DescribeKey: EncryptionAlgorithms %v, want RSAES_OAEP_SHA_256 among them", d.EncryptionAlgorithms)
	}
	if d.KeyManager != types.KeyManagerTypeCustomer || d.Origin != types.OriginTypeAwsKms || aws.ToString(d.Description) != "flowkey custody key" {
		t.Errorf("DescribeKey: KeyManager %s, Origin %s, Description %q", d.KeyManager, d.Origin, aws.ToString(d.Description))
	}
	pol, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default")})
	if err != nil || aws.ToString(pol.Policy) != custodyPolicy {
		t.Errorf("GetKeyPolicy = %v, %v; want the policy CreateKey set", pol, err)
	}
	tags := listTags(t, c, arn)
	if tags["flowkey:secret-arn"] != testSecretARN || tags["flowkey:rotation-token"] == "" || len(tags) != 2 {
		t.Errorf("ListResourceTags = %v, want the two tags CreateKey set", tags)
	}
}

// Divergence: AWS refuses a key policy that is not a JSON policy document
// (MalformedPolicyDocumentException) and applies the lockout safety check;
// local-kms stores any string. Correction 6 of the proxy.
func TestLocalKMSAcceptsAnyKeyPolicy(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	if _, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt, Policy: aws.String("not a policy")}); err != nil {
		t.Errorf("CreateKey with a policy that is not JSON: %v; local-kms used to accept it", err)
	}
}

func listTags(t *testing.T, c *kms.Client, keyID string) map[string]string {
	t.Helper()
	tags := map[string]string{}
	p := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: aws.String(keyID), Limit: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatalf("ListResourceTags: %v", err)
		}
		for _, tag := range page.Tags {
			tags[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
		}
	}
	return tags
}

// Divergence: AWS's GetPublicKey names the key's EncryptionAlgorithms;
// local-kms leaves them out (correction 3).
func TestLocalKMSGetPublicKeyIsDERSPKIOfRSA2048(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	out, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keypair.ParsePublicDER("GetPublicKey", out.PublicKey)
	if err != nil {
		t.Fatalf("flowkey's parser refuses the key: %v", err)
	}
	if pub.N.BitLen() != 2048 || pub.E != 65537 {
		t.Errorf("public key: %d bits, e=%d", pub.N.BitLen(), pub.E)
	}
	if aws.ToString(out.KeyId) != arn || out.KeySpec != types.KeySpecRsa2048 || out.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
		t.Errorf("GetPublicKey: KeyId %q, KeySpec %s, KeyUsage %s", aws.ToString(out.KeyId), out.KeySpec, out.KeyUsage)
	}
	if len(out.EncryptionAlgorithms) != 0 {
		t.Errorf("EncryptionAlgorithms = %v: local-kms now sends them, drop correction 3", out.EncryptionAlgorithms)
	}
}

// A block encrypted outside KMS, as a WhatsApp client does, decrypts with
// RSAES_OAEP_SHA_256 only when it is OAEP with SHA-256 for both the hash
// and MGF1 and an empty label.
func TestLocalKMSDecryptsRSAOAEPSHA256MadeOutsideKMS(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	pub := publicKey(t, c, arn)
	aesKey := make([]byte, 16)
	rand.Read(aesKey)

	good, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: good, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(out.Plaintext, aesKey) || aws.ToString(out.KeyId) != arn || out.EncryptionAlgorithm != types.EncryptionAlgorithmSpecRsaesOaepSha256 {
		t.Errorf("Decrypt: plaintext matches %v, KeyId %q, EncryptionAlgorithm %s", bytes.Equal(out.Plaintext, aesKey), aws.ToString(out.KeyId), out.EncryptionAlgorithm)
	}
	// The hand-made encoder agrees with crypto/rsa, so its other blocks
	// below fail for the parameter they change and nothing else.
	if got, err := decrypt(ctxT(t), c, arn, encryptOAEP(t, pub, sha256.New(), sha256.New(), aesKey, nil)); err != nil || !bytes.Equal(got, aesKey) {
		t.Fatalf("the test's OAEP encoder with SHA-256/MGF1-SHA-256: %v", err)
	}

	sha1Block, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, aesKey, nil)
	other := publicKey(t, c, rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt))
	toOther, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, other, aesKey, nil)
	for name, block := range map[string][]byte{
		"a label":                   encryptOAEP(t, pub, sha256.New(), sha256.New(), aesKey, []byte("flows")),
		"MGF1 with SHA-1":           encryptOAEP(t, pub, sha256.New(), sha1.New(), aesKey, nil),
		"OAEP with SHA-1":           sha1Block,
		"another key's block":       toOther,
		"a block of the wrong size": good[:255],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decrypt(ctxT(t), c, arn, block)
			var bad *types.InvalidCiphertextException
			if !errors.As(err, &bad) {
				t.Errorf("Decrypt = %v, want InvalidCiphertextException", err)
			}
		})
	}
	t.Run("RSAES_OAEP_SHA_1 for an OAEP SHA-1 block", func(t *testing.T) {
		out, err := c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: sha1Block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
		if err != nil || !bytes.Equal(out.Plaintext, aesKey) {
			t.Errorf("Decrypt = %v", err)
		}
	})
	// Divergence: AWS answers InvalidKeyUsageException for an algorithm the
	// key does not support (the default SYMMETRIC_DEFAULT on an RSA key);
	// local-kms InvalidCiphertextException (correction 2).
	t.Run("no EncryptionAlgorithm", func(t *testing.T) {
		_, err := c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: good})
		var bad *types.InvalidCiphertextException
		if !errors.As(err, &bad) {
			t.Errorf("Decrypt = %v; local-kms used to answer InvalidCiphertextException", err)
		}
	})
}

// Divergence: AWS's Decrypt refuses a key whose KeyUsage is not
// ENCRYPT_DECRYPT (InvalidKeyUsageException); local-kms decrypts with a
// SIGN_VERIFY RSA key (correction 1). flowkey checks KeyUsage itself.
func TestLocalKMSDecryptIgnoresKeyUsage(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	block, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, publicKey(t, c, arn), []byte("0123456789abcdef"), nil)
	if _, err := decrypt(ctxT(t), c, arn, block); err != nil {
		t.Errorf("Decrypt with a SIGN_VERIFY key = %v; local-kms used to decrypt", err)
	}
}

// An RSA_3072 key cannot decrypt the 256-byte block a client makes for an
// RSA-2048 key: what a document naming the wrong KeySpec meets.
func TestLocalKMSRSA3072KeyRefusesA2048BitBlock(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa3072, types.KeyUsageTypeEncryptDecrypt)
	if pub := publicKey(t, c, arn); pub.N.BitLen() != 3072 {
		t.Fatalf("RSA_3072 key has %d bits", pub.N.BitLen())
	}
	two := publicKey(t, c, rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt))
	block, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, two, []byte("0123456789abcdef"), nil)
	_, err := decrypt(ctxT(t), c, arn, block)
	var bad *types.InvalidCiphertextException
	if !errors.As(err, &bad) {
		t.Errorf("Decrypt = %v, want InvalidCiphertextException", err)
	}
}

func TestLocalKMSAliases(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	ctx := ctxT(t)
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	other := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	const prefix = "alias/flowkey/0123456789abcdef/"
	var want []string
	for i := range 7 {
		name := prefix + "5f1c7d6e-0000-4000-8000-00000000000" + string(rune('1'+i))
		target := arn
		if i == 6 {
			target = other
		}
		if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(target)}); err != nil {
			t.Fatalf("CreateAlias %s: %v", name, err)
		}
		want = append(want, name)
	}
	_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(want[0]), TargetKeyId: aws.String(other)})
	var exists *types.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("CreateAlias of a name in use = %v, want AlreadyExistsException", err)
	}

	// Paging: three at a time, every alias once. Divergence: AWS also lists
	// its own aliases (alias/aws/...) and each alias's CreationDate and
	// LastUpdatedDate; local-kms lists only those created, without dates.
	var got []string
	pages := 0
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(3)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListAliases: %v", err)
		}
		pages++
		for _, a := range page.Aliases {
			got = append(got, aws.ToString(a.AliasName))
			if aws.ToString(a.AliasArn) != "arn:aws:kms:us-east-1:111122223333:"+aws.ToString(a.AliasName) || a.TargetKeyId == nil {
				t.Errorf("alias %s: AliasArn %q, TargetKeyId %v", aws.ToString(a.AliasName), aws.ToString(a.AliasArn), a.TargetKeyId)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("ListAliases in %d pages: %v, want %v in 3", pages, got, want)
	}
	byKey, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(other)})
	if err != nil || len(byKey.Aliases) != 1 || aws.ToString(byKey.Aliases[0].AliasName) != want[6] {
		t.Errorf("ListAliases of one key = %v, %v; want %s alone", byKey, err, want[6])
	}

	for _, id := range []string{want[0], "arn:aws:kms:us-east-1:111122223333:" + want[0]} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if err != nil || aws.ToString(d.KeyMetadata.Arn) != arn {
			t.Errorf("DescribeKey(%s) = %v, want the aliased key", id, err)
		}
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(prefix + "no-such-token")})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DescribeKey of a missing alias = %v, want NotFoundException", err)
	}
}

func TestLocalKMSTagResourceAndListResourceTags(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	tag := func(k, v string) {
		t.Helper()
		if _, err := c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: aws.String(arn), Tags: []types.Tag{{TagKey: aws.String(k), TagValue: aws.String(v)}}}); err != nil {
			t.Fatalf("TagResource: %v", err)
		}
	}
	tag("flowkey:secret-arn", testSecretARN)
	tag("flowkey:rotation-token", "first")
	// As on AWS, tagging a key again replaces the value.
	tag("flowkey:rotation-token", "second")
	if got := listTags(t, c, arn); len(got) != 2 || got["flowkey:rotation-token"] != "second" || got["flowkey:secret-arn"] != testSecretARN {
		t.Errorf("tags = %v", got)
	}
}

func TestLocalKMSDisableKeyThenDecryptFailsWithDisabledException(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	ctx := ctxT(t)
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	block, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, publicKey(t, c, arn), []byte("0123456789abcdef"), nil)
	for range 2 { // DisableKey of a disabled key succeeds, as on AWS
		if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
			t.Fatalf("DisableKey: %v", err)
		}
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err != nil || d.KeyMetadata.KeyState != types.KeyStateDisabled || d.KeyMetadata.Enabled {
		t.Fatalf("DescribeKey after DisableKey = %v, %v; want Disabled", d, err)
	}
	var disabled *types.DisabledException
	if _, err := decrypt(ctx, c, arn, block); !errors.As(err, &disabled) {
		t.Errorf("Decrypt with a disabled key = %v, want DisabledException", err)
	}
	if _, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(arn)}); !errors.As(err, &disabled) {
		t.Errorf("GetPublicKey of a disabled key = %v, want DisabledException", err)
	}
	if _, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := decrypt(ctx, c, arn, block); err != nil {
		t.Errorf("Decrypt after EnableKey = %v", err)
	}
}

// Divergence: AWS's ScheduleKeyDeletion answers KeyState PendingDeletion
// and PendingWindowInDays besides KeyId and DeletionDate; local-kms only
// the two (correction 5).
func TestLocalKMSScheduleKeyDeletion(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	ctx := ctxT(t)
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	block, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, publicKey(t, c, arn), []byte("0123456789abcdef"), nil)
	for _, days := range []int32{6, 31} {
		_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(days)})
		if errorCode(err) != "ValidationException" {
			t.Errorf("ScheduleKeyDeletion of %d days = %v, want ValidationException", days, err)
		}
	}
	// flowkey disables a key before it schedules its deletion.
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	out, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatalf("ScheduleKeyDeletion: %v", err)
	}
	if aws.ToString(out.KeyId) != arn || out.DeletionDate == nil || out.DeletionDate.Sub(before) < 7*24*time.Hour-time.Minute || out.DeletionDate.Sub(before) > 7*24*time.Hour+time.Minute {
		t.Errorf("ScheduleKeyDeletion: KeyId %q, DeletionDate %v; want the key, 7 days from now", aws.ToString(out.KeyId), out.DeletionDate)
	}
	if out.KeyState != "" || out.PendingWindowInDays != nil {
		t.Errorf("ScheduleKeyDeletion: KeyState %q, PendingWindowInDays %v: local-kms now sends them, drop correction 5", out.KeyState, out.PendingWindowInDays)
	}
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err != nil || d.KeyMetadata.KeyState != types.KeyStatePendingDeletion || d.KeyMetadata.DeletionDate == nil || d.KeyMetadata.Enabled {
		t.Errorf("DescribeKey of a key pending deletion = %+v, %v", d.KeyMetadata, err)
	}
	var state *types.KMSInvalidStateException
	if _, err := decrypt(ctx, c, arn, block); !errors.As(err, &state) {
		t.Errorf("Decrypt with a key pending deletion = %v, want KMSInvalidStateException", err)
	}
	// Retirement must tell "already retired" from a failure: both answer
	// KMSInvalidStateException, as on AWS.
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)}); !errors.As(err, &state) {
		t.Errorf("ScheduleKeyDeletion again = %v, want KMSInvalidStateException", err)
	}
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(arn)}); !errors.As(err, &state) {
		t.Errorf("DisableKey of a key pending deletion = %v, want KMSInvalidStateException", err)
	}
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt))}); err != nil {
		t.Errorf("ScheduleKeyDeletion with the default window (30 days) of an enabled key: %v", err)
	}
}

func TestLocalKMSListKeysPages(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	var want []string
	for range 5 {
		want = append(want, rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt))
	}
	var got []string
	pages := 0
	p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		pages++
		for _, k := range page.Keys {
			got = append(got, aws.ToString(k.KeyArn))
			if !strings.HasSuffix(aws.ToString(k.KeyArn), "/"+aws.ToString(k.KeyId)) {
				t.Errorf("key %s has KeyId %s", aws.ToString(k.KeyArn), aws.ToString(k.KeyId))
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("ListKeys in %d pages: %v, want %v in 3", pages, got, want)
	}
}

// Divergence: a key ARN of another account is AccessDeniedException on
// AWS (no policy of ours can allow it); local-kms looks the ARN up and
// answers NotFoundException (correction 4).
func TestLocalKMSKeyOfAnotherAccountIsNotFound(t *testing.T) {
	c := client(startLocalKMS(t).URL, "local")
	arn := rsaKey(t, c, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	foreign := strings.Replace(arn, ":111122223333:", ":444455556666:", 1)
	block, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, publicKey(t, c, arn), []byte("0123456789abcdef"), nil)
	_, err := decrypt(ctxT(t), c, foreign, block)
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Decrypt with another account's key = %v; local-kms used to answer NotFoundException", err)
	}
}
