package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fleet"
)

// Verdicts of a tenant in a fleet status.
const (
	TenantHealthy            = "healthy"
	TenantDrifted            = "drifted"
	TenantRotationIncomplete = "rotation_incomplete"
	TenantRotationOverdue    = "rotation_overdue"
	// TenantUnreadable: its status could not be read (the token, the
	// WABA, the secret, or the time it was given).
	TenantUnreadable = "unreadable"
	// TenantNoKeyYet: enrolled, before its first rotation. Not unhealthy
	// (its numbers are not counted as drifted) until it is overdue.
	TenantNoKeyYet = "no_key_yet"
	// TenantNotEnrolled: unenrolled, or rotation off; not read.
	TenantNotEnrolled = "not_enrolled"
)

// listedUnhealthy is how many unhealthy tenants a report lists in full.
const listedUnhealthy = 20

// FleetCounts are the tenants of a fleet status by verdict. A tenant that
// is overdue is counted in RotationOverdue and in its other verdict.
type FleetCounts struct {
	// Tenants were read (the enrolled ones), the stack's own secret included.
	Tenants            int `json:"tenants"`
	Healthy            int `json:"healthy"`
	Unhealthy          int `json:"unhealthy"`
	Drifted            int `json:"drifted"`
	RotationIncomplete int `json:"rotation_incomplete"`
	RotationOverdue    int `json:"rotation_overdue"`
	Unreadable         int `json:"unreadable"`
	NoKeyYet           int `json:"no_key_yet"`
	NotEnrolled        int `json:"not_enrolled"`
	// Numbers is the phone numbers read; DriftedNumbers the sum of each
	// tenant's drifted numbers (none for a tenant without a key yet).
	Numbers        int `json:"phone_numbers"`
	DriftedNumbers int `json:"drifted_numbers"`
	// MaxDaysSinceLastRotation is the oldest rotation of a tenant read.
	MaxDaysSinceLastRotation *float64 `json:"max_days_since_last_rotation,omitempty"`
}

func (c *FleetCounts) add(o FleetCounts) {
	c.Tenants += o.Tenants
	c.Healthy += o.Healthy
	c.Unhealthy += o.Unhealthy
	c.Drifted += o.Drifted
	c.RotationIncomplete += o.RotationIncomplete
	c.RotationOverdue += o.RotationOverdue
	c.Unreadable += o.Unreadable
	c.NoKeyYet += o.NoKeyYet
	c.NotEnrolled += o.NotEnrolled
	c.Numbers += o.Numbers
	c.DriftedNumbers += o.DriftedNumbers
	if o.MaxDaysSinceLastRotation != nil && (c.MaxDaysSinceLastRotation == nil || *o.MaxDaysSinceLastRotation > *c.MaxDaysSinceLastRotation) {
		d := *o.MaxDaysSinceLastRotation
		c.MaxDaysSinceLastRotation = &d
	}
}

// TenantStatus is one unhealthy tenant of a fleet status.
type TenantStatus struct {
	// Tenant is "" for the stack's own secret (SECRET_ID).
	Tenant                string   `json:"tenant"`
	SecretARN             string   `json:"secret_arn"`
	Verdict               string   `json:"verdict"`
	Overdue               bool     `json:"rotation_overdue"`
	DriftedNumbers        int      `json:"drifted_numbers"`
	DaysSinceLastRotation *float64 `json:"days_since_last_rotation,omitempty"`
	// Reasons are the first few reasons of its status.
	Reasons []string `json:"reasons"`
}

// FleetStatusReport is the result of a status that names no secret, with
// the fleet on: the tenants this invocation read, and the run's totals.
type FleetStatusReport struct {
	Command string `json:"command"` // "status"
	// OK: no unhealthy tenant so far in this run.
	OK bool `json:"ok"`
	// Overall is "healthy" or "unhealthy", for the run so far.
	Overall string `json:"overall"`
	Fleet   string `json:"fleet"`
	// Complete: this invocation read the run's last page.
	Complete bool `json:"complete"`
	// NextToken continues the run ({"command":"status","next_token":...});
	// Continued says this function was invoked to continue it.
	NextToken  string      `json:"next_token,omitempty"`
	Continued  bool        `json:"continued"`
	RunStarted time.Time   `json:"run_started"`
	Invocation int         `json:"invocation"`
	ReadNow    FleetCounts `json:"read_now"`
	Run        FleetCounts `json:"run"`
	// Unhealthy lists this invocation's unhealthy tenants, the first ones
	// in full; UnhealthyNotListed counts the rest by verdict.
	Unhealthy          []TenantStatus `json:"unhealthy"`
	UnhealthyNotListed map[string]int `json:"unhealthy_not_listed,omitempty"`
	Message            string         `json:"message"`
}

