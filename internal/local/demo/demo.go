// Package demo shows flowkey at work on the local stack (internal/local/stack),
// with no AWS account: Run is `make demo`, two rotations told step by step,
// and Serve is `make local-up`, the stack left running for hands-on use.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Stage labels the demo reports.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

// rotationTimeout bounds one rotation: far above the tens of milliseconds a
// clean one takes, so only a hung stack reaches it.
const rotationTimeout = 2 * time.Minute

// Options configure Run.
type Options struct {
	Binaries stack.Binaries // required: see stack.Build
	// Dir is scratch space for the stack (required); Run leaves it for the
	// caller to remove.
	Dir string
	// PhoneNumbers in the simulated WABA (3).
	PhoneNumbers int
	// Rotations to run (2).
	Rotations int
	// Out receives the report (required).
	Out io.Writer
	// Logs receives the child processes' output, the function's JSON logs
	// among them (io.Discard).
	Logs io.Writer
	// Prepare, when set, runs once the stack is up and both secrets exist,
	// before the first rotation: tests use it to script Graph faults.
	Prepare func(context.Context, *stack.Stack) error
}

// RotationError reports a rotation that did not succeed.
type RotationError struct {
	N     int    // 1-based
	Token string // the rotation's version id
	Event secretsemu.Event
}

func (e *RotationError) Error() string {
	msg := fmt.Sprintf("rotation %d (version %s) ended with %s", e.N, e.Token, e.Event.Type)
	if e.Event.Error != "" {
		msg += ": " + e.Event.Error
	}
	return msg
}

// Run starts the local stack, creates the Graph token secret and a
// configuration-only key secret, rotates the key Rotations times through
// RotateSecret and reports each rotation's timeline, then which key Meta
// holds for every number and which version of the secret holds it. It
// stops everything it started before it returns, also when ctx ends.
// It fails when a rotation fails or when, at the end, a number does not
// hold the AWSCURRENT key with status VALID.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Out == nil || opts.Dir == "" {
		return errors.New("demo: Options.Out and Options.Dir are required")
	}
	if opts.PhoneNumbers == 0 {
		opts.PhoneNumbers = 3
	}
	if opts.Rotations == 0 {
		opts.Rotations = 2
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	out := opts.Out

	began := time.Now()
	lst, err := stack.Start(ctx, stack.Options{
		Binaries: opts.Binaries, Dir: opts.Dir, PhoneNumbers: opts.PhoneNumbers, Output: opts.Logs,
	})
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer lst.Close()
	fmt.Fprintf(out, "stack up in %s:\n", ms(time.Since(began)))
	fmt.Fprintf(out, "  Secrets Manager emulator  %s\n", lst.SecretsURL)
	fmt.Fprintf(out, "  local-kms                 %s\n", lst.KMSURL)
	fmt.Fprintf(out, "  Graph API simulator       %s\n", lst.GraphURL)
	fmt.Fprintf(out, "  Lambda RIE (bootstrap)    %s\n", lst.FunctionURL)

	phones := lst.PhoneNumberIDs()
	if _, err := lst.CreateTokenSecret(ctx); err != nil {
		return err
	}
	arn, err := lst.CreateKeySecret(ctx, stack.KeySecretName, secretdoc.Config{PhoneNumberIDs: phones})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "WABA %s has %d phone numbers: %s\n", stack.DefaultWABAID, len(phones), firstFew(phones, 5))
	fmt.Fprintf(out, "created %s (Graph token) and %s (configuration only, no key yet)\n",
		stack.TokenSecretName, stack.KeySecretName)
	if opts.Prepare != nil {
		if err := opts.Prepare(ctx, lst); err != nil {
			return fmt.Errorf("demo: prepare: %w", err)
		}
	}

	var rotErr error
	for n := 1; n <= opts.Rotations && rotErr == nil; n++ {
		rotErr = rotate(ctx, out, lst, arn, n)
	}
	var failed *RotationError
	if rotErr != nil && !errors.As(rotErr, &failed) {
		return rotErr
	}
	// After a failed rotation the tables still show where every key is.
	if err := report(ctx, out, lst, arn); err != nil || rotErr != nil {
		return errors.Join(rotErr, err)
	}
	fmt.Fprintf(out, "\nok: %d rotations; every number holds the AWSCURRENT key, status VALID\n", opts.Rotations)
	return nil
}

