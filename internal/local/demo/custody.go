package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/traffic"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// demoThrottled is how many of the endpoint's kms:Decrypt calls the
// fourth part has KMS throttle (one in two).
const demoThrottled = 30

// runCustody is the demo's fourth part: KMS custody, with traffic through
// the endpoint. It runs on a stack of its own: the third part leaves its
// secret with a rotation rolled back and incomplete on purpose, which
// Secrets Manager lets no RotateSecret pass. The secret starts as every
// deployed secret today, in PEM custody; set-config moves it to KMS
// custody, and the rotations after that create KMS keys, ride out KMS
// throttling, and retire the key that leaves AWSPREVIOUS.
func runCustody(ctx context.Context, opts Options) (err error) {
	out := opts.Out
	clock := &traffic.Clock{}
	began := time.Now()
	lst, err := stack.Start(ctx, stack.Options{
		Binaries: opts.Binaries, Dir: filepath.Join(opts.Dir, "custody"), PhoneNumbers: opts.PhoneNumbers,
		Output: opts.Logs, GraphNow: clock.Now,
	})
	if err != nil {
		return fmt.Errorf("start the local stack for KMS custody: %w", err)
	}
	defer func() {
		lst.Close()
		if oerr := lst.OutputErr(); oerr != nil {
			err = errors.Join(err, fmt.Errorf("demo: not all of the stack's output reached the log: %w", oerr))
		}
	}()
	if opts.BeforeCustody != nil {
		if err := opts.BeforeCustody(ctx, lst); err != nil {
			return fmt.Errorf("demo: before custody: %w", err)
		}
	}
	if _, err := lst.CreateTokenSecret(ctx); err != nil {
		return err
	}
	arn, err := lst.CreateKeySecret(ctx, stack.KeySecretName, secretdoc.Config{PhoneNumberIDs: lst.PhoneNumberIDs()})
	if err != nil {
		return err
	}
	if err := rotateQuietly(ctx, lst, arn); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nKMS custody: the private key never leaves KMS (a new stack, up in %s; KMS is local-kms behind a fault-injecting proxy)\n", ms(time.Since(began)))
	fmt.Fprintf(out, "%s starts as every secret does today, its key in PEM in the secret (AWSCURRENT, one rotation old). set-config\n", stack.KeySecretName)
	fmt.Fprintln(out, `sets config.key_custody "kms"; the next rotation creates an RSA_2048 ENCRYPT_DECRYPT KMS key, and the version records`)
	fmt.Fprintln(out, "only its ARN and public key. The endpoint decrypts the PEM key's traffic locally and the KMS key's with kms:Decrypt.")
	fmt.Fprintln(out, "KMS DECRYPTS/REQUEST counts the endpoint's kms:Decrypt calls at the proxy, each throttled attempt included. Between")
	fmt.Fprintln(out, "the two populations a rotation runs without traffic: it takes the PEM key out of every label (see the quick succession above).")

	phases, err := custodyPhases(ctx, lst, arn, clock)
	traffic.WriteTable(out, phases)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range phases {
		if err := p.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	keys, err := custodyKeyRows(ctx, lst, arn)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nKMS keys of %s (found by their alias alias/flowkey/<secret hash>/<version>):\n", stack.KeySecretName)
	writeCustodyKeys(out, keys)
	writeRotationTimes(out, lst, arn)
	if err := checkCustodyKeys(keys); err != nil {
		return err
	}
	var requests int
	for _, p := range phases {
		requests += p.Clients.Requests
	}
	fmt.Fprintf(out, "ok: %d requests through the endpoint from PEM custody into KMS custody across 3 rotations and KMS throttling; 0 user-visible failures\n", requests)
	return nil
}

// rotateQuietly runs a rotation that must succeed, without a report.
func rotateQuietly(ctx context.Context, lst *stack.Stack, arn string) error {
	ctx, cancel := context.WithTimeout(ctx, rotationTimeout)
	defer cancel()
	token, err := lst.Rotate(ctx, arn, true)
	if err != nil {
		return fmt.Errorf("RotateSecret: %w", err)
	}
	end, err := lst.WaitRotation(ctx, arn, token)
	if err != nil {
		return err
	}
	if end.Type != secretsemu.RotationSucceeded {
		return &RotationError{N: 1, Token: token, Event: end}
	}
	return nil
}

// custodyPhases runs the fourth part's traffic: the phases so far, and the
// first error. A rotation between the two populations runs without
// traffic: it takes the PEM key out of every label, so that the clients
// still caching it would get 421s (as in the third part's quick
// succession) and wait out the key ring's floor, which the demo has no
// time for; new clients then fetch the KMS key.
func custodyPhases(ctx context.Context, lst *stack.Stack, arn string, clock *traffic.Clock) ([]traffic.Phase, error) {
	first, err := newDemoDriver(lst, 1)
	if err != nil {
		return nil, err
	}
	env := traffic.Env{Stack: lst, ARN: arn, Clock: clock}
	var phases []traffic.Phase
	run := func(d *traffic.Driver, sc traffic.Scenario) error {
		p, err := d.During(ctx, sc.Name, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*rotationTimeout)
			defer cancel()
			return sc.Run(ctx, env)
		})
		phases = append(phases, p)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		return nil
	}
	steady := func(d *traffic.Driver, name string) error {
		p, err := d.Rounds(ctx, name, demoSteadyRounds)
		phases = append(phases, p)
		return err
	}
	if err := steady(first, "steady state, PEM custody"); err != nil {
		return phases, err
	}
	for _, sc := range []traffic.Scenario{traffic.Migration(), traffic.ThrottleSome(demoThrottled, 2)} {
		if err := run(first, sc); err != nil {
			return phases, err
		}
	}
	if err := rotateQuietly(ctx, lst, arn); err != nil {
		return phases, fmt.Errorf("the rotation between the populations: %w", err)
	}
	next, err := newDemoDriver(lst, 2)
	if err != nil {
		return phases, err
	}
	if err := steady(next, "steady state, KMS custody (24 new clients)"); err != nil {
		return phases, err
	}
	clean := traffic.CleanRotation()
	return phases, run(next, traffic.Scenario{Name: "clean rotation, retiring the first KMS key", Run: clean.Run})
}

