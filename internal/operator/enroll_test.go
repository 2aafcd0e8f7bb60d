package operator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func (f *fleetHarness) enroll(t *testing.T, tenant, config string, dryRun bool) (*EnrollReport, error) {
	t.Helper()
	out, err := f.run(t, Command{Name: CommandEnroll, Tenant: tenant, Config: config, DryRun: dryRun})
	if err != nil {
		return nil, err
	}
	return out.(*EnrollReport), nil
}

func (f *fleetHarness) unenroll(t *testing.T, tenant string, dryRun bool) (*UnenrollReport, error) {
	t.Helper()
	out, err := f.run(t, Command{Name: CommandUnenroll, Tenant: tenant, DryRun: dryRun})
	if err != nil {
		return nil, err
	}
	return out.(*UnenrollReport), nil
}

const acmeConfig = `{"phone_number_ids":["106540352290001","106540352290002"]}`

func TestEnrollCreatesTheTenantAndTurnsItsRotationOn(t *testing.T) {
	f := newFleetHarness(t, nil)
	r, err := f.enroll(t, "acme", acmeConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	sched := fleet.ScheduleFor(fleetName, "acme", fleet.DefaultWindow)
	if !r.OK || r.Outcome != OutcomeEnrolled || r.SecretName != "flowkey/tenants/acme" || r.Schedule != sched.Expression() || r.Window != "2h" ||
		r.RotationLambdaARN != functionARN || !slices.Equal(r.Numbers, []string{"106540352290001", "106540352290002"}) || !r.NextWindow.Equal(sched.Next(fleetBase)) {
		t.Fatalf("report %+v", r)
	}
	s := f.sm.Secret("flowkey/tenants/acme")
	if s == nil {
		t.Fatal("no secret created")
	}
	if want := map[string]string{fleet.TagFleet: fleetName, fleet.TagTenant: "acme", fleet.TagEnrolled: "true"}; !equalMaps(s.Tags, want) {
		t.Errorf("tags %v, want %v", s.Tags, want)
	}
	if s.KmsKeyID != "arn:aws:kms:us-east-1:111122223333:key/fleet" || s.Holder(rotation.StageCurrent) != r.VersionID || r.VersionID != fleet.EnrollToken(fleetName, "acme", acmeConfig) {
		t.Errorf("key %q, AWSCURRENT %q, version %q", s.KmsKeyID, s.Holder(rotation.StageCurrent), r.VersionID)
	}
	doc, err := secretdoc.Parse([]byte(*s.Values[r.VersionID]))
	if err != nil || doc.Key != nil || !slices.Equal(doc.Config.PhoneNumberIDs, []string{"106540352290001", "106540352290002"}) {
		t.Errorf("first version %+v, %v", doc, err)
	}
	in := f.sm.RotateInputs()
	if len(in) != 1 || aws.ToString(in[0].RotationLambdaARN) != functionARN || aws.ToBool(in[0].RotateImmediately) || in[0].RotateImmediately == nil ||
		aws.ToString(in[0].RotationRules.ScheduleExpression) != sched.Expression() || aws.ToString(in[0].RotationRules.Duration) != "2h" {
		t.Errorf("RotateSecret input %+v", in)
	}
	if !strings.Contains(r.Message, `{"command":"rotate","tenant":"acme"}`) {
		t.Errorf("the message does not say how to get the first key: %s", r.Message)
	}

	// A retry writes nothing.
	writes := len(f.sm.Writes())
	r, err = f.enroll(t, "acme", acmeConfig, false)
	if err != nil || !r.OK || r.Outcome != OutcomeAlreadyEnrolled || len(f.sm.Writes()) != writes {
		t.Errorf("retry: %+v, %v, writes %v", r, err, f.sm.Writes()[writes:])
	}
	// Another configuration is set-config's.
	r, err = f.enroll(t, "acme", `{"phone_number_ids":["106540352290003"]}`, false)
	if err != nil || r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, `"command":"set-config","tenant":"acme"`) || len(f.sm.Writes()) != writes {
		t.Errorf("another configuration: %+v, %v", r, err)
	}
}

func TestEnrollDryRunWritesNothing(t *testing.T) {
	f := newFleetHarness(t, nil)
	r, err := f.enroll(t, "acme", acmeConfig, true)
	if err != nil || !r.OK || r.Outcome != OutcomeDryRun || !r.DryRun || !strings.Contains(r.Message, "would create flowkey/tenants/acme") {
		t.Fatalf("%+v, %v", r, err)
	}
	if w := f.sm.Writes(); len(w) != 0 || f.sm.Secret("flowkey/tenants/acme") != nil {
		t.Errorf("writes %v", w)
	}
}

