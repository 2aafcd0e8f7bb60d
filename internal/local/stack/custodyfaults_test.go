package stack_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/traffic"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// KMS's trouble in KMS custody: each fault must give a clear error, leave
// no stranded key (the invariants after every test check it), and make
// the endpoint answer 421, never 500, when nothing can decrypt.

// KMS throttles the rotator's CreateKey for good: createSecret gives up
// with an error that says so, creates no key, and the endpoint goes on
// serving the current key.
func TestKMSCustodyThrottlingThatLastsFailsTheRotationClearly(t *testing.T) {
	e, d, _ := withTraffic(t, kmsSetup())
	if _, err := e.KMSProxy.AddFault(kmsproxy.Fault{Op: "CreateKey", Caller: stack.RotatorAccessKeyID, Error: kmsproxy.ThrottlingException, Times: kmsproxy.Forever}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	token, msg := e.rotateFails(t, "createSecret", "ThrottlingException")
	calls := e.KMSProxy.Calls()
	t.Logf("createSecret gave up after %s and %d throttled CreateKey calls: %s", time.Since(began).Round(time.Millisecond),
		calls.Count(kmsproxy.Call{Op: "CreateKey", Result: kmsproxy.ThrottlingException}), msg)
	if n := calls.Count(kmsproxy.Call{Op: "CreateKey", Result: kmsproxy.ResultOK}); n != 1 {
		t.Errorf("%d keys created, want only the first rotation's", n)
	}
	if keys := e.custodyKeys(t); len(keys) != 1 {
		t.Errorf("%d custody keys, want the first rotation's alone: %+v", len(keys), keys)
	}
	e.KMSProxy.ClearFaults()
	p, err := d.Rounds(context.Background(), "after the failed rotation", 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Error(err)
	}
	e.checkInvariants(t, token)
}

// brokenKeySetup is KMS custody with the endpoint's key-ring floor at its
// least (100ms): a request no key decrypts waits out the floor before its
// 421 (the default 1 s would make each of these tests last minutes, one
// second per request, since the RIE serves one request at a time).
func brokenKeySetup() setup {
	s := kmsSetup()
	s.endpointEnv = map[string]string{config.EnvKeyringRefreshFloor: "100ms"}
	return s
}

// disabledPhase runs traffic while the AWSCURRENT key cannot decrypt and
// checks that the endpoint answered 421 to what it could not decrypt, and
// never 500.
func disabledPhase(t *testing.T, d *traffic.Driver, name string) traffic.Phase {
	t.Helper()
	p, err := d.Rounds(context.Background(), name, 1)
	if err != nil {
		t.Fatal(err)
	}
	report(t, p)
	if p.Endpoint.ByStatus[421] == 0 || p.Endpoint.ByStatus[500] != 0 || p.Endpoint.ByStatus[200] != 0 {
		t.Errorf("%s: by status %v, want only 421s (and no 500)", name, p.Endpoint.ByStatus)
	}
	for cause := range p.Clients.Causes {
		if cause != "421 after re-fetching the key" {
			t.Errorf("%s: a user saw %q, want 421s only", name, cause)
		}
	}
	return p
}

// recovers rotates away from the broken key with traffic flowing and
// checks that every user is served once the rotation is done.
func recovers(t *testing.T, e *env, d *traffic.Driver) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.During(ctx, "rotation away from the broken key", func(ctx context.Context) error {
		return traffic.CleanRotation().Run(ctx, traffic.Env{Stack: e.Stack, ARN: e.arn})
	}); err != nil {
		t.Fatal(err)
	}
	after, err := d.Rounds(ctx, "after the rotation", 3)
	if err != nil {
		t.Fatal(err)
	}
	report(t, after)
	if err := after.Check(); err != nil {
		t.Error(err)
	}
}

// The AWSCURRENT key is disabled behind flowkey's back: the endpoint
// answers 421 (its kms:Decrypt gets DisabledException), status names the
// key and its state and is not healthy, and the next rotation makes a new
// key that serves everyone again.
func TestKMSCustodyKeyDisabledBehindFlowkeysBack(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	key := e.kmsKeyOf(t, "AWSCURRENT")
	e.disabledOnPurpose[key] = true
	if _, err := e.KMS.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	p := disabledPhase(t, d, "AWSCURRENT's key disabled")
	if n := p.KMS.Count(kmsproxy.Call{Op: "Decrypt", Key: key, Result: "DisabledException"}); n == 0 {
		t.Errorf("no DisabledException from the endpoint's kms:Decrypt: %v", p.KMS.List())
	}
	e.statusNames(t, key, "Disabled")
	recovers(t, e, d)
}

