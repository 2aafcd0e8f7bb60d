package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Defaults of Options.
const (
	DefaultSeed     = 9
	DefaultAttempts = 300
	DefaultTimeout  = 10 * time.Minute
)

// The function's settings on the soak's stack: as short as the function
// accepts, so that an attempt whose faults run every retry and every
// verification to its end still takes seconds. VERIFY_TIMEOUT and
// GRAPH_REQUEST_TIMEOUT are at their minimum (1s), and the function's
// timeout leaves the rollback and report reserves room.
const (
	functionTimeout     = 30 * time.Second
	graphRequestTimeout = time.Second
	verifyTimeout       = time.Second
	graphMaxAttempts    = 3
	// rotationAttempts is how often the emulator runs a failed rotation,
	// as Secrets Manager reattempts one; retryDelay is its wait between.
	rotationAttempts = 2
	retryDelay       = 100 * time.Millisecond
)

// Bounds on waits, so that a hung stack ends the run instead of hanging it.
const (
	invokeGrace    = 15 * time.Second
	runTimeout     = 3 * time.Minute
	attemptTimeout = 8 * time.Minute
	quietTimeout   = 15 * time.Second
	// finalReserve is the time kept back for the final rotations: no
	// attempt starts with less left.
	finalReserve = 90 * time.Second
)

// Options configure a run. Zero values take the defaults noted.
type Options struct {
	Binaries stack.Binaries // required: see stack.Build
	Dir      string         // scratch space for the stack (required)
	// Seed decides every attempt's plan (DefaultSeed).
	Seed uint64
	// Attempts to run (DefaultAttempts).
	Attempts int
	// Timeout bounds the run's wall-clock time (DefaultTimeout): no attempt
	// starts once less than the final rotations need is left.
	Timeout time.Duration
	// Progress receives one line per attempt (io.Discard).
	Progress io.Writer
	// Trace adds, under each progress line, what the attempt did.
	Trace bool
	// Logs receives the stack's processes' output, the function's JSON
	// logs among them (io.Discard).
	Logs io.Writer
}

// secret is one secret under test.
type secret struct {
	name, arn string
	numbers   []string // the numbers it covers
	waba      string   // the WABA they belong to
	byWABA    bool     // configured by waba_id
	// configured: a RotateSecret has set rotation up on it.
	configured bool
}

type engine struct {
	opts     Options
	st       *stack.Stack
	secrets  []*secret
	targets  []target
	res      *Result
	token    string // the token the simulator accepts
	tokenNow string // what the token secret holds
	kmsDown  bool
	deadline time.Time
}

// soakToken is the Graph token of the soak's stack.
const soakToken = "flowkey-soak-token"

// A second WABA, whose numbers the waba_id secret covers.
const (
	secondWABA = "102290129340399"
	firstExtra = 106540352900001
)

// Run starts a local stack, creates two key secrets (one listing three
// numbers, one covering a WABA of two), runs the attempts and the final
// rotations, and stops the stack. The error is for a run that could not
// take place (the stack did not start); what the run found is in Result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	began := time.Now()
	e, err := start(ctx, &opts)
	if err != nil {
		return nil, err
	}
	// The waits inside bound each step; this bounds the run if they did not.
	ctx, cancel := context.WithDeadline(ctx, e.deadline.Add(attemptTimeout))
	defer cancel()
	defer e.close()
	for i := 1; i <= opts.Attempts; i++ {
		if time.Until(e.deadline) < finalReserve || ctx.Err() != nil {
			e.res.TimedOut = true
			break
		}
		a := e.attempt(ctx, NewPlan(opts.Seed, i, e.targets))
		e.res.Attempts = append(e.res.Attempts, a)
		fmt.Fprintln(opts.Progress, a.line(opts.Attempts))
		if opts.Trace {
			for _, t := range a.trace() {
				fmt.Fprintf(opts.Progress, "       %s\n", t)
			}
		}
	}
	e.final(ctx)
	e.res.Elapsed = time.Since(began)
	return e.res, nil
}

