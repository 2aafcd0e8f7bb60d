package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
)

// A fleet of 50 read in one invocation: every verdict, the aggregates
// published once, the stack's own secret among them, and nothing written.
func TestFleetStatusOfFiftyTenants(t *testing.T) {
	f := newFleetHarness(t, func(o *Options) { o.SecretID = "flowkey/key" })
	f.standard(t, phones[:3]...)
	for i := range 44 {
		f.tenant(t, fmt.Sprintf("t%02d", i))
	}
	_, nums := f.tenant(t, "drifted")
	for _, n := range nums {
		f.g.Set(n, keyForeign.PublicPEM(), graph.StatusValid)
	}
	stuck, _ := f.tenant(t, "stuck")
	f.sm.Put(stuck, "v-pend", docOf(t, map[string]any{"phone_number_ids": []string{"1"}}, keyPend), rotation.StagePending)
	revoked, _ := f.tenant(t, "revoked")
	f.sm.Put(revoked, "v-revoked", docOf(t, map[string]any{"phone_number_ids": f.numbers(1), "access_token_secret_id": "flowkey/tokens/revoked"}, keyCur), rotation.StageCurrent)
	fresh, _ := f.tenant(t, "fresh")
	f.sm.Put(fresh, "v-fresh", docOf(t, map[string]any{"phone_number_ids": f.numbers(2)}, nil), rotation.StageCurrent)
	fresh.LastRotatedDate, fresh.CreatedDate = nil, aws.Time(fleetBase.Add(-24*time.Hour))
	late, _ := f.tenant(t, "late")
	late.LastRotatedDate = aws.Time(fleetBase.Add(-40 * 24 * time.Hour))
	gone, _ := f.tenant(t, "gone")
	gone.RotationEnabled, gone.Tags[fleet.TagEnrolled] = aws.Bool(false), "false"
	other, _ := f.tenant(t, "other")
	other.Tags[fleet.TagFleet] = fleetName + "-2" // matches the tag-value filter, a prefix

	r := f.fleetStatus(t, context.Background(), Command{Name: CommandStatus})
	days := 40.0
	want := FleetCounts{Tenants: 50, Healthy: 45, Unhealthy: 4, Drifted: 1, RotationIncomplete: 1, RotationOverdue: 1, Unreadable: 1, NoKeyYet: 1, NotEnrolled: 1,
		Numbers: 3 + 44*2 + 2 + 2 + 2 + 2, DriftedNumbers: 2, MaxDaysSinceLastRotation: &days}
	if !r.Complete || r.OK || r.Overall != "unhealthy" || r.NextToken != "" || r.Continued || r.Invocation != 1 || !sameCounts(r.Run, want) || !sameCounts(r.ReadNow, want) {
		t.Fatalf("report %+v\nrun  %+v\nwant %+v", r, r.Run, want)
	}
	verdicts := map[string]string{}
	for _, u := range r.Unhealthy {
		verdicts[strings.TrimPrefix(u.SecretARN, "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/tenants/")] = u.Verdict
	}
	if want := map[string]string{"drifted-AbCdEf": TenantDrifted, "stuck-AbCdEf": TenantRotationIncomplete, "revoked-AbCdEf": TenantUnreadable, "late-AbCdEf": TenantRotationOverdue}; !equalMaps(verdicts, want) {
		t.Errorf("unhealthy %v, want %v", verdicts, want)
	}
	if len(f.metrics.drift) != 1 || f.metrics.drift[0] != [2]int{want.Numbers, 2} || len(f.metrics.ages) != 1 || f.metrics.ages[0] != 40*24*time.Hour {
		t.Errorf("published drift %v, ages %v", f.metrics.drift, f.metrics.ages)
	}
	if len(f.fm.runs) != 1 || f.fm.runs[0] != [4]int{50, 4, 1, 1} {
		t.Errorf("tenant metrics %v", f.fm.runs)
	}
	if w := f.sm.Writes(); len(w) != 0 {
		t.Errorf("writes %v", w)
	}
	// 51 entries (the other fleet's included) at 7 a page.
	if n := f.sm.Calls(secretsfake.OpListSecrets); n != 8 {
		t.Errorf("%d ListSecrets calls", n)
	}
	if len(f.lam.invocations()) != 0 {
		t.Error("a complete status continued")
	}
	if _, gets := f.g.Totals(); gets != want.Numbers {
		// One read a number; the revoked tenant's number is never read.
		t.Errorf("%d Graph reads, want %d", gets, want.Numbers)
	}
}

