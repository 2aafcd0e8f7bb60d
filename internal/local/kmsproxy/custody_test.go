package kmsproxy_test

// The product's KMS custody adapter (internal/custody) against local-kms,
// through the proxy as the functions reach it: what its unit tests prove
// on an in-memory fake, here on the emulator's real key store, aliases,
// tags, paging and RSA.

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// custodyFixture is a Manager signing as the rotator through the proxy,
// and the secret's creation record it keeps.
type custodyFixture struct {
	*proxied
	m        *custody.Manager
	recorded string
}

func newCustody(t *testing.T) *custodyFixture {
	t.Helper()
	px := startProxied(t)
	m, err := custody.New(px.as(rotator), custody.Options{
		RotatorRoleARN: stack.RotatorRoleARN, DecryptRoleARNs: []string{stack.EndpointRoleARN}, DeletionDays: 7,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &custodyFixture{proxied: px, m: m}
}

func (f *custodyFixture) request(token string) custody.Request {
	return custody.Request{SecretARN: testSecretARN, Token: token, Recorded: f.recorded,
		Record: func(context.Context) error { f.recorded = token; return nil },
		Keep:   func(string) bool { return false }}
}

func (f *custodyFixture) state(t *testing.T, keyARN string) types.KeyState {
	t.Helper()
	d, err := f.direct.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		t.Fatal(err)
	}
	return d.KeyMetadata.KeyState
}

// keysTagged counts local-kms's keys tagged for the secret and token.
func (f *custodyFixture) keysTagged(t *testing.T, token string) int {
	t.Helper()
	n := 0
	p := kms.NewListKeysPaginator(f.direct, &kms.ListKeysInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			tags := listTags(t, f.direct, aws.ToString(k.KeyArn))
			if tags[custody.TagSecretARN] == testSecretARN && tags[custody.TagRotationToken] == token {
				n++
			}
		}
	}
	return n
}

const (
	token1 = "5f1c7d6e-0000-4000-8000-000000000001"
	token2 = "5f1c7d6e-0000-4000-8000-000000000002"
)

// Ensure creates one tagged, aliased RSA_2048 key whose policy the proxy
// (AWS's checks) accepts; a repeated Ensure finds it by its alias; the
// proof decrypts through kms:Decrypt; Retire disables and schedules it,
// and a second Retire leaves it be.
func TestCustodyOnLocalKMSCreatesFindsProvesAndRetiresOneKey(t *testing.T) {
	f := newCustody(t)
	ctx := ctxT(t)
	got, err := f.m.Ensure(ctx, f.request(token1))
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if got.How != custody.Created || got.Key.Spec != types.KeySpecRsa2048 || got.Key.Usage != types.KeyUsageTypeEncryptDecrypt || got.Key.State != types.KeyStateEnabled {
		t.Errorf("Ensure: %s, %+v", got.How, got.Key)
	}
	if f.recorded != token1 {
		t.Errorf("the creation was not recorded before the key: %q", f.recorded)
	}
	pol, err := f.direct.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(got.Key.ARN), PolicyName: aws.String("default")})
	if err != nil || !bytes.Contains([]byte(aws.ToString(pol.Policy)), []byte(stack.EndpointRoleARN)) {
		t.Errorf("the key's policy does not name the endpoint's role: %v", err)
	}
	again, err := f.m.Ensure(ctx, f.request(token1))
	if err != nil || again.How != custody.FoundByAlias || again.Key.ARN != got.Key.ARN || !bytes.Equal(again.PublicDER, got.PublicDER) {
		t.Fatalf("Ensure again = %+v, %v; want the same key, by its alias", again, err)
	}
	if n := f.keysTagged(t, token1); n != 1 {
		t.Errorf("%d keys tagged for the version, want 1", n)
	}
	pub, err := x509.ParsePKIXPublicKey(got.PublicDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.ProveDecrypt(ctx, got.Key.ARN, nil, pub.(*rsa.PublicKey)); err != nil {
		t.Errorf("ProveDecrypt: %v", err)
	}
	list, err := f.m.List(ctx, testSecretARN)
	if err != nil || len(list) != 1 || list[0].Alias != custody.AliasName(testSecretARN, token1) || list[0].Key == nil || list[0].Key.ARN != got.Key.ARN {
		t.Errorf("List = %+v, %v", list, err)
	}
	retired, err := f.m.Retire(ctx, testSecretARN, func(string) bool { return false })
	if err != nil || len(retired) != 1 || retired[0].Before != types.KeyStateEnabled || retired[0].DeletionDate.IsZero() {
		t.Fatalf("Retire = %+v, %v", retired, err)
	}
	if s := f.state(t, got.Key.ARN); s != types.KeyStatePendingDeletion {
		t.Errorf("after Retire the key is %s", s)
	}
	if calls := f.proxy.Calls(); calls.Count(kmsproxy.Call{Op: "DisableKey", Result: kmsproxy.ResultOK}) != 1 || calls.Count(kmsproxy.Call{Op: "ScheduleKeyDeletion", Result: kmsproxy.ResultOK}) != 1 {
		t.Errorf("Retire's calls: %v", calls.List())
	}
	retired, err = f.m.Retire(ctx, testSecretARN, func(string) bool { return false })
	if err != nil || len(retired) != 1 || retired[0].Skipped == "" {
		t.Errorf("Retire again = %+v, %v; want the key skipped as pending deletion", retired, err)
	}
}

