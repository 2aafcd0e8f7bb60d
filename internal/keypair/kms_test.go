package keypair

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

const (
	testSecretARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/whatsapp-AbCdEf"
	testKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// fakeKMS records what Generate asked for and answers with fresh copies of
// out, so a test can see whether Generate zeroed the plaintext it was given.
type fakeKMS struct {
	out   *kms.GenerateDataKeyPairOutput
	err   error
	calls int
	in    *kms.GenerateDataKeyPairInput
	given *kms.GenerateDataKeyPairOutput
}

func (f *fakeKMS) GenerateDataKeyPair(ctx context.Context, in *kms.GenerateDataKeyPairInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyPairOutput, error) {
	f.calls++
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	if f.out == nil {
		return nil, nil
	}
	out := *f.out
	out.PublicKey = bytes.Clone(f.out.PublicKey)
	out.PrivateKeyPlaintext = bytes.Clone(f.out.PrivateKeyPlaintext)
	f.given = &out
	return &out, nil
}

func kmsOut(pub, priv []byte) *kms.GenerateDataKeyPairOutput {
	return &kms.GenerateDataKeyPairOutput{
		KeyId:                    aws.String(testKeyARN),
		KeyPairSpec:              types.DataKeyPairSpecRsa2048,
		PublicKey:                pub,
		PrivateKeyPlaintext:      priv,
		PrivateKeyCiphertextBlob: []byte("opaque"),
	}
}

func assertZeroed(t *testing.T, f *fakeKMS) {
	t.Helper()
	if f.given == nil {
		return
	}
	for _, b := range f.given.PrivateKeyPlaintext {
		if b != 0 {
			t.Fatal("PrivateKeyPlaintext was not zeroed after Generate")
		}
	}
}

func TestKMSGeneratorGenerate(t *testing.T) {
	f := testFixtures()
	fake := &fakeKMS{out: kmsOut(f.pkixA, f.pkcs8A)}
	g, err := NewKMSGenerator(fake, "alias/flowkey").Generate(context.Background(), testSecretARN)
	if err != nil {
		t.Fatal(err)
	}
	if fake.calls != 1 {
		t.Fatalf("calls = %d", fake.calls)
	}
	if got := aws.ToString(fake.in.KeyId); got != "alias/flowkey" {
		t.Errorf("KeyId = %q", got)
	}
	if fake.in.KeyPairSpec != types.DataKeyPairSpecRsa2048 {
		t.Errorf("KeyPairSpec = %q", fake.in.KeyPairSpec)
	}
	if ec := fake.in.EncryptionContext; len(ec) != 1 || ec[EncryptionContextKey] != testSecretARN {
		t.Errorf("EncryptionContext = %v", ec)
	}
	if g.Method != MethodKMS || g.KMSKeyID != testKeyARN {
		t.Errorf("Method, KMSKeyID = %q, %q", g.Method, g.KMSKeyID)
	}
	if g.Pair.Fingerprint() != f.pairA.Fingerprint() {
		t.Error("pair is not the one KMS returned")
	}
	assertZeroed(t, fake)
	if g.Pair.PrivatePEM() != f.pemA {
		t.Error("pair lost its private key when the KMS buffer was zeroed")
	}
}

func TestKMSGeneratorWithoutReportedKeyID(t *testing.T) {
	f := testFixtures()
	out := kmsOut(f.pkixA, f.pkcs8A)
	out.KeyId = nil
	out.KeyPairSpec = "" // an emulator may leave it out
	g, err := NewKMSGenerator(&fakeKMS{out: out}, "key-id").Generate(context.Background(), testSecretARN)
	if err != nil {
		t.Fatal(err)
	}
	if g.KMSKeyID != "key-id" {
		t.Errorf("KMSKeyID = %q, want the requested key", g.KMSKeyID)
	}
}

func TestKMSGeneratorRejectsOutput(t *testing.T) {
	f := testFixtures()
	const call = "kms GenerateDataKeyPair"
	spec := func(o *kms.GenerateDataKeyPairOutput, s types.DataKeyPairSpec) *kms.GenerateDataKeyPairOutput {
		o.KeyPairSpec = s
		return o
	}
	tests := []struct {
		name      string
		out       *kms.GenerateDataKeyPairOutput
		field     string
		want      string
		secretDER []byte
	}{
		{"no output", nil, call, "returned no output", nil},
		{"RSA-1024 pair", kmsOut(f.pkixSm, f.pkcs8Sm), call + " PrivateKeyPlaintext", "is RSA-1024, must be RSA-2048", f.pkcs8Sm},
		{"RSA-1024 public only", kmsOut(f.pkixSm, f.pkcs8A), call + " PublicKey", "is RSA-1024, must be RSA-2048", f.pkcs8A},
		{"EC pair", kmsOut(f.pkixEC, f.pkcs8EC), call + " PrivateKeyPlaintext", "is an ECDSA P-256 key, must be RSA-2048", f.pkcs8EC},
		{"mismatched pair", kmsOut(f.pairB.PublicDER(), f.pkcs8A), call + " PublicKey", "does not match PrivateKeyPlaintext", f.pkcs8A},
		{"empty public key", kmsOut(nil, f.pkcs8A), call + " PublicKey", "is empty", f.pkcs8A},
		{"empty private key", kmsOut(f.pkixA, nil), call + " PrivateKeyPlaintext", "is empty", nil},
		{"garbage private key", kmsOut(f.pkixA, []byte("garbage-bytes")), call + " PrivateKeyPlaintext", "not a valid PKCS#8", nil},
		{"garbage public key", kmsOut([]byte("garbage"), f.pkcs8A), call + " PublicKey", "not a PKIX", f.pkcs8A},
		{"other key pair spec", spec(kmsOut(f.pkixA, f.pkcs8A), types.DataKeyPairSpecRsa4096), call + " KeyPairSpec", `is "RSA_4096", requested "RSA_2048"`, f.pkcs8A},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeKMS{out: tt.out}
			g, err := NewKMSGenerator(fake, "alias/flowkey").Generate(context.Background(), testSecretARN)
			if g != nil {
				t.Fatal("returned a pair with the error")
			}
			e := asError(t, err)
			if e.Field != tt.field || !strings.Contains(e.Problem, tt.want) {
				t.Fatalf("error = %q, want field %q and problem %q", err, tt.field, tt.want)
			}
			if tt.out != nil && !strings.Contains(e.Fix, "RSA_2048") {
				t.Errorf("Fix %q is not about the KMS answer", e.Fix)
			}
			assertZeroed(t, fake)
			assertNoFragment(t, err.Error(), secretForms(nil, tt.secretDER)...)
		})
	}
}