// start fills in opts' defaults, starts the stack and creates the secrets.
func start(ctx context.Context, opts *Options) (*engine, error) {
	if opts.Dir == "" || opts.Binaries.Bootstrap == "" {
		return nil, errors.New("soak: Options.Binaries and Options.Dir are required")
	}
	if opts.Seed == 0 {
		opts.Seed = DefaultSeed
	}
	if opts.Attempts == 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	e := &engine{opts: *opts, token: soakToken, tokenNow: soakToken, deadline: time.Now().Add(opts.Timeout),
		res: &Result{Seed: opts.Seed, Planned: opts.Attempts, Places: map[string]int{}}}
	st, err := stack.Start(ctx, stack.Options{
		Binaries: opts.Binaries, Dir: opts.Dir, PhoneNumbers: 3, GraphToken: soakToken, FunctionTimeout: functionTimeout,
		FunctionEnv: map[string]string{
			"VERIFY_TIMEOUT": verifyTimeout.String(), "GRAPH_REQUEST_TIMEOUT": graphRequestTimeout.String(),
			"GRAPH_MAX_ATTEMPTS": strconv.Itoa(graphMaxAttempts),
		},
		RotationAttempts: rotationAttempts, RetryDelay: retryDelay, Output: opts.Logs,
	})
	if err != nil {
		return nil, fmt.Errorf("soak: start the local stack: %w", err)
	}
	e.st = st
	if err := e.createSecrets(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("soak: create the secrets: %w", err)
	}
	return e, nil
}

// close stops the stack; output it could not copy is a problem of the run.
func (e *engine) close() {
	e.st.Close()
	if err := e.st.OutputErr(); err != nil {
		e.res.Problems = append(e.res.Problems, "not all of the stack's output was copied: "+err.Error())
	}
}

func (e *engine) createSecrets(ctx context.Context) error {
	if _, err := e.st.CreateTokenSecret(ctx); err != nil {
		return err
	}
	g := e.st.Graph
	var extra []string
	for i := range 2 {
		id := strconv.Itoa(firstExtra + i)
		if err := g.AddPhoneNumber(secondWABA, id, fmt.Sprintf("+1 202-555-01%02d", 90+i), "Flowkey Soak"); err != nil {
			return err
		}
		extra = append(extra, id)
	}
	ids := &secret{name: "flowkey/soak-ids", numbers: e.st.PhoneNumberIDs(), waba: stack.DefaultWABAID}
	byWABA := &secret{name: "flowkey/soak-waba", numbers: extra, waba: secondWABA, byWABA: true}
	for _, sec := range []*secret{ids, byWABA} {
		cfg := secretdoc.Config{PhoneNumberIDs: sec.numbers}
		if sec.byWABA {
			cfg = secretdoc.Config{WABAID: sec.waba}
		}
		arn, err := e.st.CreateKeySecret(ctx, sec.name, cfg)
		if err != nil {
			return err
		}
		sec.arn = arn
		e.secrets = append(e.secrets, sec)
		e.targets = append(e.targets, target{name: sec.name, numbers: sec.numbers, waba: sec.waba, byWABA: sec.byWABA})
	}
	return nil
}

// attempt runs one plan: its faults on, a rotation, the check, then
// recovery through flowkey's commands, and every fault off at the end.
func (e *engine) attempt(ctx context.Context, p Plan) *Attempt {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	began := time.Now()
	sec := e.secrets[p.Secret]
	a := &Attempt{Plan: p, Secret: sec.name, Beyond2N: -1}
	b := e.newSwitchboard(sec, p)
	if err := b.startBefore(ctx); err != nil {
		a.note("turning faults on: %v", err)
	}
	seq := e.lastSeq()
	before := e.st.Graph.Calls()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		b.watch(watchCtx, sec.arn, seq, func(s string) { a.note("%s", s) })
	}()
	end, err := e.rotate(ctx, a, sec, p.ByCommand, seq)
	stopWatch()
	<-watched
	e.check(ctx, a, "after the rotation")
	calls := callsOf(sec, before, e.st.Graph.Calls())
	if err != nil {
		a.note("%v", err)
	} else {
		a.note("rotation %s %s; Graph calls %+v", end.Type, clip(end.Error), calls)
	}
	rotated := err == nil && end.Type == secretsemu.RotationSucceeded
	if rotated {
		a.Beyond2N, a.Lists = calls.Upload+calls.Get-2*len(sec.numbers), calls.List
	}
	if err := b.startAfter(ctx); err != nil {
		a.note("turning faults on after the rotation: %v", err)
	}
	healthy := e.recover(ctx, a, sec, b)
	switch {
	case !healthy:
		a.Outcome = OutcomeStuck
		e.res.Problems = append(e.res.Problems, fmt.Sprintf("seed %d %s: not healthy after %d recovery rounds (faults on: %s)",
			p.Seed, p.String(), maxRounds, strings.Join(b.stillOn(), "; ")))
	case rotated && a.Rounds == 0:
		a.Outcome = OutcomeRotated
	default:
		a.Outcome = OutcomeRecovered
	}
	if err := b.endRound(ctx, allOffRound); err != nil {
		a.note("turning faults off: %v", err)
	}
	a.Duration = time.Since(began)
	return a
}