// tenantResult is what reading one fleet entry came to.
type tenantResult struct {
	skip    bool // not a tenant of this fleet (a prefix match of the filters)
	counts  FleetCounts
	verdict string
	status  TenantStatus
}

// fleetStatus reads the fleet from the cursor on, within the invocation's
// time, and continues asynchronously where that is not enough (see "Fleet
// status" in the package documentation).
func (o *Operator) fleetStatus(ctx context.Context, log *slog.Logger, cmd Command) (*FleetStatusReport, error) {
	f := o.opts.Fleet
	cur := cursor{V: cursorVersion, Run: o.opts.Now().UTC()}
	fresh := true
	for _, tok := range []string{cmd.NextToken, cmd.FleetCursor} {
		if tok != "" {
			c, err := decodeCursor(tok)
			if err != nil {
				return nil, fmt.Errorf("fleet status token: %w; fix: start again with {\"command\":\"status\"}", err)
			}
			cur, fresh = c, false
		}
	}
	// No tenant starts unless it can have its whole time before the
	// deadline, less what the report and the continuation need.
	var stopAt time.Time
	if d, ok := ctx.Deadline(); ok {
		stopAt = d.Add(-f.TenantTimeout - 5*time.Second)
	}
	r := &FleetStatusReport{Command: CommandStatus, Fleet: f.Name, RunStarted: cur.Run, Invocation: cur.Hops + 1, Unhealthy: []TenantStatus{}}
	var (
		results []*tenantResult
		wg      sync.WaitGroup
		sem     = make(chan struct{}, f.Concurrency)
	)
	// launch waits for a free slot, then reads in the background; false
	// when stopAt passed meanwhile, and nothing was started.
	launch := func(read func(context.Context) tenantResult) bool {
		sem <- struct{}{}
		if !stopAt.IsZero() && !o.opts.Now().Before(stopAt) {
			<-sem
			return false
		}
		res := &tenantResult{}
		results = append(results, res)
		wg.Go(func() {
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, f.TenantTimeout)
			defer cancel()
			*res = read(tctx)
		})
		return true
	}
	if fresh && o.opts.SecretID != "" {
		launch(func(ctx context.Context) tenantResult { return o.readStack(ctx, log) })
	}
	done, progressed, err := o.walkFleet(ctx, log, &cur, launch)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for _, res := range results {
		o.tally(r, res)
	}
	o.publishFleet(r.ReadNow)
	cur.Totals.add(r.ReadNow)
	r.Run = cur.Totals
	r.OK = r.Run.Unhealthy == 0
	r.Overall = TenantHealthy
	if !r.OK {
		r.Overall = "unhealthy"
	}
	r.Complete = done
	return o.endFleetRun(ctx, log, r, cur, cmd, progressed)
}

// endFleetRun says where the run stands and, where it must go on and can,
// continues it in another invocation.
func (o *Operator) endFleetRun(ctx context.Context, log *slog.Logger, r *FleetStatusReport, cur cursor, cmd Command, progressed bool) (*FleetStatusReport, error) {
	f, done := o.opts.Fleet, r.Complete
	log.Info("fleet status", "complete", done, "invocation", r.Invocation, "read_now", r.ReadNow.Tenants, "unhealthy_now", r.ReadNow.Unhealthy,
		"run_tenants", r.Run.Tenants, "run_unhealthy", r.Run.Unhealthy, "drifted_numbers", r.ReadNow.DriftedNumbers)
	if done {
		r.Message = fmt.Sprintf("fleet %s: %d tenants read in %d invocation(s), %d unhealthy; %s", f.Name, r.Run.Tenants, r.Invocation, r.Run.Unhealthy, r.Run.summary())
		return r, nil
	}
	cur.Hops++
	r.NextToken = cur.encode()
	r.Message = fmt.Sprintf("fleet %s: %d tenants read so far (%d now), %d unhealthy; the rest did not fit in this invocation. Continue by hand with "+
		"{\"command\":\"status\",\"next_token\":\"%s\"}", f.Name, r.Run.Tenants, r.ReadNow.Tenants, r.Run.Unhealthy, r.NextToken)
	if cmd.NextToken != "" || o.opts.Lambda == nil {
		return r, nil
	}
	if !progressed {
		// A run that cannot move would invoke itself for ever.
		r.Message += ". Not continued: this invocation had no time to read one tenant (raise the function's timeout)"
		log.Error("fleet status stopped", "reason", "no progress in an invocation")
		return r, nil
	}
	if err := o.continueFleet(ctx, cur); err != nil {
		return nil, fmt.Errorf("fleet status read %d tenants (%d unhealthy) and could not continue: %w", r.Run.Tenants, r.Run.Unhealthy, err)
	}
	r.Continued = true
	r.Message = fmt.Sprintf("fleet %s: %d tenants read so far (%d now), %d unhealthy; the status continues in another invocation of this function (see its log), "+
		"which publishes the rest of the metrics", f.Name, r.Run.Tenants, r.ReadNow.Tenants, r.Run.Unhealthy)
	return r, nil
}

