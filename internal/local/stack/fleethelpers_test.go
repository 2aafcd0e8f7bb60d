package stack_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// fleetEnv is a stack with a fleet: the single secret of the stack (its
// first tenant, as the design has it) rotated once, and the tenants
// enrolled.
type fleetEnv struct {
	*env
	// arns are the tenants' secrets, by tenant.
	arns map[string]string
	// stuckOnPurpose are tenants a test leaves with a rotation incomplete.
	stuckOnPurpose map[string]bool
}

// startFleet starts a stack with n tenants of two numbers each, rotates
// the stack's own secret and enrolls every tenant; every tenant's
// invariant is checked at the end of the test.
func startFleet(t *testing.T, n int, s setup) *fleetEnv {
	t.Helper()
	if s.fleet == nil {
		s.fleet = &stack.FleetOptions{}
	}
	return startFleetN(t, n, n, s)
}

// startFleetN is startFleet with only the first enroll tenants enrolled.
func startFleetN(t *testing.T, n, enroll int, s setup) *fleetEnv {
	t.Helper()
	s.fleet.Tenants = n
	e := &fleetEnv{env: start(t, s), arns: map[string]string{}, stuckOnPurpose: map[string]bool{}}
	e.rotateOK(t)
	t.Cleanup(func() {
		for _, tn := range e.Tenants() {
			if arn := e.arns[tn.ID]; arn != "" {
				e.checkTenantInvariants(t, tn, e.incompleteRotationOf(arn))
			}
		}
	})
	ctx := ctxFor(t, 2*time.Minute)
	for _, tn := range e.Tenants()[:enroll] {
		r, err := e.EnrollTenant(ctx, tn.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.Outcome != operator.OutcomeEnrolled {
			t.Fatalf("enroll %s: ok %v, %s: %s", tn.ID, r.OK, r.Outcome, r.Message)
		}
		e.arns[tn.ID] = r.SecretARN
	}
	// Enroll's configuration test (testSecret alone) runs after the
	// command returns: every one has ended before the tests start.
	for _, tn := range e.Tenants()[:enroll] {
		if ev := e.waitTestRun(t, e.arns[tn.ID]); ev.Type != secretsemu.RotationSucceeded {
			t.Fatalf("the configuration test of %s: %s: %s", tn.ID, ev.Type, ev.Error)
		}
	}
	return e
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitTestRun waits for the end of the configuration test enroll started.
func (e *fleetEnv) waitTestRun(t testing.TB, arn string) secretsemu.Event {
	t.Helper()
	ev, err := e.Secrets.WaitEvent(ctxFor(t, time.Minute), func(ev secretsemu.Event) bool {
		return ev.SecretARN == arn && (ev.Type == secretsemu.RotationSucceeded || ev.Type == secretsemu.RotationFailed && ev.Final ||
			ev.Type == secretsemu.RotationAbandoned || ev.Type == secretsemu.RotationCancelled)
	})
	if err != nil {
		t.Fatalf("the configuration test of %s: %v", arn, err)
	}
	return ev
}

// rotateTenants starts a rotation of every tenant in ids at once, as their
// schedules would if they met, and returns each one's last event.
func (e *fleetEnv) rotateTenants(t *testing.T, ids []string) map[string]secretsemu.Event {
	t.Helper()
	ctx := ctxFor(t, 4*time.Minute)
	tokens := map[string]string{}
	for _, id := range ids {
		arn, token, err := e.RotateTenant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if arn != e.arns[id] {
			t.Fatalf("RotateSecret of %s answered ARN %s, enroll %s", id, arn, e.arns[id])
		}
		tokens[id] = token
	}
	var mu sync.Mutex
	out := map[string]secretsemu.Event{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			ev, err := e.WaitRotation(ctx, e.arns[id], tokens[id])
			if err != nil {
				t.Errorf("waiting for the rotation of %s: %v", id, err)
				return
			}
			mu.Lock()
			out[id] = ev
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func (e *fleetEnv) tenantIDs() []string {
	var ids []string
	for _, tn := range e.Tenants() {
		ids = append(ids, tn.ID)
	}
	return ids
}

// tenantDoc reads a stage of a tenant's secret.
func (e *fleetEnv) tenantDoc(t testing.TB, tenant, stage string) *secretdoc.Document {
	t.Helper()
	out, err := e.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arns[tenant]), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("read %s of %s: %v", stage, tenant, err)
	}
	d, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		t.Fatalf("parse %s of %s: %v", stage, tenant, err)
	}
	return d
}

// checkTenantInvariants is checkInvariants for one tenant: one AWSCURRENT,
// AWSPENDING only on the rotation in progress, and every key Meta holds
// for its numbers in AWSCURRENT or AWSPENDING of its own secret.
func (e *fleetEnv) checkTenantInvariants(t testing.TB, tn stack.Tenant, inProgress string) {
	t.Helper()
	e.checkSecretInvariant(t, e.arns[tn.ID], "tenant "+tn.ID, inProgress, tn.Numbers)
}

// assertTenantHolds checks that every number of the tenant holds the key
// of its secret's AWSCURRENT.
func (e *fleetEnv) assertTenantHolds(t testing.TB, tenant string) string {
	t.Helper()
	tn, _ := e.Tenant(tenant)
	cur := e.tenantDoc(t, tenant, "AWSCURRENT")
	if cur.Key == nil {
		t.Fatalf("%s has no key in AWSCURRENT", tenant)
	}
	keys := e.Graph.Keys()
	for _, phone := range tn.Numbers {
		if der := keys[phone]; len(der) == 0 || keypair.FingerprintOf(der).String() != cur.Key.FingerprintSHA256 {
			t.Errorf("%s's number %s does not hold its AWSCURRENT key", tenant, phone)
		}
	}
	return cur.Key.FingerprintSHA256
}

// statusRun is every report of one fleet status run: the first
// invocation's and its continuations', in order.
func (e *fleetEnv) statusRun(t testing.TB) []operator.FleetStatusReport {
	t.Helper()
	ctx := ctxFor(t, 3*time.Minute)
	before, err := e.AsyncInvocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.FleetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runs := []operator.FleetStatusReport{*first}
	all, err := e.AsyncInvocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range all[len(before):] {
		if inv.Err != nil {
			t.Fatalf("a continuation failed: %v", inv.Err)
		}
		var r operator.FleetStatusReport
		if err := json.Unmarshal(inv.Result, &r); err != nil {
			t.Fatalf("a continuation answered %s: %v", inv.Result, err)
		}
		runs = append(runs, r)
	}
	return runs
}