func TestEnrollRefusals(t *testing.T) {
	tests := []struct {
		name, tenant, config string
		setup                func(f *fleetHarness)
		tweak                func(*Options)
		wantErr              string // the error contains it; "" for a refusal
		wantRefusal          string
	}{
		{name: "token outside the fleet's prefix", tenant: "acme", config: `{"phone_number_ids":["1"],"access_token_secret_id":"other/token"}`,
			wantErr: "config.access_token_secret_id names a secret outside the fleet's token prefix flowkey/tokens/"},
		{name: "token under the prefix is fine until it cannot be read", tenant: "acme", config: `{"phone_number_ids":["1"],"access_token_secret_id":"flowkey/tokens/acme"}`,
			wantErr: "flowkey/tokens/acme"},
		{name: "an app secret without an app secret prefix", tenant: "acme", config: `{"phone_number_ids":["1"],"app_secret_id":"flowkey/apps/acme"}`,
			wantErr: "config.app_secret_id is set, and this fleet has one app secret for every tenant"},
		{name: "an app secret outside the prefix", tenant: "acme", config: `{"phone_number_ids":["1"],"app_secret_id":"other/acme"}`,
			tweak: func(o *Options) { o.Fleet.AppSecretPrefix = "flowkey/app-secrets/" }, wantErr: "outside the fleet's app secret prefix flowkey/app-secrets/"},
		{name: "a WABA with no numbers", tenant: "acme", config: `{"waba_id":"102290129340398"}`, wantRefusal: "has no phone numbers left"},
		{name: "a secret of another fleet", tenant: "acme", config: acmeConfig,
			setup: func(f *fleetHarness) {
				f.sm.Add("flowkey/tenants/acme").Tags = map[string]string{fleet.TagFleet: "other"}
			}, wantRefusal: `is tagged flowkey:fleet="other", so it is a tenant of another fleet`},
		{name: "an untagged secret", tenant: "acme", config: acmeConfig,
			setup: func(f *fleetHarness) { f.sm.Add("flowkey/tenants/acme") }, wantRefusal: "has no flowkey:fleet tag"},
		{name: "a secret scheduled for deletion", tenant: "acme", config: acmeConfig,
			setup: func(f *fleetHarness) {
				f.sm.Add("flowkey/tenants/acme").DeletedDate = aws.Time(fleetBase)
			}, wantErr: "is scheduled for deletion (since 2026-11-25T10:00:00Z); fix: restore it with `aws secretsmanager restore-secret"},
		{name: "no function ARN", tenant: "acme", config: acmeConfig, tweak: func(o *Options) { o.FunctionARN = "" }, wantErr: "this function's ARN is unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleetHarness(t, tc.tweak)
			if tc.setup != nil {
				tc.setup(f)
			}
			r, err := f.enroll(t, tc.tenant, tc.config, false)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "fix:") {
					t.Fatalf("got %+v, %v; want an error with %q", r, err, tc.wantErr)
				}
			case err != nil || r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, tc.wantRefusal):
				t.Fatalf("got %+v, %v; want a refusal with %q", r, err, tc.wantRefusal)
			}
			for _, w := range f.sm.Writes() {
				if w == secretsfake.OpCreateSecret || w == secretsfake.OpRotateSecret {
					t.Errorf("wrote %s", w)
				}
			}
		})
	}
}

// The rotation function is this function, from the invocation's context,
// without the alias it was invoked through.
func TestEnrollNamesTheInvokedFunctionWithoutItsQualifier(t *testing.T) {
	f := newFleetHarness(t, func(o *Options) { o.FunctionARN = "" })
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{InvokedFunctionArn: "arn:aws:lambda:eu-west-1:444455556666:function:fleet-rotator:live"})
	out, err := f.op.Run(ctx, Command{Name: CommandEnroll, Tenant: "acme", Config: acmeConfig})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(*EnrollReport); r.RotationLambdaARN != "arn:aws:lambda:eu-west-1:444455556666:function:fleet-rotator" {
		t.Errorf("rotation function %q", r.RotationLambdaARN)
	}
}

func TestUnenrollTurnsRotationOffAndKeepsEveryVersion(t *testing.T) {
	f := newFleetHarness(t, nil)
	s, _ := f.tenant(t, "acme")
	f.sm.Put(s, "v-old", docOf(t, map[string]any{"phone_number_ids": []string{"1"}}, keyPrev), rotation.StagePrevious)
	before := f.sm.Snapshot(s.ARN)
	r, err := f.unenroll(t, "acme", true)
	if err != nil || !r.OK || r.Outcome != OutcomeDryRun || len(f.sm.Writes()) != 0 {
		t.Fatalf("dry run: %+v, %v, writes %v", r, err, f.sm.Writes())
	}
	r, err = f.unenroll(t, "acme", false)
	if err != nil || !r.OK || r.Outcome != OutcomeUnenrolled || r.Fingerprint != keyCur.Fingerprint().String() {
		t.Fatalf("%+v, %v", r, err)
	}
	if aws.ToBool(s.RotationEnabled) || s.Tags[fleet.TagEnrolled] != "false" || f.sm.Snapshot(s.ARN) != before {
		t.Errorf("rotation %v, tags %v, versions\n%s\nwant\n%s", aws.ToBool(s.RotationEnabled), s.Tags, f.sm.Snapshot(s.ARN), before)
	}
	if !strings.Contains(r.Message, "Meta keeps holding the AWSCURRENT key") || !strings.Contains(r.Message, "the endpoint keeps decrypting") {
		t.Errorf("the message does not say what happens to Meta's key: %s", r.Message)
	}
	writes := len(f.sm.Writes())
	if r, err = f.unenroll(t, "acme", false); err != nil || !r.OK || r.Outcome != OutcomeAlreadyUnenrolled || len(f.sm.Writes()) != writes {
		t.Errorf("again: %+v, %v", r, err)
	}
	// Enrolling again with the same configuration resumes rotation.
	s.RotationLambdaARN = ""
	er, err := f.enroll(t, "acme", `{"phone_number_ids":["`+strings.Join(s2nums(t, s), `","`)+`"]}`, false)
	if err != nil || !er.OK || er.Outcome != OutcomeEnrolled || !aws.ToBool(s.RotationEnabled) || s.Tags[fleet.TagEnrolled] != "true" {
		t.Errorf("re-enroll: %+v, %v, tags %v", er, err, s.Tags)
	}
}

