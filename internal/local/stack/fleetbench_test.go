package stack_test

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
	"github.com/flowkey/flowkey/internal/operator"
)

// The fleet at scale on the local stack (`make bench-fleet`; `make bench`
// skips it): FLEET_BENCH_TENANTS tenants (1,000) of two numbers each,
// enrolled through the function, rotated all at once, read by one fleet
// status, and served one request each by the endpoint. Everything runs on
// this machine through one RIE per function, which serves one invocation
// at a time as one Lambda instance does: the wall times are one
// instance's, where Lambda would run invocations side by side.

// benchTenants is FLEET_BENCH_TENANTS, or 1000.
func benchTenants(b *testing.B) int {
	b.Helper()
	v := os.Getenv("FLEET_BENCH_TENANTS")
	if v == "" {
		return 1000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("FLEET_BENCH_TENANTS=%q: want a whole number of tenants, 1 or more", v)
	}
	return n
}

// benchFleet is a fleet for the benchmark: the stack's own secret rotated,
// the tenants not yet enrolled.
func benchFleet(b *testing.B, n int) *fleetEnv {
	b.Helper()
	e := &fleetEnv{env: start(b, setup{fleet: &stack.FleetOptions{Tenants: n}}), arns: map[string]string{}}
	e.rotateOK(b)
	return e
}

// enrollAll enrolls every tenant, one command after another as a script
// would, and waits for their configuration tests.
func (e *fleetEnv) enrollAll(b *testing.B) time.Duration {
	b.Helper()
	ctx := ctxFor(b, time.Hour)
	began := time.Now()
	for _, tn := range e.Tenants() {
		r, err := e.EnrollTenant(ctx, tn.ID, false)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK || r.Outcome != operator.OutcomeEnrolled {
			b.Fatalf("enroll %s: %s: %s", tn.ID, r.Outcome, r.Message)
		}
		e.arns[tn.ID] = r.SecretARN
	}
	for _, tn := range e.Tenants() {
		if ev := e.waitTestRun(b, e.arns[tn.ID]); ev.Type != secretsemu.RotationSucceeded {
			b.Fatalf("the configuration test of %s: %s: %s", tn.ID, ev.Type, ev.Error)
		}
	}
	return time.Since(began)
}