func sameCounts(a, b FleetCounts) bool {
	da, db := a.MaxDaysSinceLastRotation, b.MaxDaysSinceLastRotation
	a.MaxDaysSinceLastRotation, b.MaxDaysSinceLastRotation = nil, nil
	return a == b && (da == nil) == (db == nil) && (da == nil || *da == *db)
}

// pagedFleet is 20 healthy tenants read one at a time, each read moving
// the clock 10 s: six fit before an invocation's stop (see within).
func pagedFleet(t *testing.T) *fleetHarness {
	f := newFleetHarness(t, func(o *Options) { o.Fleet.Concurrency = 1 })
	f.clock.tick = 5 * time.Second // two numbers a tenant
	for i := range 20 {
		f.tenant(t, fmt.Sprintf("t%02d", i))
	}
	return f
}

// within is an invocation's context whose deadline leaves room for six
// tenants on the clock: reads start while the clock is before the deadline
// less a tenant's time and 5 s.
func (f *fleetHarness) within(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
	t.Cleanup(cancel)
	d, _ := ctx.Deadline()
	f.clock.set(d.Add(-f.op.opts.Fleet.TenantTimeout - 5*time.Second - 60*time.Second))
	return ctx
}

func TestFleetStatusContinuesInAnotherInvocationUntilTheLastPage(t *testing.T) {
	f := pagedFleet(t)
	cmd := Command{Name: CommandStatus}
	var reports []*FleetStatusReport
	for range 10 {
		r := f.fleetStatus(t, f.within(t), cmd)
		reports = append(reports, r)
		if r.Complete {
			break
		}
		ins := f.lam.invocations()
		if !r.Continued || len(ins) != len(reports) {
			t.Fatalf("invocation %d: continued %v, %d invocations", len(reports), r.Continued, len(ins))
		}
		in := ins[len(ins)-1]
		if aws.ToString(in.FunctionName) != functionARN || in.InvocationType != lambdatypes.InvocationTypeEvent {
			t.Errorf("invoke %s %s", aws.ToString(in.FunctionName), in.InvocationType)
		}
		var err error
		if cmd, err = fleetSyntax.Parse(in.Payload); err != nil || cmd.FleetCursor == "" || cmd.FleetCursor != r.NextToken {
			t.Fatalf("continuation payload %s: %+v, %v", in.Payload, cmd, err)
		}
	}
	if len(reports) != 4 {
		t.Fatalf("%d invocations, want 4 (6, 6, 6, 2 tenants)", len(reports))
	}
	for i, want := range []int{6, 6, 6, 2} {
		if r := reports[i]; r.ReadNow.Tenants != want || r.Invocation != i+1 || !r.RunStarted.Equal(reports[0].RunStarted) {
			t.Errorf("invocation %d read %d tenants (want %d), numbered %d", i+1, r.ReadNow.Tenants, want, r.Invocation)
		}
	}
	last := reports[3]
	if !last.OK || last.Run.Tenants != 20 || last.Run.Healthy != 20 || last.NextToken != "" || len(f.lam.invocations()) != 3 {
		t.Errorf("last %+v, %d invocations", last, len(f.lam.invocations()))
	}
	// Every tenant was read exactly once.
	_, gets := f.g.Counts()
	if len(gets) != 40 {
		t.Errorf("%d numbers read, want 40", len(gets))
	}
	for n, c := range gets {
		if c != 1 {
			t.Errorf("number %s read %d times", n, c)
		}
	}
	if len(f.fm.runs) != 4 || f.fm.runs[3] != [4]int{2, 0, 0, 0} {
		t.Errorf("each invocation publishes what it read: %v", f.fm.runs)
	}
}