// report prints what Meta holds, which version holds each key, and the
// versions; it fails when the end state is not that of a good rotation.
func report(ctx context.Context, out io.Writer, lst *stack.Stack, arn string) error {
	versions, err := readVersions(ctx, lst.SM, arn)
	if err != nil {
		return err
	}
	rows := metaRows(lst.Graph.State(), versions)
	fmt.Fprintf(out, "\nWhat Meta holds, and which version of %s holds its private key:\n", stack.KeySecretName)
	writeMetaTable(out, rows)
	fmt.Fprintf(out, "\nVersions of %s:\n", stack.KeySecretName)
	writeVersionTable(out, versions)
	if err := describeRotation(ctx, out, lst.SM, arn); err != nil {
		return err
	}
	return checkRows(rows)
}

// rotate runs rotation n through RotateSecret and prints its timeline.
func rotate(ctx context.Context, out io.Writer, lst *stack.Stack, arn string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, rotationTimeout)
	defer cancel()
	callsBefore := lst.Graph.Calls()
	token, err := lst.Rotate(ctx, arn, true)
	if err != nil {
		return fmt.Errorf("rotation %d: RotateSecret: %w", n, err)
	}
	end, err := lst.WaitRotation(ctx, arn, token)
	if err != nil {
		return fmt.Errorf("rotation %d (version %s): %w", n, token, err)
	}
	calls := lst.Graph.Calls()
	var events []secretsemu.Event
	for _, e := range lst.Secrets.Events(arn) {
		if e.Token == token && e.Seq <= end.Seq {
			events = append(events, e)
		}
	}
	fmt.Fprintf(out, "\nRotation %d: RotateSecret -> emulator -> Lambda RIE -> bootstrap; new version %s\n", n, token)
	delta := callDelta(callsBefore, calls)
	reqs := lst.Graph.Requests()
	// The simulator keeps only its latest requests: per-step counts are
	// shown only when that log holds every call of this rotation.
	perStep := inSpan(events, reqs) == delta.Total()
	if !perStep {
		reqs = nil
	}
	writeTimeline(out, timeline(events, reqs))
	fmt.Fprintf(out, "  %s after %s; Graph calls: %s\n", end.Type, ms(rotationSpan(events)), countList(delta))
	if !perStep {
		fmt.Fprintln(out, "  (too many Graph calls to split by step: the simulator logs only its latest requests)")
	}
	if end.Type != secretsemu.RotationSucceeded {
		return &RotationError{N: n, Token: token, Event: end}
	}
	val, err := lst.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token)})
	if err != nil {
		return fmt.Errorf("rotation %d: read version %s: %w", n, token, err)
	}
	doc, err := secretdoc.Parse([]byte(aws.ToString(val.SecretString)))
	if err != nil {
		return fmt.Errorf("rotation %d: version %s: %w", n, token, err)
	}
	if doc.Key == nil {
		return fmt.Errorf("rotation %d: version %s holds no key after a successful rotation", n, token)
	}
	fmt.Fprintf(out, "  new key %s (%s), version labels %s\n", short(doc.Key.FingerprintSHA256), doc.Key.GeneratedBy, labelList(sortLabels(val.VersionStages)))
	return nil
}

// step is one line of a rotation's timeline.
type step struct {
	Attempt  int
	Name     string
	Offset   time.Duration // from RotationStarted
	Duration time.Duration
	OK       bool
	Error    string
	Graph    graphsim.OpCounts // calls that began while the step ran
}

// timeline turns one rotation's events into steps, and counts the Graph
// requests that began during each step.
func timeline(events []secretsemu.Event, reqs []graphsim.Request) []step {
	var start time.Time
	started := map[string]time.Time{} // step name+attempt -> StepStarted time
	var steps []step
	for _, e := range events {
		key := fmt.Sprintf("%d/%s", e.Attempt, e.Step)
		switch e.Type {
		case secretsemu.RotationStarted:
			if start.IsZero() {
				start = e.Time
			}
		case secretsemu.StepStarted:
			started[key] = e.Time
		case secretsemu.StepSucceeded, secretsemu.StepFailed:
			from, ok := started[key]
			if !ok {
				from = e.Time.Add(-e.Duration)
			}
			if start.IsZero() {
				start = from
			}
			s := step{Attempt: e.Attempt, Name: e.Step, Offset: from.Sub(start), Duration: e.Duration,
				OK: e.Type == secretsemu.StepSucceeded, Error: e.Error}
			for _, r := range reqs {
				if !r.At.Before(from) && !r.At.After(e.Time) {
					s.Graph = addOp(s.Graph, r.Op)
				}
			}
			steps = append(steps, s)
		}
	}
	return steps
}