func s2nums(t *testing.T, s *secretsfake.Secret) []string {
	t.Helper()
	d, err := secretdoc.Parse([]byte(*s.Values[s.Holder(rotation.StageCurrent)]))
	if err != nil {
		t.Fatal(err)
	}
	return d.Config.PhoneNumberIDs
}

func TestUnenrollRefusesDuringAnIncompleteRotation(t *testing.T) {
	f := newFleetHarness(t, nil)
	s, _ := f.tenant(t, "acme")
	f.sm.Put(s, "v-pend", docOf(t, map[string]any{"phone_number_ids": []string{"1"}}, keyPend), rotation.StagePending)
	r, err := f.unenroll(t, "acme", false)
	if err != nil || r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, `{"command":"rotate","tenant":"acme"}`) {
		t.Fatalf("%+v, %v", r, err)
	}
	if w := f.sm.Writes(); len(w) != 0 || !aws.ToBool(s.RotationEnabled) {
		t.Errorf("writes %v", w)
	}
	// A rotation that starts between the read and the cancel is reported.
	f2 := newFleetHarness(t, nil)
	s2, _ := f2.tenant(t, "acme")
	f2.sm.OnDescribe = func(n int, sec *secretsfake.Secret) {
		if n == 2 && sec == s2 {
			sec.Values["v-new"] = nil
			sec.Stages["v-new"] = []string{rotation.StagePending}
		}
	}
	r, err = f2.unenroll(t, "acme", false)
	if err != nil || r.OK || !strings.Contains(r.Message, "a rotation started just before") || !strings.Contains(r.Message, "Never remove AWSPENDING") {
		t.Errorf("race: %+v, %v", r, err)
	}
}

func TestTenantCommandsNameTheTenantsSecret(t *testing.T) {
	f := newFleetHarness(t, nil)
	s, _ := f.tenant(t, "acme")
	out, err := f.run(t, Command{Name: CommandStatus, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(*StatusReport); r.SecretARN != s.ARN || r.Overall != Healthy {
		t.Errorf("status of %s: %s", r.SecretARN, r.Overall)
	}
	_, err = f.run(t, Command{Name: CommandRotate, Tenant: "ghost"})
	var ie *rotation.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `tenant "ghost" has no secret flowkey/tenants/ghost; fix: enroll it`) {
		t.Errorf("unknown tenant: %v", err)
	}
	f.sm.Add("flowkey/tenants/other").Tags = map[string]string{fleet.TagFleet: "another"}
	if _, err = f.run(t, Command{Name: CommandStatus, Tenant: "other"}); err == nil || !strings.Contains(err.Error(), "a tenant of another fleet") {
		t.Errorf("another fleet's: %v", err)
	}
	_, err = f.run(t, Command{Name: CommandSetConfig, Tenant: "acme", Config: `{"phone_number_ids":["1"],"access_token_secret_id":"elsewhere/token"}`, DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "outside the fleet's token prefix") {
		t.Errorf("set-config of a tenant with a token elsewhere: %v", err)
	}
	if w := f.sm.Writes(); len(w) != 0 {
		t.Errorf("writes %v", w)
	}
}

// Without the fleet a command that names a tenant cannot run, and nothing
// is called.
func TestTenantCommandsNeedTheFleet(t *testing.T) {
	h := newHarness(t, nil)
	for _, cmd := range []Command{{Name: CommandStatus, Tenant: "acme"}, {Name: CommandEnroll, Tenant: "acme", Config: acmeConfig}, {Name: CommandStatus, NextToken: "x"}} {
		_, err := h.op.Run(context.Background(), cmd)
		if err == nil || !strings.Contains(err.Error(), "needs the fleet, and this function's fleet is off") {
			t.Errorf("%+v: %v", cmd, err)
		}
	}
	if n := h.sm.TotalCalls(); n != 0 {
		t.Errorf("%d Secrets Manager calls", n)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