func TestKMSGeneratorSDKErrors(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		fixWant []string
		check   func(error) bool
	}{
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"},
			[]string{"kms:GenerateDataKeyPair", "kms:EncryptionContext:" + EncryptionContextKey, testSecretARN},
			func(err error) bool {
				var a smithy.APIError
				return errors.As(err, &a) && a.ErrorCode() == "AccessDeniedException"
			}},
		{"not found", &types.NotFoundException{Message: aws.String("no such key")},
			[]string{"exists in this account and region"},
			func(err error) bool { var nf *types.NotFoundException; return errors.As(err, &nf) }},
		{"asymmetric key", &types.InvalidKeyUsageException{Message: aws.String("wrong usage")},
			[]string{"SYMMETRIC_DEFAULT"},
			func(err error) bool { var iu *types.InvalidKeyUsageException; return errors.As(err, &iu) }},
		{"disabled", &types.DisabledException{Message: aws.String("disabled")},
			[]string{"enable KMS key"},
			func(err error) bool { var d *types.DisabledException; return errors.As(err, &d) }},
		{"timeout", context.DeadlineExceeded, []string{"timeout"},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"network", errors.New("dial tcp: connection refused"), []string{"network access", "kms:GenerateDataKeyPair"}, nil},
		{"unknown API error", &smithy.GenericAPIError{Code: "SomethingNew"}, []string{"SYMMETRIC_DEFAULT", "kms:GenerateDataKeyPair"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKMSGenerator(&fakeKMS{err: tt.err}, "alias/flowkey").Generate(context.Background(), testSecretARN)
			e := asError(t, err)
			if e.Field != "kms GenerateDataKeyPair" {
				t.Errorf("Field = %q", e.Field)
			}
			if !errors.Is(err, tt.err) {
				t.Error("SDK error is not wrapped")
			}
			if tt.check != nil && !tt.check(err) {
				t.Error("SDK error type is not reachable with errors.As/Is")
			}
			if !strings.Contains(e.Problem, `KeyId "alias/flowkey"`) || !strings.Contains(e.Problem, tt.err.Error()) {
				t.Errorf("Problem %q does not name the key and the cause", e.Problem)
			}
			for _, w := range tt.fixWant {
				if !strings.Contains(e.Fix, w) {
					t.Errorf("Fix %q lacks %q", e.Fix, w)
				}
			}
		})
	}
}

func TestKMSGeneratorRejectsBadSetup(t *testing.T) {
	tests := []struct {
		name      string
		g         *KMSGenerator
		secretARN string
		field     string
	}{
		{"nil generator", nil, testSecretARN, "kms GenerateDataKeyPair"},
		{"nil client", NewKMSGenerator(nil, "k"), testSecretARN, "kms GenerateDataKeyPair"},
		{"empty key id", NewKMSGenerator(&fakeKMS{}, ""), testSecretARN, "kms GenerateDataKeyPair KeyId"},
		{"empty secret ARN", NewKMSGenerator(&fakeKMS{}, "k"), "", "kms GenerateDataKeyPair EncryptionContext"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.g.Generate(context.Background(), tt.secretARN)
			if e := asError(t, err); e.Field != tt.field {
				t.Fatalf("Field = %q, want %q", e.Field, tt.field)
			}
			if tt.g != nil {
				if fake, ok := tt.g.client.(*fakeKMS); ok && fake.calls != 0 {
					t.Fatal("called KMS with bad input")
				}
			}
		})
	}
}

func TestLocalGenerator(t *testing.T) {
	g, err := LocalGenerator{}.Generate(context.Background(), testSecretARN)
	if err != nil {
		t.Fatal(err)
	}
	if g.Method != MethodCrypto || g.KMSKeyID != "" {
		t.Errorf("Method, KMSKeyID = %q, %q", g.Method, g.KMSKeyID)
	}
	if err := g.Pair.ProveDecrypt(nil, g.Pair.Public()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = LocalGenerator{}.Generate(ctx, testSecretARN)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	asError(t, err)
}