func addOp(c graphsim.OpCounts, op graphsim.Op) graphsim.OpCounts {
	switch op {
	case graphsim.OpUpload:
		c.Upload++
	case graphsim.OpGet:
		c.Get++
	case graphsim.OpList:
		c.List++
	default:
		c.Other++
	}
	return c
}

// rotationSpan is the time from the first event to the last.
func rotationSpan(events []secretsemu.Event) time.Duration {
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].Time.Sub(events[0].Time)
}

// stepWork says what the rotator does in each step, for the timeline.
var stepWork = map[string]string{
	"createSecret": "new RSA-2048 pair from KMS, stored AWSPENDING",
	"setSecret":    "public key uploaded to every number",
	"testSecret":   "Meta reads back the new key, VALID",
	"finishSecret": "AWSCURRENT moved to the new version",
}

func writeTimeline(out io.Writer, steps []step) {
	for _, s := range steps {
		res := "ok"
		if !s.OK {
			res = "FAILED"
		}
		name := s.Name
		if s.Attempt > 1 {
			name = fmt.Sprintf("%s (attempt %d)", s.Name, s.Attempt)
		}
		line := fmt.Sprintf("  %8s  %-14s %-6s %7s  %-44s %s", "+"+ms(s.Offset), name, res, ms(s.Duration), stepWork[s.Name], graphNote(s.Graph))
		fmt.Fprintln(out, strings.TrimRight(line, " "))
		if !s.OK && s.Error != "" {
			fmt.Fprintf(out, "            %s\n", s.Error)
		}
	}
}

func graphNote(c graphsim.OpCounts) string {
	if c.Total() == 0 {
		return ""
	}
	return "Graph: " + countList(c)
}

func countList(c graphsim.OpCounts) string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{c.Upload, "upload"}, {c.Get, "read"}, {c.List, "list"}, {c.Other, "other"}} {
		if x.n == 1 {
			parts = append(parts, "1 "+x.what)
		} else if x.n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", x.n, x.what))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func callDelta(before, after graphsim.Calls) graphsim.OpCounts {
	return graphsim.OpCounts{
		Upload: after.Upload - before.Upload, Get: after.Get - before.Get,
		List: after.List - before.List, Other: after.Other - before.Other,
	}
}

// inSpan counts the requests that began between a rotation's first and last event.
func inSpan(events []secretsemu.Event, reqs []graphsim.Request) int {
	if len(events) == 0 {
		return 0
	}
	from, to := events[0].Time, events[len(events)-1].Time
	n := 0
	for _, r := range reqs {
		if !r.At.Before(from) && !r.At.After(to) {
			n++
		}
	}
	return n
}

// ms rounds d for people: whole milliseconds, or seconds past ten.
func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
}

// secretsManager is what the demo reads through the real SDK client.
type secretsManager interface {
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// version is one version of the key secret, by fingerprint only.
type version struct {
	ID          string
	Labels      []string
	Created     time.Time
	Fingerprint string // "" for a configuration-only version
	GeneratedBy string
}

// readVersions lists every version, those without a label included, and
// reads each one's key fingerprint.
func readVersions(ctx context.Context, sm secretsManager, arn string) ([]version, error) {
	var out []version
	in := &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true)}
	for {
		page, err := sm.ListSecretVersionIds(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the versions of %s: %w", arn, err)
		}
		for _, v := range page.Versions {
			id := aws.ToString(v.VersionId)
			val, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)})
			if err != nil {
				return nil, fmt.Errorf("read version %s: %w", id, err)
			}
			doc, err := secretdoc.Parse([]byte(aws.ToString(val.SecretString)))
			if err != nil {
				return nil, fmt.Errorf("version %s: %w", id, err)
			}
			ver := version{ID: id, Labels: sortLabels(v.VersionStages), Created: aws.ToTime(v.CreatedDate)}
			if doc.Key != nil {
				ver.Fingerprint, ver.GeneratedBy = doc.Key.FingerprintSHA256, doc.Key.GeneratedBy
			}
			out = append(out, ver)
		}
		if page.NextToken == nil {
			break
		}
		in.NextToken = page.NextToken
	}
	// By the most telling label, then newest first: versions created in the
	// same millisecond are common here.
	slices.SortStableFunc(out, func(a, b version) int {
		if ra, rb := firstRank(a.Labels), firstRank(b.Labels); ra != rb {
			return ra - rb
		}
		return b.Created.Compare(a.Created)
	})
	return out, nil
}