// The AWSCURRENT key is scheduled for deletion behind flowkey's back
// (KMSInvalidStateException on kms:Decrypt): 421s, status says so, a
// rotation recovers; when the key later leaves every label, retiring it
// finds it pending deletion already and leaves it be.
func TestKMSCustodyKeyPendingDeletionBehindFlowkeysBack(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	key := e.kmsKeyOf(t, "AWSCURRENT")
	e.disabledOnPurpose[key] = true
	if _, err := e.KMS.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	p := disabledPhase(t, d, "AWSCURRENT's key pending deletion")
	if n := p.KMS.Count(kmsproxy.Call{Op: "Decrypt", Key: key, Result: "KMSInvalidStateException"}); n == 0 {
		t.Errorf("no KMSInvalidStateException from the endpoint's kms:Decrypt: %v", p.KMS.List())
	}
	e.statusNames(t, key, "PendingDeletion")
	recovers(t, e, d)
	// Two more rotations: the key leaves AWSPREVIOUS and is retired, which
	// must not fail on a key already pending deletion.
	before := e.KMSProxy.Calls()
	e.rotateOK(t)
	e.rotateOK(t)
	if n := e.KMSProxy.Calls().Sub(before).Count(kmsproxy.Call{Key: key, Op: "ScheduleKeyDeletion"}); n != 0 {
		t.Errorf("the retirement scheduled the deletion of a key already pending deletion %d times", n)
	}
}

// The endpoint is denied its AWSCURRENT key (the key policy no longer
// allows it, as for a key of another account): 421, never 500.
func TestKMSCustodyKeyTheEndpointIsDenied(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	key := e.kmsKeyOf(t, "AWSCURRENT")
	if _, err := e.KMSProxy.AddFault(kmsproxy.Fault{Op: "Decrypt", Key: key, Caller: stack.EndpointAccessKeyID, Error: kmsproxy.AccessDeniedException, Times: kmsproxy.Forever}); err != nil {
		t.Fatal(err)
	}
	p := disabledPhase(t, d, "the endpoint denied kms:Decrypt")
	if n := p.KMS.Count(kmsproxy.Call{Op: "Decrypt", Result: kmsproxy.AccessDeniedException}); n == 0 {
		t.Errorf("no AccessDeniedException: %v", p.KMS.List())
	}
	e.KMSProxy.ClearFaults()
}

// statusNames checks that the status command reports key in state, with
// the problem it makes, and is not healthy.
func (e *env) statusNames(t *testing.T, key, state string) {
	t.Helper()
	r := e.status(t)
	var found bool
	for _, k := range r.KMSKeys {
		if k.KeyARN == key {
			found = true
			if k.State != state || k.Problem == "" || len(k.Labels) == 0 {
				t.Errorf("status: key %s is %q, labels %v, problem %q; want %s, labelled, with a problem", key, k.State, k.Labels, k.Problem, state)
			}
		}
	}
	if !found {
		t.Errorf("status does not list key %s: %+v", key, r.KMSKeys)
	}
	if r.OK || !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, key) }) {
		t.Errorf("status is %s with reasons %q; want it not healthy because of %s", r.Overall, r.Reasons, key)
	}
}

// putCurrent stores key under AWSCURRENT with AWSCURRENT's configuration,
// as a hand edit of the secret would, and returns the new version's ID.
func (e *env) putCurrent(t *testing.T, key *secretdoc.Key) string {
	t.Helper()
	d := e.doc(t, "AWSCURRENT")
	d.Key = key
	body, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.arn), SecretString: aws.String(string(body)), VersionStages: []string{"AWSCURRENT"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

// strangerKey creates a KMS key flowkey did not make (no tags, no alias)
// and returns its ARN and public key (PKIX DER).
func (e *env) strangerKey(t *testing.T, spec kmstypes.KeySpec, usage kmstypes.KeyUsageType) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	out, err := e.KMS.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := e.KMS.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: out.KeyMetadata.Arn})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn), pub.PublicKey
}

// statusFlags checks that status is not healthy and that one of its
// reasons names key and mentions want.
func (e *env) statusFlags(t *testing.T, key, want string) {
	t.Helper()
	r := e.status(t)
	if r.OK || !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, key) && strings.Contains(s, want) }) {
		t.Errorf("status is %s with reasons %q; want one naming %s and %q", r.Overall, r.Reasons, key, want)
	}
}