// rotateAll starts every tenant's rotation at once and waits for them all
// to succeed.
func (e *fleetEnv) rotateAll(b *testing.B) time.Duration {
	b.Helper()
	ctx := ctxFor(b, time.Hour)
	began := time.Now()
	tokens := map[string]string{}
	for _, tn := range e.Tenants() {
		_, token, err := e.RotateTenant(ctx, tn.ID)
		if err != nil {
			b.Fatal(err)
		}
		tokens[tn.ID] = token
	}
	var wg sync.WaitGroup
	for _, tn := range e.Tenants() {
		wg.Go(func() {
			ev, err := e.WaitRotation(ctx, e.arns[tn.ID], tokens[tn.ID])
			switch {
			case err != nil:
				b.Errorf("%s: %v", tn.ID, err)
			case ev.Type != secretsemu.RotationSucceeded:
				b.Errorf("%s: %s: %s", tn.ID, ev.Type, ev.Error)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return time.Since(began)
}

// BenchmarkFleet reports, for the fleet: the wall time to enroll and to
// rotate every tenant, and a rotation's time per tenant against a fleet of
// one (the goal is within 1.2 times); Graph calls per tenant (it fails
// unless exactly 2 per number); the rotator's Secrets Manager calls per
// tenant; the time of one fleet status; the endpoint's peak memory with
// every tenant's key ring loaded.
func BenchmarkFleet(b *testing.B) {
	n := benchTenants(b)

	// A fleet of one: the time of one tenant's rotation, alone.
	one := benchFleet(b, 1)
	one.enrollAll(b)
	one.rotateAll(b) // its first key: what follows rotates from one key to the next
	const soloRuns = 5
	var solo time.Duration
	for range soloRuns {
		solo += one.rotateAll(b)
	}
	solo /= soloRuns

	e := benchFleet(b, n)
	enroll := e.enrollAll(b)
	first := e.rotateAll(b)
	e.Graph.ResetCounters()
	e.Secrets.ResetCalls()
	var rotate time.Duration
	for b.Loop() {
		rotate = e.rotateAll(b)
	}
	calls := e.Graph.Calls()
	for _, tn := range e.Tenants() {
		for _, num := range tn.Numbers {
			if c := calls.Of(num); c.Upload != b.N || c.Get != b.N || c.Total() != 2*b.N {
				b.Fatalf("%s's number %s: %+v in %d rotations, want one upload and one read each", tn.ID, num, c, b.N)
			}
		}
	}
	rotations := float64(n * b.N)
	graphPerTenant := float64(calls.Total()) / rotations
	smCalls := e.Secrets.Calls()
	smPerTenant := float64(smCalls.Count(secretsemu.Call{Caller: stack.RotatorAccessKeyID})) / rotations
	perTenant := rotate / time.Duration(n)

	// One fleet status over every tenant (and the stack's own secret).
	e.Secrets.ResetCalls()
	began := time.Now()
	runs := e.statusRun(b)
	status := time.Since(began)
	last := runs[len(runs)-1]
	if !last.Complete || last.Run.Tenants != n+1 || last.Run.Healthy != n+1 {
		b.Fatalf("the fleet status read %+v in %d invocation(s), want %d healthy", last.Run, len(runs), n+1)
	}
	statusSM := e.Secrets.Calls().Count(secretsemu.Call{Caller: stack.RotatorAccessKeyID})

	// One request per tenant through the endpoint, each at /t/<tenant>:
	// every tenant's ring is loaded (ENDPOINT_RING_CACHE is at least n).
	idle, served := e.endpointPerTenant(b)

	b.ReportMetric(enroll.Seconds(), "enroll-all-s")
	b.ReportMetric(first.Seconds(), "first-rotate-all-s")
	b.ReportMetric(rotate.Seconds(), "rotate-all-s")
	b.ReportMetric(float64(perTenant.Milliseconds()), "ms/tenant-rotation")
	b.ReportMetric(float64(solo.Milliseconds()), "ms/fleet-of-1-rotation")
	b.ReportMetric(float64(perTenant)/float64(solo), "x-fleet-of-1")
	b.ReportMetric(graphPerTenant, "graph-calls/tenant-rotation")
	b.ReportMetric(smPerTenant, "sm-calls/tenant-rotation")
	b.ReportMetric(status.Seconds(), "fleet-status-s")
	b.ReportMetric(float64(served.Peak)/(1<<20), "endpoint-peak-MiB")
	b.Logf("%d tenants x 2 numbers: enroll all %s (%s a tenant); first rotation of all %s; rotate all %s, %s a tenant, against %s for a fleet of 1 (%.2fx)",
		n, enroll.Round(time.Millisecond), (enroll / time.Duration(n)).Round(time.Microsecond), first.Round(time.Millisecond),
		rotate.Round(time.Millisecond), perTenant.Round(time.Microsecond), solo.Round(time.Microsecond), float64(perTenant)/float64(solo))
	b.Logf("Graph calls per tenant rotation: %.2f (%d uploads, %d reads, %d lists, %d other); Secrets Manager calls per tenant rotation (the rotator's): %.2f %v",
		graphPerTenant, calls.Upload, calls.Get, calls.List, calls.Other, smPerTenant, perOp(smCalls, rotations))
	b.Logf("fleet status of %d secrets: %s in %d invocation(s), %d Secrets Manager calls (%.2f a secret)",
		n+1, status.Round(time.Millisecond), len(runs), statusSM, float64(statusSM)/float64(n+1))
	b.Logf("endpoint bootstrap memory: peak %.1f MiB after one request to /, peak %.1f MiB (now %.1f MiB) with %d tenants' rings loaded: %.1f KiB a tenant",
		float64(idle.Peak)/(1<<20), float64(served.Peak)/(1<<20), float64(served.Now)/(1<<20), n, float64(served.Peak-idle.Peak)/1024/float64(n))
}

// perOp is the calls of the rotator per unit, by operation.
func perOp(calls secretsemu.Calls, units float64) map[string]float64 {
	out := map[string]float64{}
	for c, k := range calls {
		if c.Caller == stack.RotatorAccessKeyID {
			out[c.Op] = float64(k) / units
		}
	}
	return out
}

// endpointPerTenant sends one request to / and reads the endpoint's memory,
// then one request per tenant, each at /t/<tenant>, and reads it again.
func (e *fleetEnv) endpointPerTenant(b *testing.B) (idle, served stack.EndpointMemory) {
	b.Helper()
	ctx := ctxFor(b, time.Hour)
	send := func(url string, phones []string) {
		pop, err := waclient.New(waclient.Options{EndpointURL: url, GraphURL: e.GraphURL, GraphToken: stack.DefaultGraphToken,
			AppSecret: []byte(e.AppSecret), Phones: phones, Clients: 1, Mix: &waclient.Mix{}, MinKeyTTL: time.Hour, MaxKeyTTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if err := pop.Round(ctx); err != nil {
			b.Fatal(err)
		}
		if st := pop.Stats(); st.Failures != 0 || st.Verified != 1 {
			b.Fatalf("a request to %s: %s %v", url, st, st.Examples)
		}
	}
	send(e.EndpointURL, e.PhoneNumberIDs())
	idle, err := e.EndpointMemory()
	if err != nil {
		b.Fatal(err)
	}
	for _, tn := range e.Tenants() {
		send(e.EndpointURL+"/t/"+tn.ID, tn.Numbers[:1])
	}
	if served, err = e.EndpointMemory(); err != nil {
		b.Fatal(err)
	}
	return idle, served
}