// sortLabels orders AWS's labels first, so the one that matters leads.
func sortLabels(labels []string) []string {
	out := slices.Clone(labels)
	slices.SortStableFunc(out, func(a, b string) int { return labelRank(a) - labelRank(b) })
	return out
}

func firstRank(labels []string) int {
	if len(labels) == 0 {
		return labelRank("")
	}
	return labelRank(labels[0])
}

func labelRank(l string) int {
	switch l {
	case stageCurrent:
		return 0
	case stagePending:
		return 1
	case stagePrevious:
		return 2
	case "":
		return 4
	}
	return 3
}

// metaRow is one phone number in the final table.
type metaRow struct {
	ID, Display string
	Fingerprint string // what Meta holds; "" for none
	Status      string // what Meta's GET answers
	Holder      *version
}

func metaRows(st graphsim.State, versions []version) []metaRow {
	var rows []metaRow
	for _, n := range st.Numbers {
		r := metaRow{ID: n.ID, Display: n.DisplayPhoneNumber, Status: n.Served.Status}
		if n.Key != nil {
			r.Fingerprint = n.Key.Fingerprint
		}
		for i := range versions {
			if r.Fingerprint != "" && versions[i].Fingerprint == r.Fingerprint {
				r.Holder = &versions[i]
				break
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func writeMetaTable(out io.Writer, rows []metaRow) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHONE NUMBER ID\tDISPLAY NUMBER\tMETA'S KEY\tMETA'S STATUS\tHELD BY VERSION")
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Display, orDash(short(r.Fingerprint)), orDash(r.Status), holder(r.Holder))
	}
	tw.Flush()
}

func holder(v *version) string {
	if v == nil {
		return "none"
	}
	return labelList(v.Labels) + " (" + short8(v.ID) + ")"
}

func labelList(l []string) string {
	if len(l) == 0 {
		return "no label"
	}
	return strings.Join(l, "+")
}

func writeVersionTable(out io.Writer, versions []version) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tLABELS\tKEY\tGENERATED BY\tCREATED")
	for _, v := range versions {
		key, by := short(v.Fingerprint), v.GeneratedBy
		if v.Fingerprint == "" {
			key, by = "(configuration only)", ""
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", v.ID, labelList(v.Labels), key, orDash(by), v.Created.Local().Format("15:04:05.000"))
	}
	tw.Flush()
}

func describeRotation(ctx context.Context, out io.Writer, sm secretsManager, arn string) error {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", arn, err)
	}
	rules := "-"
	if r := d.RotationRules; r != nil {
		rules = aws.ToString(r.ScheduleExpression)
		if w := aws.ToString(r.Duration); w != "" {
			rules += ", window " + w
		}
	}
	fmt.Fprintf(out, "  rotation enabled: %t, schedule %s, last rotated %s, next rotation %s\n",
		aws.ToBool(d.RotationEnabled), rules, day(d.LastRotatedDate), day(d.NextRotationDate))
	return nil
}

func day(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// checkRows is the demo's own proof: every number holds the AWSCURRENT key
// and Meta says VALID.
func checkRows(rows []metaRow) error {
	var bad []string
	for _, r := range rows {
		switch {
		case r.Holder == nil:
			bad = append(bad, fmt.Sprintf("%s holds key %s, which no version of the secret holds", r.ID, orDash(short(r.Fingerprint))))
		case !slices.Contains(r.Holder.Labels, stageCurrent):
			bad = append(bad, fmt.Sprintf("%s holds the key of version %s (%s), not AWSCURRENT", r.ID, r.Holder.ID, labelList(r.Holder.Labels)))
		case r.Status != "VALID":
			bad = append(bad, fmt.Sprintf("%s: Meta reports %s, want VALID", r.ID, orDash(r.Status)))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("demo: the end state is wrong:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// firstFew lists up to n IDs, and says how many more there are.
func firstFew(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}

// short is the 16-hex-digit prefix people compare fingerprints by.
func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

func short8(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