// A crash between CreateKey and CreateAlias (CreateAlias fails for good)
// leaves a tagged key; the next attempt finds it with ListKeys and
// ListResourceTags on local-kms and aliases it: one key for the version.
func TestCustodyOnLocalKMSFindsTheOrphanOfACrashedAttempt(t *testing.T) {
	f := newCustody(t)
	ctx := ctxT(t)
	// Other keys, so the scan pages past keys that are not the orphan.
	for range 3 {
		rsaKey(t, f.direct, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	}
	id, err := f.proxy.AddFault(kmsproxy.Fault{Op: "CreateAlias", Error: kmsproxy.KMSInternalException, Times: kmsproxy.Forever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Ensure(ctx, f.request(token1)); err == nil {
		t.Fatal("Ensure succeeded although CreateAlias failed")
	}
	f.proxy.RemoveFault(id)
	got, err := f.m.Ensure(ctx, f.request(token1))
	if err != nil || got.How != custody.FoundByTags {
		t.Fatalf("Ensure after the crash = %+v, %v; want the orphan found by its tags", got, err)
	}
	if n := f.keysTagged(t, token1); n != 1 {
		t.Errorf("%d keys tagged for the version, want exactly 1", n)
	}
	if n := f.proxy.Calls().Count(kmsproxy.Call{Op: "CreateKey", Result: kmsproxy.ResultOK}); n != 1 {
		t.Errorf("%d keys created, want 1", n)
	}
	// The next version's key is a new one.
	next, err := f.m.Ensure(ctx, f.request(token2))
	if err != nil || next.How != custody.Created || next.Key.ARN == got.Key.ARN {
		t.Errorf("Ensure of the next version = %+v, %v", next, err)
	}
}

// The endpoint's Decrypter on local-kms: a throttle is retried once, two
// are a throttled error; a disabled key and a SIGN_VERIFY key (the
// proxy's correction) are errors with KMS's codes, never a plaintext.
func TestCustodyDecrypterOnLocalKMS(t *testing.T) {
	f := newCustody(t)
	ctx := ctxT(t)
	got, err := f.m.Ensure(ctx, f.request(token1))
	if err != nil {
		t.Fatal(err)
	}
	// As the endpoint builds it: no SDK retries, the Decrypter's one.
	ep := kms.New(kms.Options{Region: stack.Region, BaseEndpoint: aws.String(f.url), Credentials: client(f.url, endpoint).Options().Credentials, RetryMaxAttempts: 1})
	d := custody.NewDecrypter(ep, custody.DecrypterOptions{})
	b := block(t, f.direct, got.Key.ARN)
	if _, err := d.Decrypt(ctx, got.Key.ARN, b); err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	addFault(t, f.proxy, kmsproxy.Fault{Op: "Decrypt", Caller: endpoint, Error: kmsproxy.ThrottlingException, Times: 1})
	f.proxy.ResetCounters()
	if _, err := d.Decrypt(ctx, got.Key.ARN, b); err != nil {
		t.Errorf("Decrypt after one throttle: %v", err)
	}
	if n := f.proxy.Calls().Count(kmsproxy.Call{Caller: endpoint, Op: "Decrypt"}); n != 2 {
		t.Errorf("%d Decrypt calls, want 2 (the throttled one and its retry)", n)
	}
	addFault(t, f.proxy, kmsproxy.Fault{Op: "Decrypt", Caller: endpoint, Error: kmsproxy.ThrottlingException, Times: 2})
	_, err = d.Decrypt(ctx, got.Key.ARN, b)
	var ce *custody.Error
	if !errors.As(err, &ce) || !custody.IsThrottled(err) || ce.Throttled != 1 {
		t.Errorf("Decrypt throttled twice = %v, want a throttled *custody.Error", err)
	}

	if _, err := f.direct.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(got.Key.ARN)}); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Decrypt(ctx, got.Key.ARN, b); out != nil || errorCode(err) != "DisabledException" {
		t.Errorf("Decrypt with a disabled key = %v, want DisabledException", err)
	}
	signing := rsaKey(t, f.direct, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify)
	if out, err := d.Decrypt(ctx, signing, block(t, f.direct, signing)); out != nil || errorCode(err) != "InvalidKeyUsageException" {
		t.Errorf("Decrypt with a SIGN_VERIFY key = %v, want InvalidKeyUsageException", err)
	}
}