// walkFleet pages ListSecrets from cur and launches a read of every entry
// until the last page (done) or until launch refuses. cur is left at the
// first entry not launched; progressed is whether it moved.
func (o *Operator) walkFleet(ctx context.Context, log *slog.Logger, cur *cursor, launch func(func(context.Context) tenantResult) bool) (done, progressed bool, err error) {
	f := o.opts.Fleet
	// The filters narrow; the tags and the name are checked again on
	// every entry, since a filter value is a prefix and tag-key and
	// tag-value match any tag each.
	filters := []types.Filter{
		{Key: types.FilterNameStringTypeTagKey, Values: []string{fleet.TagFleet}},
		{Key: types.FilterNameStringTypeTagValue, Values: []string{f.Name}},
		{Key: types.FilterNameStringTypeName, Values: []string{f.SecretPrefix}},
	}
	for {
		in := &secretsmanager.ListSecretsInput{Filters: filters, MaxResults: aws.Int32(int32(f.PageSize))}
		if cur.Page != "" {
			in.NextToken = aws.String(cur.Page)
		}
		out, err := o.sm.ListSecrets(ctx, in)
		if err != nil {
			return false, progressed, fmt.Errorf("list the fleet's secrets: %w; fix: check that the rotator may call secretsmanager:ListSecrets, "+
				"and start again with {\"command\":\"status\"} if the token expired", err)
		}
		for i := cur.Index; i < len(out.SecretList); i++ {
			e := out.SecretList[i]
			if !launch(func(ctx context.Context) tenantResult { return o.readTenant(ctx, log, e) }) {
				return false, progressed, nil
			}
			cur.Index, progressed = i+1, true
		}
		if out.NextToken == nil {
			return true, progressed, nil
		}
		cur.Page, cur.Index = *out.NextToken, 0
	}
}

// readTenant reads one entry of the list.
func (o *Operator) readTenant(ctx context.Context, log *slog.Logger, e types.SecretListEntry) tenantResult {
	f := o.opts.Fleet
	tags := map[string]string{}
	for _, t := range e.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	tenant, ok := fleet.TenantOf(f.SecretPrefix, aws.ToString(e.Name))
	if !ok || tags[fleet.TagFleet] != f.Name {
		return tenantResult{skip: true}
	}
	if !aws.ToBool(e.RotationEnabled) || tags[fleet.TagEnrolled] == "false" {
		return tenantResult{verdict: TenantNotEnrolled, counts: FleetCounts{NotEnrolled: 1}}
	}
	since := aws.ToTime(e.LastRotatedDate)
	if since.IsZero() {
		since = aws.ToTime(e.CreatedDate)
	}
	return o.judgeTenant(ctx, log.With("tenant", tenant), tenant, aws.ToString(e.ARN), since, fleet.OverdueAfter(f.Window))
}

// readStack reads the stack's own secret (SECRET_ID) as the fleet's first
// tenant. Its schedule is the stack's, so it is never judged overdue here;
// its age still counts in the fleet's maximum.
func (o *Operator) readStack(ctx context.Context, log *slog.Logger) tenantResult {
	sec, err := o.describe(ctx, o.opts.SecretID)
	if err != nil {
		return unreadable("", o.opts.SecretID, err)
	}
	since := sec.LastRotated
	if since.IsZero() {
		since = sec.Created
	}
	return o.judgeTenant(ctx, log, "", sec.ARN, since, 0)
}

func unreadable(tenant, arn string, err error) tenantResult {
	return tenantResult{verdict: TenantUnreadable, counts: FleetCounts{Tenants: 1, Unreadable: 1, Unhealthy: 1},
		status: TenantStatus{Tenant: tenant, SecretARN: arn, Verdict: TenantUnreadable, Reasons: []string{err.Error()}}}
}