// rotate starts the attempt's rotation, by RotateSecret (as the schedule
// does) or by the rotate command, and waits for its end.
func (e *engine) rotate(ctx context.Context, a *Attempt, sec *secret, byCommand bool, seq int64) (secretsemu.Event, error) {
	var token string
	if !byCommand || !sec.configured {
		tok, err := e.st.Rotate(ctx, sec.arn, true)
		var ire *smtypes.InvalidRequestException
		switch {
		case errors.As(err, &ire) && strings.Contains(err.Error(), "previous rotation isn't complete"):
			a.note("RotateSecret refused (a rotation is incomplete); rotating with the rotate command")
			byCommand = true
		case err != nil:
			return secretsemu.Event{}, fmt.Errorf("RotateSecret: %w", err)
		default:
			token, sec.configured, byCommand = tok, true, false
		}
	}
	if byCommand {
		r, err := e.rotateCommand(ctx, sec)
		if err != nil {
			return secretsemu.Event{}, err
		}
		e.checkRotate(ctx, a, sec, r)
		if !r.OK {
			return secretsemu.Event{}, fmt.Errorf("rotate answered %s: %s", r.Outcome, clip(r.Message))
		}
		a.note("rotate %s %s (cleared %q)", r.Outcome, r.VersionID, r.ClearedVersionID)
		token = r.VersionID
	}
	return e.waitRun(ctx, sec.arn, token, seq)
}

func callsOf(sec *secret, before, after graphsim.Calls) graphsim.OpCounts {
	var c graphsim.OpCounts
	objects := append([]string{sec.waba}, sec.numbers...)
	for _, o := range objects {
		a, b := after.Of(o), before.Of(o)
		c.Upload += a.Upload - b.Upload
		c.Get += a.Get - b.Get
		c.List += a.List - b.List
		c.Other += a.Other - b.Other
	}
	return c
}

// check waits until no Graph call can still change what Meta holds, then
// checks the invariant on every secret.
func (e *engine) check(ctx context.Context, a *Attempt, when string) {
	if !poll(ctx, quietTimeout, func() bool { return e.st.Graph.InFlight() == 0 }) {
		a.note("%s: checked with %d Graph calls still in flight", when, e.st.Graph.InFlight())
	}
	for _, sec := range e.secrets {
		o, err := e.observe(ctx, sec)
		if err != nil {
			a.note("%s: check of %s: %v", when, sec.name, err)
			continue
		}
		e.res.Checks++
		e.res.Places[o.place]++
		for _, p := range o.problems {
			e.violation(a, o, when, p)
		}
	}
}

func (e *engine) violation(a *Attempt, o *observation, when, problem string) {
	a.Violations++
	e.res.Violations = append(e.res.Violations, Violation{
		Seed: a.Plan.Seed, Attempt: a.Plan.Attempt, Secret: o.secret.name, When: when, Plan: a.Plan.String(),
		Problem: problem, Meta: o.held(), Labels: o.labels(), Trace: a.trace(),
	})
}

// final ends every fault, brings each secret back to healthy with
// flowkey's commands if an attempt left it otherwise, and rotates it once
// more: it must succeed with one upload and one read per number.
func (e *engine) final(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	if err := e.allOff(ctx); err != nil {
		e.res.Problems = append(e.res.Problems, "final: turning every fault off: "+err.Error())
	}
	for _, sec := range e.secrets {
		a := &Attempt{Plan: Plan{Seed: e.opts.Seed}, Secret: sec.name}
		f := Final{Secret: sec.name}
		none := e.newSwitchboard(sec, Plan{})
		if !e.recover(ctx, a, sec, none) {
			f.Detail = "not healthy before the final rotation: " + strings.Join(a.trace(), "; ")
			e.res.Final = append(e.res.Final, f)
			continue
		}
		seq, before := e.lastSeq(), e.st.Graph.Calls()
		end, err := e.rotate(ctx, a, sec, true, seq)
		e.check(ctx, a, "final rotation")
		calls := callsOf(sec, before, e.st.Graph.Calls())
		n := len(sec.numbers)
		f.Calls = calls
		switch {
		case err != nil:
			f.Detail = err.Error()
		case end.Type != secretsemu.RotationSucceeded:
			f.Detail = fmt.Sprintf("the rotation ended %s: %s", end.Type, end.Error)
		case calls.Upload != n || calls.Get != n:
			f.Detail = fmt.Sprintf("%d uploads and %d reads for %d numbers, want %d of each", calls.Upload, calls.Get, n, n)
		default:
			st, err := e.status(ctx, sec)
			switch {
			case err != nil:
				f.Detail = "status: " + err.Error()
			case !st.OK:
				f.Detail = "status after it: " + st.Overall + ": " + strings.Join(st.Reasons, "; ")
			default:
				f.OK = true
			}
		}
		if a.Violations > 0 {
			f.OK = false
			f.Detail = "the invariant broke: see the violations"
		}
		e.res.Final = append(e.res.Final, f)
	}
}
