package soak

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// revokedToken is what the token secret holds while a KindToken fault is
// on: a token the simulator refuses with code 190.
const revokedToken = "EAAG-soak-revoked-token"

// holdDelay is how long a kill's held Graph call waits, long enough for
// the kill to land while it is in flight.
const holdDelay = 3 * time.Second

// switched is one planned fault of an attempt and what turning it on did.
type switched struct {
	f  Fault
	on bool
	// graphID is the simulator's ID of a KindGraph fault, or of a kill's
	// held call.
	graphID int
}

// switchboard turns an attempt's faults on and off.
type switchboard struct {
	e      *engine
	sec    *secret
	faults []*switched
}

func (e *engine) newSwitchboard(sec *secret, p Plan) *switchboard {
	b := &switchboard{e: e, sec: sec}
	for _, f := range p.Faults {
		b.faults = append(b.faults, &switched{f: f})
	}
	return b
}

// startBefore turns on every fault that starts before the rotation.
func (b *switchboard) startBefore(ctx context.Context) error {
	var errs []error
	for _, s := range b.faults {
		switch {
		case s.f.Kind == KindKill && s.f.MidCall:
			op := graphsim.OpUpload
			if s.f.When == "testSecret" {
				op = graphsim.OpGet
			}
			id, err := b.e.st.Graph.AddFault(graphsim.Fault{Op: op, Kind: graphsim.FaultDelay, Delay: holdDelay, Times: 1})
			s.graphID = id
			errs = append(errs, err)
		case s.f.Kind == KindKill, s.f.When == WhenAfterSet, s.f.When == WhenCreate, s.f.When == WhenAfter:
			// Started by the watcher, on the rotation's events, or by
			// startAfter.
		default:
			errs = append(errs, b.turnOn(ctx, s))
		}
	}
	return errors.Join(errs...)
}

// startAfter turns on the faults that start once the rotation has ended.
func (b *switchboard) startAfter(ctx context.Context) error {
	var errs []error
	for _, s := range b.faults {
		if s.f.When == WhenAfter {
			errs = append(errs, b.turnOn(ctx, s))
		}
	}
	return errors.Join(errs...)
}

func (b *switchboard) turnOn(ctx context.Context, s *switched) error {
	g := b.e.st.Graph
	var err error
	switch s.f.Kind {
	case KindGraph:
		s.graphID, err = g.AddFault(s.f.Graph)
	case KindLag:
		for _, n := range s.f.Numbers {
			err = errors.Join(err, g.SetLag(n, s.f.Dur))
		}
	case KindMismatch:
		for _, n := range s.f.Numbers {
			err = errors.Join(err, g.SetMismatch(n, true))
		}
	case KindReregister:
		for _, n := range s.f.Numbers {
			err = errors.Join(err, g.Reregister(n))
		}
	case KindBudget:
		err = g.SetBudget(s.f.Budget)
	case KindLatency:
		err = g.SetLatency(s.f.Dur)
	case KindToken:
		err = b.e.putToken(ctx, revokedToken)
	case KindKMS:
		b.e.stopKMS()
	}
	s.on = err == nil
	return err
}

// turnOff ends a fault. A re-registration and a kill end by themselves.
func (b *switchboard) turnOff(ctx context.Context, s *switched) error {
	if !s.on && s.graphID == 0 {
		return nil
	}
	s.on = false
	g := b.e.st.Graph
	var err error
	switch s.f.Kind {
	case KindGraph, KindKill:
		if s.graphID != 0 {
			g.RemoveFault(s.graphID)
			s.graphID = 0
		}
	case KindLag:
		for _, n := range s.f.Numbers {
			err = errors.Join(err, g.SetLag(n, 0))
		}
	case KindMismatch:
		for _, n := range s.f.Numbers {
			err = errors.Join(err, g.SetMismatch(n, false))
		}
	case KindBudget:
		b := s.f.Budget
		b.Limit = 0
		err = g.SetBudget(b)
	case KindLatency:
		err = g.SetLatency(0)
	case KindToken:
		err = b.e.putToken(ctx, b.e.token)
	case KindKMS:
		err = b.e.startKMS(ctx)
	}
	return err
}

// endRound turns off, before recovery round round (from 1), every fault
// whose Keep is less than round; from allOffRound on, every fault.
func (b *switchboard) endRound(ctx context.Context, round int) error {
	var errs []error
	for _, s := range b.faults {
		if s.f.Keep < round || round >= allOffRound {
			errs = append(errs, b.turnOff(ctx, s))
		}
	}
	return errors.Join(errs...)
}

// stillOn lists the faults still on, for the attempt's trace.
func (b *switchboard) stillOn() []string {
	var out []string
	for _, s := range b.faults {
		if s.on {
			out = append(out, s.f.String())
		}
	}
	return out
}

