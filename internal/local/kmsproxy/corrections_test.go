package kmsproxy_test

// The proxy's corrections (kmsproxy.Corrections): AWS's answers where
// local-kms departs from them, through the real SDK client.

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
)

// Correction 1: Decrypt with a SIGN_VERIFY key is InvalidKeyUsageException.
// Correction 2: an algorithm the key does not support is too.
func TestProxyDecryptChecksKeyUsageAndAlgorithmAsAWSDoes(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	signing := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	_, err := decrypt(ctxT(t), rot, signing, block(t, rot, signing))
	var usage *types.InvalidKeyUsageException
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "SIGN_VERIFY") {
		t.Errorf("Decrypt with a SIGN_VERIFY key = %v, want InvalidKeyUsageException naming the usage", err)
	}
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	_, err = rot.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: block(t, rot, arn)})
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "SYMMETRIC_DEFAULT") {
		t.Errorf("Decrypt without an algorithm = %v, want InvalidKeyUsageException", err)
	}
	// Unknown keys are still local-kms's to answer.
	_, err = decrypt(ctxT(t), rot, "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000", block(t, rot, arn))
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("Decrypt with a missing key = %v, want NotFoundException", err)
	}
}

// Correction 3: GetPublicKey names the EncryptionAlgorithms.
func TestProxyGetPublicKeyNamesEncryptionAlgorithms(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	out, err := rot.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	want := []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}
	if !slices.Equal(out.EncryptionAlgorithms, want) || len(out.PublicKey) == 0 || out.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
		t.Errorf("GetPublicKey: EncryptionAlgorithms %v (want %v), %d bytes of key, KeyUsage %s", out.EncryptionAlgorithms, want, len(out.PublicKey), out.KeyUsage)
	}
	signing := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	if out, err := rot.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(signing)}); err != nil || len(out.EncryptionAlgorithms) != 0 || len(out.SigningAlgorithms) == 0 {
		t.Errorf("GetPublicKey of a SIGN_VERIFY key = %+v, %v; want signing algorithms only", out, err)
	}
}

// Correction 4: another account's key is AccessDeniedException.
func TestProxyDeniesAnotherAccountsKey(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	foreign := strings.Replace(arn, ":111122223333:", ":444455556666:", 1)
	_, err := decrypt(ctxT(t), px.as(endpoint), foreign, block(t, rot, arn))
	if errorCode(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "local-endpoint is not authorized to perform: kms:Decrypt on resource: "+foreign) {
		t.Errorf("Decrypt = %v, want AccessDeniedException naming the caller and the key", err)
	}
	if _, err := rot.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(foreign)}); errorCode(err) != "AccessDeniedException" {
		t.Errorf("DescribeKey = %v, want AccessDeniedException", err)
	}
	if n := px.proxy.Calls().Count(kmsproxy.Call{Result: "AccessDeniedException"}); n != 2 {
		t.Errorf("%d AccessDeniedException counted, want 2", n)
	}
}

// Correction 5: ScheduleKeyDeletion reports KeyState and the window.
func TestProxyScheduleKeyDeletionReportsStateAndWindow(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	for _, days := range []*int32{aws.Int32(7), nil} {
		arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
		out, err := rot.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: days})
		if err != nil {
			t.Fatal(err)
		}
		want := int32(30)
		if days != nil {
			want = *days
		}
		if out.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(out.PendingWindowInDays) != want || out.DeletionDate == nil || aws.ToString(out.KeyId) != arn {
			t.Errorf("ScheduleKeyDeletion = %+v, want PendingDeletion, %d days", out, want)
		}
	}
}

// Correction 6: CreateKey's key policy is checked as AWS checks it.
func TestProxyChecksCreateKeysPolicy(t *testing.T) {
	px := startProxied(t)
	stmt := func(principal, actions string) string {
		return `{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":` + actions + `,"Resource":"*"}`
	}
	policy := func(stmts ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
	}
	root := "arn:aws:iam::111122223333:root"
	admin := `["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"]`
	tests := []struct {
		name, caller, policy string
		bypass               bool
		want                 string // "" for success
	}{
		{"flowkey's custody policy", rotator, custodyPolicy, false, ""},
		{"the caller's role may PutKeyPolicy", rotator, policy(stmt(root, `"kms:DescribeKey"`), stmt(stackRotatorRole, `"kms:PutKeyPolicy"`)), false, ""},
		{"root may, and the caller's IAM does not allow it", rotator, policy(stmt(root, admin)), false, "will not allow you to update the key policy"},
		{"root may, and the caller's IAM allows kms:*", "admin", policy(stmt(root, `"kms:*"`)), false, ""},
		{"nobody may PutKeyPolicy", rotator, policy(stmt(root, `["kms:DescribeKey","kms:Decrypt"]`)), false, "will not allow you to update the key policy"},
		{"nobody may, with the check bypassed", rotator, policy(stmt(root, `"kms:DescribeKey"`)), true, ""},
		{"a caller the proxy does not know skips the check", "someone", policy(stmt(root, `"kms:DescribeKey"`)), false, ""},
		{"not JSON", rotator, "not a policy", false, "not valid JSON"},
		{"no statement", rotator, `{"Version":"2012-10-17","Statement":[]}`, false, "no statement"},
		{"a statement without a principal", rotator, `{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`, true, "invalid principals"},
		{"a principal that is no ARN", rotator, policy(stmt("flowkey-rotator", `"kms:*"`)), true, "invalid principals"},
		{"no action", rotator, `{"Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}`, true, "no Action"},
	}
	px.proxy = mustNewWithAdmin(t, px)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := px.as(tt.caller).CreateKey(ctxT(t), &kms.CreateKeyInput{
				KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt,
				Policy: aws.String(tt.policy), BypassPolicyLockoutSafetyCheck: tt.bypass,
			})
			var bad *types.MalformedPolicyDocumentException
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CreateKey: %v", err)
			case tt.want != "" && (!errors.As(err, &bad) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CreateKey = %v, want MalformedPolicyDocumentException with %q", err, tt.want)
			}
		})
	}
}

const stackRotatorRole = "arn:aws:iam::111122223333:role/flowkey-rotator-us-east-1"

// mustNewWithAdmin serves a proxy that also knows an "admin" caller whose
// IAM policy allows kms:*, on px's URL's place.
func mustNewWithAdmin(t *testing.T, px *proxied) *kmsproxy.Proxy {
	t.Helper()
	p, err := kmsproxy.New(kmsproxy.Options{
		Target: px.kms.URL, AccountID: "111122223333", Region: "us-east-1",
		Principals: map[string]kmsproxy.Principal{
			rotator: {ARN: stackRotatorRole, IAMActions: []string{"kms:CreateKey"}},
			"admin": {ARN: "arn:aws:iam::111122223333:role/admin", IAMActions: []string{"kms:*"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	px.url = serve(t, p)
	return p
}