// judgeTenant reads one secret's status and gives its verdict; overdueAfter
// 0 never judges it overdue.
func (o *Operator) judgeTenant(ctx context.Context, log *slog.Logger, tenant, arn string, since time.Time, overdueAfter time.Duration) tenantResult {
	var days *float64
	overdue := false
	if !since.IsZero() {
		age := max(o.opts.Now().Sub(since), 0)
		d := math.Round(age.Hours()/24*1000) / 1000
		days = &d
		overdue = overdueAfter > 0 && age > overdueAfter
	}
	res := tenantResult{status: TenantStatus{Tenant: tenant, SecretARN: arn, Overdue: overdue, DaysSinceLastRotation: days}}
	res.counts.MaxDaysSinceLastRotation = days
	res.counts.Tenants = 1
	st, err := o.status(ctx, log, arn, false)
	switch {
	case err != nil:
		u := unreadable(tenant, arn, err)
		u.status.Overdue, u.status.DaysSinceLastRotation, u.counts.MaxDaysSinceLastRotation = overdue, days, days
		if overdue {
			u.counts.RotationOverdue = 1
		}
		return u
	case st.Overall == RotationIncomplete:
		res.verdict = TenantRotationIncomplete
		res.counts.RotationIncomplete = 1
	case st.Versions.Current.Fingerprint == "":
		res.verdict = TenantNoKeyYet
		res.counts.NoKeyYet = 1
	case st.Overall == Drifted:
		res.verdict = TenantDrifted
		res.counts.Drifted = 1
	default:
		res.verdict = TenantHealthy
	}
	res.counts.Numbers = len(st.Numbers)
	if res.verdict != TenantNoKeyYet {
		res.counts.DriftedNumbers = st.Drifted
	}
	if overdue {
		res.counts.RotationOverdue = 1
		if res.verdict == TenantHealthy || res.verdict == TenantNoKeyYet {
			res.verdict = TenantRotationOverdue
		}
	}
	switch {
	case res.verdict == TenantHealthy || res.verdict == TenantNoKeyYet:
		res.counts.Healthy = boolInt(res.verdict == TenantHealthy)
	default:
		res.counts.Unhealthy = 1
	}
	res.status.Verdict, res.status.DriftedNumbers = res.verdict, res.counts.DriftedNumbers
	res.status.Reasons = st.Reasons[:min(3, len(st.Reasons))]
	return res
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tally adds one read to the report: its counts, and the tenant itself if
// it is unhealthy (the first listedUnhealthy in full, then by verdict).
func (o *Operator) tally(r *FleetStatusReport, res *tenantResult) {
	if res.skip {
		return
	}
	r.ReadNow.add(res.counts)
	if res.counts.Unhealthy == 0 {
		return
	}
	if len(r.Unhealthy) < listedUnhealthy {
		r.Unhealthy = append(r.Unhealthy, res.status)
		return
	}
	if r.UnhealthyNotListed == nil {
		r.UnhealthyNotListed = map[string]int{}
	}
	r.UnhealthyNotListed[res.verdict]++
}

// publishFleet writes what this invocation read as the status metrics
// (DriftedNumbers summed, DaysSinceLastRotation the maximum) and the
// tenant counts: aggregates only, never a dimension per tenant.
func (o *Operator) publishFleet(c FleetCounts) {
	if o.opts.Metrics != nil {
		o.opts.Metrics.Drift(c.Numbers, c.DriftedNumbers)
		if d := c.MaxDaysSinceLastRotation; d != nil {
			o.opts.Metrics.RotationAge(time.Duration(*d * 24 * float64(time.Hour)))
		}
	}
	if o.opts.FleetMetrics != nil {
		o.opts.FleetMetrics.Tenants(c.Tenants, c.Unhealthy, c.RotationIncomplete, c.RotationOverdue)
	}
}

// continueFleet invokes this function asynchronously with the cursor.
func (o *Operator) continueFleet(ctx context.Context, cur cursor) error {
	fn, err := o.functionARN(ctx)
	if err != nil {
		return err
	}
	payload, _ := json.Marshal(map[string]string{"command": CommandStatus, "fleet_cursor": cur.encode()})
	if _, err := o.opts.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload}); err != nil {
		return fmt.Errorf("invoke %s asynchronously: %w; fix: check that the rotator may call lambda:InvokeFunction on itself", fn, err)
	}
	return nil
}

func (c FleetCounts) summary() string {
	parts := []string{fmt.Sprintf("%d healthy", c.Healthy)}
	for _, p := range []struct {
		n    int
		what string
	}{{c.Drifted, "drifted"}, {c.RotationIncomplete, "with a rotation incomplete"}, {c.RotationOverdue, "overdue"}, {c.Unreadable, "unreadable"},
		{c.NoKeyYet, "without a key yet"}, {c.NotEnrolled, "not enrolled"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}