// watch runs the faults that start on the rotation's events, one after
// the other, until ctx ends (when the rotation has ended). It reports what
// it did to note. Only it touches the switchboard meanwhile.
func (b *switchboard) watch(ctx context.Context, arn string, afterSeq int64, note func(string)) {
	var waiting []*switched
	for _, s := range b.faults {
		if s.f.Kind == KindKill || s.f.When == WhenAfterSet || s.f.When == WhenCreate || s.f.Restart == RestartBetweenRuns {
			waiting = append(waiting, s)
		}
	}
	seq := afterSeq
	for len(waiting) > 0 {
		ev, err := b.e.st.Secrets.WaitEvent(ctx, func(ev secretsemu.Event) bool { return ev.Seq > seq && ev.SecretARN == arn })
		if err != nil {
			return
		}
		seq = ev.Seq
		rest := waiting[:0]
		for _, s := range waiting {
			if done := b.onEvent(ctx, s, ev, note); !done {
				rest = append(rest, s)
			}
		}
		waiting = rest
	}
}

// onEvent acts on one rotation event for fault s and reports whether s is
// done with.
func (b *switchboard) onEvent(ctx context.Context, s *switched, ev secretsemu.Event, note func(string)) bool {
	firstRun := ev.Attempt == 1
	switch {
	case s.f.Kind == KindKill && ev.Type == secretsemu.StepStarted && ev.Step == s.f.When && firstRun:
		note(b.kill(ctx, s, ev))
		return true
	case s.f.When == WhenAfterSet && ev.Type == secretsemu.StepSucceeded && ev.Step == "setSecret" && firstRun:
		note(fmt.Sprintf("%s: on", s.f))
		_ = b.turnOn(ctx, s)
		return true
	case s.f.Kind == KindKMS && s.f.When == WhenCreate && !s.on && ev.Type == secretsemu.StepStarted && ev.Step == "createSecret" && firstRun:
		note("local-kms stopped at createSecret")
		_ = b.turnOn(ctx, s)
		return s.f.Restart != RestartBetweenRuns
	case s.f.Kind == KindKMS && s.f.Restart == RestartBetweenRuns && s.on && ev.Type == secretsemu.RotationFailed && !ev.Final:
		note("local-kms restarted between the rotation's runs")
		_ = b.turnOff(ctx, s)
		return true
	}
	return false
}

// kill kills the bootstrap during the step that started with ev: while its
// held Graph call is in flight (MidCall), or Jitter after it started.
// Steps take milliseconds, so a jittered kill may find the step ended and
// the runtime idle; the RIE then fails the next invocation, as an
// invocation can fail before it runs. A rotation that has ended is left
// alone.
func (b *switchboard) kill(ctx context.Context, s *switched, ev secretsemu.Event) string {
	if s.f.MidCall {
		held := func() bool { return b.e.st.Graph.InFlight() > 0 }
		if !poll(ctx, holdDelay, held) {
			return "kill in " + s.f.When + ": no Graph call was in flight; killed anyway"
		}
	} else if !sleep(ctx, s.f.Jitter) {
		return "kill in " + s.f.When + ": the rotation ended first"
	}
	stepEnded, rotationEnded := false, false
	for _, x := range b.e.st.Secrets.Events(ev.SecretARN) {
		if x.Seq <= ev.Seq || x.Token != ev.Token {
			continue
		}
		stepEnded = stepEnded || x.Step == ev.Step && (x.Type == secretsemu.StepSucceeded || x.Type == secretsemu.StepFailed)
		rotationEnded = rotationEnded || x.Type == secretsemu.RotationSucceeded || x.Type == secretsemu.RotationFailed && x.Final
	}
	if rotationEnded {
		return "kill in " + s.f.When + ": the rotation ended first"
	}
	if err := b.e.st.KillBootstrap(); err != nil {
		return "kill in " + s.f.When + ": " + err.Error()
	}
	if stepEnded {
		return "bootstrap killed after " + s.f.When + " ended, between invocations"
	}
	return "bootstrap killed in " + s.f.When
}

// allOff ends every fault the stack can have, planned or left over, so
// that the final rotations run on a quiet stack.
func (e *engine) allOff(ctx context.Context) error {
	g := e.st.Graph
	g.ClearFaults()
	errs := []error{g.SetLag("", 0), g.SetMismatch("", false), g.SetLatency(0)}
	for _, sec := range e.secrets {
		errs = append(errs, g.SetBudget(graphsim.Budget{WABA: sec.waba}))
	}
	errs = append(errs, e.putToken(ctx, e.token), e.startKMS(ctx))
	return errors.Join(errs...)
}

func (e *engine) putToken(ctx context.Context, token string) error {
	if e.tokenNow == token {
		return nil
	}
	if _, err := e.st.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(stack.TokenSecretName), SecretString: aws.String(token),
	}); err != nil {
		return fmt.Errorf("put the token secret: %w", err)
	}
	e.tokenNow = token
	return nil
}

func (e *engine) stopKMS() {
	if !e.kmsDown {
		e.st.StopKMS()
		e.kmsDown = true
	}
}

func (e *engine) startKMS(ctx context.Context) error {
	if !e.kmsDown {
		return nil
	}
	if err := e.st.StartKMS(ctx); err != nil {
		return fmt.Errorf("restart local-kms: %w", err)
	}
	e.kmsDown = false
	return nil
}

// poll checks cond every few milliseconds until it holds (true) or d
// passes or ctx ends (false): for states the stack has no event for.
func poll(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// sleep waits d (a planned fault's timing, not a synchronisation) and
// reports whether ctx was still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