// custodyKeyRow is one KMS key of the secret.
type custodyKeyRow struct {
	Version string // the alias's version ID
	KeyID   string
	State   string
	Until   time.Time // the deletion date of a key pending deletion
	HeldBy  []string  // the labels of the versions that name it
}

// custodyKeyRows lists the secret's KMS keys through their aliases, as
// the status command does, with the labels that name each.
func custodyKeyRows(ctx context.Context, lst *stack.Stack, arn string) ([]custodyKeyRow, error) {
	m, err := custody.New(lst.KMS, custody.Options{})
	if err != nil {
		return nil, err
	}
	list, err := m.List(ctx, arn)
	if err != nil {
		return nil, err
	}
	held, err := labelsByKMSKey(ctx, lst.SM, arn)
	if err != nil {
		return nil, err
	}
	var rows []custodyKeyRow
	for _, a := range list {
		r := custodyKeyRow{Version: strings.TrimPrefix(a.Alias, custody.AliasPrefix(arn))}
		switch {
		case a.Key != nil:
			r.KeyID, r.State, r.Until, r.HeldBy = a.Key.ID, string(a.Key.State), a.Key.DeletionDate, held[a.Key.ARN]
		case a.Gone:
			r.State = "deleted"
		default:
			r.State = "unknown: " + a.Err.Error()
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// labelsByKMSKey maps each KMS key a labelled version names to the labels.
func labelsByKMSKey(ctx context.Context, sm secretsManager, arn string) (map[string][]string, error) {
	desc, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for id, labels := range desc.VersionIdsToStages {
		if len(labels) == 0 {
			continue
		}
		val, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)})
		if err != nil {
			return nil, fmt.Errorf("read version %s: %w", id, err)
		}
		doc, err := secretdoc.Parse([]byte(aws.ToString(val.SecretString)))
		if err != nil {
			return nil, fmt.Errorf("version %s: %w", id, err)
		}
		if doc.Key.InKMS() {
			out[doc.Key.KMSKeyARN] = append(out[doc.Key.KMSKeyARN], labels...)
		}
	}
	for k, l := range out {
		out[k] = sortLabels(l)
	}
	return out, nil
}

func writeCustodyKeys(out io.Writer, rows []custodyKeyRow) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION (ALIAS)\tKMS KEY\tSTATE\tHELD BY")
	for _, r := range rows {
		state := r.State
		if !r.Until.IsZero() {
			state += ", deleted on " + r.Until.UTC().Format("2006-01-02")
		}
		held := "no label: retired"
		if len(r.HeldBy) > 0 {
			held = labelList(r.HeldBy)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", short8(r.Version), short8(r.KeyID), state, held)
	}
	tw.Flush()
}

// checkCustodyKeys fails the part unless three keys were made: the
// current and previous ones enabled, the first one retired.
func checkCustodyKeys(rows []custodyKeyRow) error {
	var enabled, retired []string
	for _, r := range rows {
		switch {
		case r.State == "Enabled" && len(r.HeldBy) > 0:
			enabled = append(enabled, labelList(r.HeldBy))
		case r.State == "PendingDeletion" && len(r.HeldBy) == 0:
			retired = append(retired, r.Version)
		default:
			return fmt.Errorf("KMS key %s of version %s is %s, held by %v: want enabled and labelled, or retired", r.KeyID, r.Version, r.State, r.HeldBy)
		}
	}
	slices.Sort(enabled)
	if len(rows) != 3 || len(retired) != 1 || len(enabled) != 2 || !strings.HasPrefix(enabled[0], stageCurrent) || enabled[1] != stagePrevious {
		return fmt.Errorf("KMS keys: %d, %v enabled, %v retired; want the AWSCURRENT and AWSPREVIOUS keys enabled and the first one retired", len(rows), enabled, retired)
	}
	return nil
}

// writeRotationTimes prints how long each rotation of the part took, from
// RotateSecret to the end of finishSecret, by custody of the key it made.
func writeRotationTimes(out io.Writer, lst *stack.Stack, arn string) {
	byToken := map[string][]secretsemu.Event{}
	var order []string
	for _, e := range lst.Secrets.Events(arn) {
		if e.TestOnly {
			continue
		}
		if _, ok := byToken[e.Token]; !ok {
			order = append(order, e.Token)
		}
		byToken[e.Token] = append(byToken[e.Token], e)
	}
	var times []string
	for i, tok := range order {
		made := "KMS key"
		if i == 0 {
			made = "PEM key"
		}
		times = append(times, fmt.Sprintf("%s (%s)", ms(rotationSpan(byToken[tok])), made))
	}
	fmt.Fprintf(out, "rotation times, RotateSecret to the end of finishSecret: %s\n", strings.Join(times, ", "))
	calls := lst.KMSProxy.Calls()
	fmt.Fprintf(out, "the rotator's KMS calls: %d (CreateKey %d, GetPublicKey %d, Decrypt %d, DisableKey %d, ScheduleKeyDeletion %d)\n",
		calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID}),
		calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID, Op: "CreateKey"}), calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID, Op: "GetPublicKey"}),
		calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID, Op: "Decrypt"}), calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID, Op: "DisableKey"}),
		calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID, Op: "ScheduleKeyDeletion"}))
}