func TestFleetStatusPagedByHandNeverContinues(t *testing.T) {
	f := pagedFleet(t)
	r := f.fleetStatus(t, f.within(t), Command{Name: CommandStatus, NextToken: cursor{V: cursorVersion, Run: fleetBase}.encode()})
	if r.Complete || r.NextToken == "" || r.Continued || len(f.lam.invocations()) != 0 || r.ReadNow.Tenants != 6 {
		t.Fatalf("first page: %+v", r)
	}
	if !strings.Contains(r.Message, `{"command":"status","next_token":"`+r.NextToken+`"}`) {
		t.Errorf("message %s", r.Message)
	}
	r2 := f.fleetStatus(t, f.within(t), Command{Name: CommandStatus, NextToken: r.NextToken})
	if r2.ReadNow.Tenants != 6 || r2.Run.Tenants != 12 || r2.Invocation != 2 || len(f.lam.invocations()) != 0 {
		t.Errorf("second page: %+v", r2)
	}
}

func TestFleetStatusThatCannotProgressStops(t *testing.T) {
	f := pagedFleet(t)
	ctx := f.within(t)
	f.clock.set(f.clock.Now().Add(time.Hour)) // past the last start
	r := f.fleetStatus(t, ctx, Command{Name: CommandStatus})
	if r.Complete || r.Continued || r.ReadNow.Tenants != 0 || len(f.lam.invocations()) != 0 || !strings.Contains(r.Message, "Not continued") {
		t.Errorf("%+v", r)
	}
}

func TestFleetStatusFailsWhenItCannotContinue(t *testing.T) {
	f := pagedFleet(t)
	f.lam.err = errors.New("AccessDeniedException")
	_, err := f.op.Run(f.within(t), Command{Name: CommandStatus})
	if err == nil || !strings.Contains(err.Error(), "fleet status read 6 tenants (0 unhealthy) and could not continue") || !strings.Contains(err.Error(), "lambda:InvokeFunction") {
		t.Errorf("got %v", err)
	}
	if len(f.fm.runs) != 1 {
		t.Errorf("what it read is published all the same: %v", f.fm.runs)
	}
}

// The list of unhealthy tenants is bounded; the rest are counted.
func TestFleetStatusListsTheFirstUnhealthyTenants(t *testing.T) {
	f := newFleetHarness(t, nil)
	for i := range 25 {
		_, nums := f.tenant(t, fmt.Sprintf("t%02d", i))
		f.g.Set(nums[0], keyForeign.PublicPEM(), graph.StatusValid)
	}
	r := f.fleetStatus(t, context.Background(), Command{Name: CommandStatus})
	if len(r.Unhealthy) != listedUnhealthy || r.UnhealthyNotListed[TenantDrifted] != 5 || r.Run.Unhealthy != 25 || r.Run.DriftedNumbers != 25 {
		t.Errorf("listed %d, not listed %v, run %+v", len(r.Unhealthy), r.UnhealthyNotListed, r.Run)
	}
	for _, u := range r.Unhealthy {
		if len(u.Reasons) == 0 || len(u.Reasons) > 3 || u.DriftedNumbers != 1 {
			t.Errorf("tenant %+v", u)
		}
	}
}

func TestAnEmptyFleetIsHealthy(t *testing.T) {
	f := newFleetHarness(t, nil)
	r := f.fleetStatus(t, context.Background(), Command{Name: CommandStatus})
	if !r.OK || !r.Complete || r.Run.Tenants != 0 || len(f.metrics.drift) != 1 || len(f.metrics.ages) != 0 {
		t.Errorf("%+v, drift %v, ages %v", r, f.metrics.drift, f.metrics.ages)
	}
}
