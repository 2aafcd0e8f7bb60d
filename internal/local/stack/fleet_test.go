package stack_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/operator"
)

// The fleet of issue 13 on the local stack: tens of tenants, each a WABA
// with its own numbers and its own token, enrolled through the function,
// rotated, judged by the fleet status and unenrolled.

// fleetSize is the tenants of most fleet tests.
const fleetSize = 16

func TestFleetEnrollRotateStatusUnenroll(t *testing.T) {
	// The last tenant stays out of the fleet until the dry run below.
	e := startFleetEnrolling(t, fleetSize+1, fleetSize, setup{})
	ctx := ctxFor(t, 3*time.Minute)
	schedules := map[string]bool{}
	for _, id := range e.tenantIDs()[:fleetSize] {
		desc := e.describe(t, e.arns[id])
		tags := map[string]string{}
		for _, tg := range desc.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if tags[fleet.TagFleet] != stack.DefaultFleetName || tags[fleet.TagTenant] != id {
			t.Errorf("%s is tagged %v", id, tags)
		}
		if !aws.ToBool(desc.RotationEnabled) || aws.ToString(desc.RotationLambdaARN) != stack.RIEFunctionARN || aws.ToString(desc.KmsKeyId) != e.KMSKeyARN {
			t.Errorf("%s: rotation %v with %s, KMS key %s; want on, with %s and the stack's key", id, aws.ToBool(desc.RotationEnabled),
				aws.ToString(desc.RotationLambdaARN), aws.ToString(desc.KmsKeyId), stack.RIEFunctionARN)
		}
		schedules[aws.ToString(desc.RotationRules.ScheduleExpression)] = true
		if d := e.tenantDoc(t, id, "AWSCURRENT"); d.Key != nil || !slices.Equal(d.Config.PhoneNumberIDs, mustTenant(t, e, id).Numbers) {
			t.Errorf("%s's first version: key %v, numbers %v; want the configuration alone", id, d.Key, d.Config.PhoneNumberIDs)
		}
	}
	// The schedules are spread: sixteen tenants in one slot would mean none.
	if len(schedules) < fleetSize/2 {
		t.Errorf("%d tenants share %d schedules: %v", fleetSize, len(schedules), schedules)
	}

	// Enroll again: a no-op, nothing written.
	e.Secrets.ResetCalls()
	for _, id := range e.tenantIDs()[:3] {
		r, err := e.EnrollTenant(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.Outcome != operator.OutcomeAlreadyEnrolled || r.SecretARN != e.arns[id] {
			t.Errorf("enroll %s again: ok %v, %s, %s", id, r.OK, r.Outcome, r.Message)
		}
	}
	e.assertNoWrites(t, "a repeated enroll")

	// A dry run writes nothing either.
	newcomer := e.tenantIDs()[fleetSize]
	r, err := e.EnrollTenant(ctx, newcomer, true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Outcome != operator.OutcomeDryRun || !r.DryRun || r.RotationLambdaARN != stack.RIEFunctionARN {
		t.Errorf("dry run: ok %v, %s, %s: %s", r.OK, r.Outcome, r.RotationLambdaARN, r.Message)
	}
	e.assertNoWrites(t, "a dry run")
	var nf *smtypes.ResourceNotFoundException
	if _, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(mustTenant(t, e, newcomer).SecretName)}); !errors.As(err, &nf) {
		t.Errorf("after the dry run, DescribeSecret of %s: %v, want ResourceNotFoundException", newcomer, err)
	}

	// Before the first rotation every tenant is enrolled without a key.
	last := e.lastStatus(t)
	if last.Run.Tenants != fleetSize+1 || last.Run.NoKeyYet != fleetSize || last.Run.Healthy != 1 || last.Run.Unhealthy != 0 {
		t.Errorf("status before the first rotation: %+v", last.Run)
	}

	// Rotate them all at once: each number costs one upload and one read.
	e.Graph.ResetCounters()
	for id, ev := range e.rotateTenants(t, e.tenantIDs()[:fleetSize]) {
		if ev.Type != secretsemu.RotationSucceeded {
			t.Errorf("%s: %s: %s", id, ev.Type, ev.Error)
			continue
		}
		e.assertTenantHolds(t, id)
	}
	calls := e.Graph.Calls()
	for _, tn := range e.Tenants()[:fleetSize] {
		for _, n := range tn.Numbers {
			if c := calls.Of(n); c.Upload != 1 || c.Get != 1 || c.List != 0 || c.Other != 0 {
				t.Errorf("%s's number %s: %+v, want one upload and one read", tn.ID, n, c)
			}
		}
	}
	if calls.Total() != 4*fleetSize {
		t.Errorf("%d Graph calls for %d tenants of 2 numbers, want %d", calls.Total(), fleetSize, 4*fleetSize)
	}
	last = e.lastStatus(t)
	if !last.OK || last.Run.Tenants != fleetSize+1 || last.Run.Healthy != fleetSize+1 || last.Run.Numbers != 2*fleetSize+3 || len(last.Unhealthy) != 0 {
		t.Errorf("status after the rotations: ok %v, %+v, unhealthy %v", last.OK, last.Run, last.Unhealthy)
	}

	// Unenroll one: rotation off, every version kept, Meta keeps the key.
	gone := e.tenantIDs()[2]
	before := e.describe(t, e.arns[gone]).VersionIdsToStages
	held := e.assertTenantHolds(t, gone)
	u, err := e.UnenrollTenant(ctx, gone, false)
	if err != nil {
		t.Fatal(err)
	}
	if !u.OK || u.Outcome != operator.OutcomeUnenrolled || u.Fingerprint != held {
		t.Errorf("unenroll: ok %v, %s, fingerprint %.16s (want %.16s): %s", u.OK, u.Outcome, u.Fingerprint, held, u.Message)
	}
	desc := e.describe(t, e.arns[gone])
	if aws.ToBool(desc.RotationEnabled) || !equalStages(desc.VersionIdsToStages, before) {
		t.Errorf("after unenroll: rotation %v, versions %v (before %v)", aws.ToBool(desc.RotationEnabled), desc.VersionIdsToStages, before)
	}
	if !hasTag(desc.Tags, fleet.TagEnrolled, "false") {
		t.Errorf("after unenroll, tags %v", desc.Tags)
	}
	if e.assertTenantHolds(t, gone) != held {
		t.Error("unenroll changed the key Meta holds")
	}
	if u, err := e.UnenrollTenant(ctx, gone, false); err != nil || !u.OK || u.Outcome != operator.OutcomeAlreadyUnenrolled {
		t.Errorf("unenroll again: %+v, %v", u, err)
	}
	last = e.lastStatus(t)
	if last.Run.NotEnrolled != 1 || last.Run.Tenants != fleetSize || last.Run.Healthy != fleetSize {
		t.Errorf("status after unenroll: %+v", last.Run)
	}
}

