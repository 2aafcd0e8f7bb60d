package stack_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/traffic"
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

// rotationFailsWith is a rotation that fails in step mentioning want.
func (e *env) rotationFailsWith(t *testing.T, step string, want ...string) string {
	t.Helper()
	token, ev := e.rotate(t)
	if ev.Type != secretsemu.RotationFailed || !strings.Contains(ev.Error, step) {
		t.Fatalf("rotation %s ended with %s %q, want it to fail in %s", token, ev.Type, ev.Error, step)
	}
	for _, w := range want {
		if !strings.Contains(ev.Error, w) {
			t.Errorf("failure %q does not mention %q", ev.Error, w)
		}
	}
	return token
}