// A hand edit names a SIGN_VERIFY key in AWSCURRENT, and Meta serves its
// public key, so clients encrypt to it. On AWS kms:Decrypt refuses a
// SIGN_VERIFY key (InvalidKeyUsageException, the proxy's correction of
// local-kms, which would decrypt): nothing decrypts, 421s only; status
// names the key's usage; a rotation recovers.
func TestKMSCustodyWrongKeyUsageInADocument(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	arn, der := e.strangerKey(t, kmstypes.KeySpecRsa2048, kmstypes.KeyUsageTypeSignVerify)
	key, err := secretdoc.NewKMSKey(arn, der, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.putCurrent(t, key)
	for _, phone := range e.PhoneNumberIDs() {
		if err := e.Graph.SetKey(phone, key.PublicKeyPEM, "VALID"); err != nil {
			t.Fatal(err)
		}
	}
	p := disabledPhase(t, d, "a SIGN_VERIFY key in AWSCURRENT")
	if n := p.KMS.Count(kmsproxy.Call{Op: "Decrypt", Key: arn, Result: kmsproxy.InvalidKeyUsageException}); n == 0 {
		t.Errorf("no InvalidKeyUsageException for the SIGN_VERIFY key: %v", p.KMS.List())
	}
	e.statusFlags(t, arn, "SIGN_VERIFY")
	recovers(t, e, d)
}

// A hand edit names an RSA_3072 key in AWSCURRENT beside the public key
// Meta holds: its kms:Decrypt fails (InvalidCiphertextException), the
// ring passes over it to AWSPREVIOUS, which holds that key, and no user
// sees a failure; status names the key's spec.
func TestKMSCustodyWrongKeySpecInADocument(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	arn, _ := e.strangerKey(t, kmstypes.KeySpecRsa3072, kmstypes.KeyUsageTypeEncryptDecrypt)
	cur := e.doc(t, "AWSCURRENT").Key
	key, err := secretdoc.NewKMSKey(arn, cur.PublicDER(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.putCurrent(t, key)
	p, err := d.Rounds(context.Background(), "an RSA_3072 key in AWSCURRENT", 3)
	if err != nil {
		t.Fatal(err)
	}
	report(t, p)
	if err := p.Check(); err != nil {
		t.Error(err)
	}
	if p.Endpoint.ByLabel["AWSPREVIOUS"] == 0 || p.KMS.Count(kmsproxy.Call{Op: "Decrypt", Key: arn, Result: "InvalidCiphertextException"}) == 0 {
		t.Errorf("by label %v, KMS calls %v: want the RSA_3072 key tried and AWSPREVIOUS serving", p.Endpoint.ByLabel, p.KMS.List())
	}
	e.statusFlags(t, arn, "RSA_3072")
	recovers(t, e, d)
}

// A hand edit names a key of another account beside the public key Meta
// holds: the endpoint never asks KMS to decrypt with it, or is denied (the
// proxy's correction of local-kms's NotFoundException); AWSPREVIOUS
// serves; status names both accounts.
func TestKMSCustodyKeyOfAnotherAccountInADocument(t *testing.T) {
	e, d, _ := withTraffic(t, brokenKeySetup())
	cur := e.doc(t, "AWSCURRENT").Key
	const foreign = "arn:aws:kms:us-east-1:444455556666:key/5a3f0c2e-8b1d-4e7a-9c6f-2d4b8e1a7c3f"
	key, err := secretdoc.NewKMSKey(foreign, cur.PublicDER(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.putCurrent(t, key)
	p, err := d.Rounds(context.Background(), "another account's key in AWSCURRENT", 3)
	if err != nil {
		t.Fatal(err)
	}
	report(t, p)
	if err := p.Check(); err != nil {
		t.Error(err)
	}
	for c, n := range p.KMS {
		if c.Key == foreign && c.Result == kmsproxy.ResultOK {
			t.Errorf("%d kms:Decrypt with another account's key succeeded", n)
		}
	}
	e.statusFlags(t, foreign, "444455556666")
	recovers(t, e, d)
}

// The alias a repeated createSecret looks for names a key that is not the
// version's (a SIGN_VERIFY key, aliased by hand): createSecret refuses it
// with an error naming the key, and creates none.
func TestKMSCustodyVersionAliasNamingAWrongKeyFailsCreateSecret(t *testing.T) {
	e := start(t, kmsSetup())
	e.rotateOK(t)
	arn, _ := e.strangerKey(t, kmstypes.KeySpecRsa2048, kmstypes.KeyUsageTypeSignVerify)
	const token = "0b5e3c1a-7d2f-4e8b-9a61-3c4d5e6f7a8b"
	ctx := context.Background()
	if _, err := e.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(custody.AliasName(e.arn, token)), TargetKeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	before := e.KMSProxy.Calls()
	if _, err := e.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String(e.arn), ClientRequestToken: aws.String(token), RotationLambdaARN: aws.String(stack.FunctionARN),
		RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)")}, RotateImmediately: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	ev, err := e.WaitRotation(ctx, e.arn, token)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != secretsemu.RotationFailed || !strings.Contains(ev.Error, "createSecret") || !strings.Contains(ev.Error, arn) {
		t.Fatalf("rotation ended with %s %q; want createSecret to fail naming %s", ev.Type, ev.Error, arn)
	}
	t.Logf("createSecret: %s", ev.Error)
	if n := e.KMSProxy.Calls().Sub(before).Count(kmsproxy.Call{Op: "CreateKey"}); n != 0 {
		t.Errorf("createSecret created %d keys", n)
	}
	e.checkInvariants(t, token)
}