// startFleetEnrolling is startFleet with only the first enroll tenants enrolled.
func startFleetEnrolling(t *testing.T, n, enroll int, s setup) *fleetEnv {
	t.Helper()
	s.fleet = &stack.FleetOptions{}
	return startFleetN(t, n, enroll, s)
}

func mustTenant(t testing.TB, e *fleetEnv, id string) stack.Tenant {
	t.Helper()
	tn, ok := e.Tenant(id)
	if !ok {
		t.Fatalf("no tenant %s", id)
	}
	return tn
}

func (e *fleetEnv) describe(t testing.TB, arn string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	out, err := e.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNoWrites checks that the function wrote nothing to Secrets
// Manager since the counters were reset.
func (e *fleetEnv) assertNoWrites(t *testing.T, what string) {
	t.Helper()
	calls := e.Secrets.Calls()
	for _, op := range []string{"CreateSecret", "PutSecretValue", "UpdateSecretVersionStage", "RotateSecret", "CancelRotateSecret", "TagResource", "UntagResource", "UpdateSecret"} {
		if n := calls.Count(secretsemu.Call{Caller: stack.RotatorAccessKeyID, Op: op}); n != 0 {
			t.Errorf("%s made %d %s", what, n, op)
		}
	}
	if calls.Count(secretsemu.Call{Caller: stack.RotatorAccessKeyID}) == 0 {
		t.Errorf("%s made no Secrets Manager call at all: the counters do not see the function", what)
	}
}

func equalStages(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func hasTag(tags []smtypes.Tag, k, v string) bool {
	for _, tg := range tags {
		if aws.ToString(tg.Key) == k && aws.ToString(tg.Value) == v {
			return true
		}
	}
	return false
}

// lastStatus runs a fleet status to its end and returns its last report.
func (e *fleetEnv) lastStatus(t *testing.T) operator.FleetStatusReport {
	t.Helper()
	runs := e.statusRun(t)
	last := runs[len(runs)-1]
	if !last.Complete {
		t.Fatalf("the fleet status run ended incomplete after %d invocations: %s", len(runs), last.Message)
	}
	return last
}

// A status that does not fit in one invocation continues in another,
// through the stack's Lambda API: the function's timeout is short, every
// Graph read slow, and both the fleet status and each tenant's reads go
// one at a time, so the tenants take longer than one invocation has.
func TestFleetStatusContinuesInAnotherInvocation(t *testing.T) {
	const n = 13
	e := startFleet(t, n, setup{
		timeout: 26 * time.Second,
		fnEnv:   map[string]string{"GRAPH_MAX_ATTEMPTS": "1", "GRAPH_REQUEST_TIMEOUT": "1s", "GRAPH_CONCURRENCY": "1"},
		fleet:   &stack.FleetOptions{StatusConcurrency: 1},
	})
	for id, ev := range e.rotateTenants(t, e.tenantIDs()) {
		if ev.Type != secretsemu.RotationSucceeded {
			t.Fatalf("%s: %s: %s", id, ev.Type, ev.Error)
		}
	}
	// 14 secrets (the stack's and 13 tenants') of 2 or 3 numbers at 700 ms
	// a read: over 18 s, where one invocation reads for about 12 s (its
	// 26 s, less a tenant's 8.7 s and 5 s for the report).
	if err := e.Graph.SetLatency(700 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	runs := e.statusRun(t)
	if err := e.Graph.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	if len(runs) < 2 {
		t.Fatalf("the status ran in %d invocation(s), want a continuation: %s", len(runs), runs[0].Message)
	}
	read := 0
	for i, r := range runs {
		read += r.ReadNow.Tenants
		final := i == len(runs)-1
		if r.Invocation != i+1 || r.Complete != final || r.Continued == final || !r.RunStarted.Equal(runs[0].RunStarted) {
			t.Errorf("invocation %d of %d: number %d, complete %v, continued %v, run %s: %s", i+1, len(runs), r.Invocation, r.Complete, r.Continued, r.RunStarted, r.Message)
		}
		if r.ReadNow.Tenants == 0 {
			t.Errorf("invocation %d read no tenant", i+1)
		}
	}
	last := runs[len(runs)-1]
	if read != n+1 || last.Run.Tenants != n+1 || last.Run.Healthy != n+1 || !last.OK {
		t.Errorf("the run read %d secrets (totals %+v), want %d, all healthy", read, last.Run, n+1)
	}
	all, err := e.AsyncInvocations(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range all {
		if inv.Function != stack.RIEFunctionARN || !strings.Contains(string(inv.Payload), `"fleet_cursor"`) {
			t.Errorf("continuation invoked %s with %s, want %s with a fleet_cursor", inv.Function, inv.Payload, stack.RIEFunctionARN)
		}
	}
}

// One tenant's business revokes its token while every tenant rotates:
// that tenant's rotation fails at its first Graph call, leaving Meta with
// its key; the others rotate. With a new token its rotation completes.
func TestFleetOneTenantsTokenRevokedWhileEveryOtherRotates(t *testing.T) {
	e := startFleet(t, fleetSize, setup{})
	ids := e.tenantIDs()
	e.rotateTenants(t, ids)
	victim := ids[5]
	held := e.assertTenantHolds(t, victim)
	if err := e.RevokeTenantToken(victim); err != nil {
		t.Fatal(err)
	}
	evs := e.rotateTenants(t, ids)
	for id, ev := range evs {
		switch {
		case id == victim:
			if ev.Type != secretsemu.RotationFailed || !strings.Contains(ev.Error, "190") {
				t.Errorf("%s with its token revoked: %s: %s; want a failure naming Graph's 190", id, ev.Type, ev.Error)
			}
		case ev.Type != secretsemu.RotationSucceeded:
			t.Errorf("%s: %s: %s", id, ev.Type, ev.Error)
		default:
			e.assertTenantHolds(t, id)
		}
	}
	if got := e.assertTenantHolds(t, victim); got != held {
		t.Errorf("%s's numbers hold %.16s, want the key from before (%.16s)", victim, got, held)
	}
	e.checkTenantInvariants(t, mustTenant(t, e, victim), e.incompleteRotationOf(e.arns[victim]))
	last := e.lastStatus(t)
	if last.Run.Unhealthy != 1 || len(last.Unhealthy) != 1 || last.Unhealthy[0].Tenant != victim {
		t.Errorf("status: %+v, unhealthy %+v; want %s alone", last.Run, last.Unhealthy, victim)
	}

	// A new token, then the operator's rotate resumes the rotation.
	ctx := ctxFor(t, 2*time.Minute)
	if err := e.ReissueTenantToken(ctx, victim); err != nil {
		t.Fatal(err)
	}
	e.resumeOK(t, victim)
	if got := e.assertTenantHolds(t, victim); got == held {
		t.Errorf("%s still holds the key from before", victim)
	}
	if last := e.lastStatus(t); !last.OK || last.Run.Healthy != fleetSize+1 {
		t.Errorf("status after the new token: %+v", last.Run)
	}
}

// resumeOK runs {"command":"rotate","tenant":...}, which resumes the
// tenant's incomplete rotation, and waits for it to succeed.
func (e *fleetEnv) resumeOK(t *testing.T, tenant string) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	arn := e.arns[tenant]
	// The resumed rotation keeps its token: only events after this one
	// are its run's.
	earlier := len(e.Secrets.Events(arn))
	var r operator.RotateReport
	if err := e.Command(ctx, map[string]any{"command": "rotate", "tenant": tenant}, &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Outcome != "resumed" || r.VersionID == "" {
		t.Fatalf("rotate %s: ok %v, %s: %s", tenant, r.OK, r.Outcome, r.Message)
	}
	seen := 0
	ev, err := e.Secrets.WaitEvent(ctx, func(ev secretsemu.Event) bool {
		if ev.SecretARN != arn {
			return false
		}
		seen++
		return seen > earlier && ev.Token == r.VersionID && (ev.Type == secretsemu.RotationSucceeded || ev.Type == secretsemu.RotationFailed && ev.Final)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("the %s rotation of %s ended with %s: %s", r.Outcome, tenant, ev.Type, ev.Error)
	}
}

// One tenant's rotation stays incomplete (Meta refuses every upload to one
// of its numbers) while every other tenant rotates: the others are healthy,
// and the fleet status reports exactly that one as rotation_incomplete.
func TestFleetOneTenantStuckInAnIncompleteRotation(t *testing.T) {
	e := startFleet(t, fleetSize, setup{})
	ids := e.tenantIDs()
	e.rotateTenants(t, ids)
	stuck := ids[9]
	held := e.assertTenantHolds(t, stuck)
	bad := mustTenant(t, e, stuck).Numbers[1]
	fault, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: bad, Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever})
	if err != nil {
		t.Fatal(err)
	}
	for id, ev := range e.rotateTenants(t, ids) {
		switch {
		case id == stuck:
			if ev.Type != secretsemu.RotationFailed || !strings.Contains(ev.Error, bad) {
				t.Errorf("%s: %s: %s; want a failure naming %s", id, ev.Type, ev.Error, bad)
			}
		case ev.Type != secretsemu.RotationSucceeded:
			t.Errorf("%s: %s: %s", id, ev.Type, ev.Error)
		default:
			e.assertTenantHolds(t, id)
		}
	}
	if e.incompleteRotationOf(e.arns[stuck]) == "" {
		t.Fatalf("%s's rotation is not incomplete", stuck)
	}
	if got := e.assertTenantHolds(t, stuck); got != held {
		t.Errorf("%s's numbers hold %.16s after the rollback, want %.16s", stuck, got, held)
	}
	last := e.lastStatus(t)
	if last.Run.RotationIncomplete != 1 || last.Run.Unhealthy != 1 || last.Run.Healthy != fleetSize ||
		len(last.Unhealthy) != 1 || last.Unhealthy[0].Tenant != stuck || last.Unhealthy[0].Verdict != operator.TenantRotationIncomplete {
		t.Errorf("status: %+v, unhealthy %+v; want %s alone, rotation_incomplete", last.Run, last.Unhealthy, stuck)
	}
	// Unenroll is refused while the rotation is incomplete.
	u, err := e.UnenrollTenant(ctxFor(t, time.Minute), stuck, false)
	if err != nil {
		t.Fatal(err)
	}
	if u.OK || !aws.ToBool(e.describe(t, e.arns[stuck]).RotationEnabled) {
		t.Errorf("unenroll during the incomplete rotation: ok %v, %s: %s", u.OK, u.Outcome, u.Message)
	}
	// Meta takes uploads again: the operator's rotate completes it.
	if !e.Graph.RemoveFault(fault) {
		t.Fatal("the fault was gone")
	}
	e.resumeOK(t, stuck)
	if got := e.assertTenantHolds(t, stuck); got == held {
		t.Errorf("%s still holds the key from before", stuck)
	}
	if last := e.lastStatus(t); !last.OK || last.Run.Healthy != fleetSize+1 {
		t.Errorf("status after the resume: %+v", last.Run)
	}
}
