// Package demo shows flowkey at work on the local stack (internal/local/stack),
// with no AWS account: Run is `make demo`, two rotations told step by step,
// then traffic from simulated WhatsApp clients through the Flows endpoint
// across four more rotation scenarios, then the move of a secret into KMS
// custody and its rotations there, with traffic;
// Serve is the stack `make local-up` leaves running for hands-on use, Detach
// starts it in the background and returns once it is ready, and Stop is
// `make local-down`.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/traffic"
	"github.com/flowkey/flowkey/internal/secretdoc"
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
	// NoTraffic leaves out the third and fourth parts, the traffic through
	// the Flows endpoint across more rotations in either custody.
	NoTraffic bool
	// BeforeTraffic, when set, runs after the second part, before the
	// third: tests use it to see the end state the tables report.
	BeforeTraffic func(context.Context, *stack.Stack) error
	// BeforeCustody, when set, runs once the fourth part's stack is up,
	// before anything else: tests use it to script faults.
	BeforeCustody func(context.Context, *stack.Stack) error
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
// holds for every number and which version of the secret holds it; then
// (unless NoTraffic) the traffic parts, in PEM custody and into KMS
// custody. It stops everything it started before it returns, also when
// ctx ends. It fails when a rotation fails or when, at the end, a number
// does not hold the AWSCURRENT key with status VALID.
func Run(ctx context.Context, opts Options) error {
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
	if err := runFirstParts(ctx, opts); err != nil || opts.NoTraffic {
		return err
	}
	return runCustody(ctx, opts)
}

// runFirstParts is the demo's first three parts, on one stack.
func runFirstParts(ctx context.Context, opts Options) (err error) {
	out := opts.Out

	began := time.Now()
	clock := &traffic.Clock{}
	sopts := stack.Options{
		Binaries: opts.Binaries, Dir: opts.Dir, PhoneNumbers: opts.PhoneNumbers, Output: opts.Logs,
		GraphNow: clock.Now,
	}
	if !opts.NoTraffic {
		// The third part's failing rotation waits this long for Meta.
		sopts.FunctionEnv = map[string]string{"VERIFY_TIMEOUT": demoVerifyTimeout}
	}
	lst, err := stack.Start(ctx, sopts)
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer func() {
		lst.Close()
		// Logs that never reached opts.Logs would go unread: say so.
		if oerr := lst.OutputErr(); oerr != nil {
			err = errors.Join(err, fmt.Errorf("demo: not all of the stack's output reached the log: %w", oerr))
		}
	}()
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
	if opts.NoTraffic {
		return nil
	}
	if opts.BeforeTraffic != nil {
		if err := opts.BeforeTraffic(ctx, lst); err != nil {
			return fmt.Errorf("demo: before traffic: %w", err)
		}
	}
	return runTraffic(ctx, out, lst, arn, clock)
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
