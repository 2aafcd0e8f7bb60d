package secretsemu

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxStepDuration bounds one step: no Lambda invocation runs longer.
const maxStepDuration = 15 * time.Minute

// The four rotation steps, in the order Secrets Manager runs them.
var rotationSteps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// rotation is one RotateSecret the driver is running. Its fields after
// stop are guarded by Server.mu.
type rotation struct {
	sec           *secret
	arn           string
	token         string // the new version's id, the event's ClientRequestToken
	rotationToken string
	lambda        string
	testOnly      bool
	attempt       int

	stopped bool
	stop    chan struct{} // closed when stopped
}

// rotationEvent is the payload of each invocation.
type rotationEvent struct {
	Step               string `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken"`
}

type rotateSecretInput struct {
	SecretId           string
	ClientRequestToken *string
	RotationLambdaARN  *string
	RotationRules      *rotationRules
	RotateImmediately  *bool
}

type rotateSecretOutput struct {
	ARN       string
	Name      string
	VersionId string
}

// validateRotateInput checks what RotateSecret can check without the secret,
// and returns the schedule of in.RotationRules (the zero schedule without).
func validateRotateInput(in rotateSecretInput, now time.Time) (schedule, error) {
	if in.ClientRequestToken != nil {
		if err := validateToken(*in.ClientRequestToken); err != nil {
			return schedule{}, err
		}
	}
	if in.RotationLambdaARN != nil {
		if a := *in.RotationLambdaARN; !strings.HasPrefix(a, "arn:") || len(a) > maxLambdaARNLen {
			return schedule{}, errInvalidParameter(fmt.Sprintf(
				"RotationLambdaARN %q is not a Lambda function ARN like arn:aws:lambda:us-east-1:123456789012:function:rotator.", a))
		}
	}
	if in.RotationRules == nil {
		return schedule{}, nil
	}
	return validateRules(*in.RotationRules, now)
}

func (s *Server) rotateSecret(in rotateSecretInput) (any, error) {
	if s.invoker == nil {
		return nil, errInvalidRequest("This emulator has no Lambda invoker (secretsemu.Options.Invoker is nil), so it can't run a rotation function.")
	}
	now := s.now()
	sch, err := validateRotateInput(in, now)
	if err != nil {
		return nil, err
	}
	immediate := in.RotateImmediately == nil || *in.RotateImmediately

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errInvalidRequest("This emulator is closed; it no longer runs rotations.")
	}
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	lambda := sec.lambdaARN
	if in.RotationLambdaARN != nil {
		lambda = *in.RotationLambdaARN
	}
	if lambda == "" {
		return nil, errInvalidRequest(msgNoRotationLambda)
	}
	tok, how, err := s.rotationVersionLocked(sec, in.ClientRequestToken, immediate)
	switch {
	case err != nil:
		return nil, err
	case how == retriedRequest:
		return rotateSecretOutput{ARN: sec.arn, Name: sec.name, VersionId: tok}, nil
	}
	rotTok, err := s.newID()
	if err != nil {
		return nil, err
	}
	if sec.rot != nil {
		// Its AWSPENDING was removed by hand while it waited or ran.
		s.stopLocked(sec.rot, RotationAbandoned, "a new rotation started after AWSPENDING was removed from version "+sec.rot.token)
	}

	sec.rotationSet, sec.rotationEnabled = true, true
	sec.lambdaARN = lambda
	if in.RotationRules != nil {
		rules := *in.RotationRules
		sec.rules, sec.sched = &rules, sch
	}
	sec.nextRotation, _ = sec.sched.next(now)
	sec.lastChanged = now

	if how == newVersion {
		v := &version{id: tok, created: now}
		if cur := sec.holder(stageCurrent); !immediate && cur != nil && cur.value != nil {
			// The configuration test runs testSecret on a copy of the current value.
			cp := *cur.value
			v.value = &cp
		}
		sec.versions = append(sec.versions, v)
		sec.attach(stagePending, v)
	}

	r := &rotation{sec: sec, arn: sec.arn, token: tok, rotationToken: rotTok, lambda: lambda, testOnly: !immediate, stop: make(chan struct{})}
	sec.rot = r
	s.wg.Add(1)
	go s.drive(r)
	return rotateSecretOutput{ARN: sec.arn, Name: sec.name, VersionId: tok}, nil
}

// How a RotateSecret treats the version it rotates.
type rotationStart int

const (
	newVersion     rotationStart = iota // a new rotation on a new version
	resumeVersion                       // a new run of the incomplete rotation, on its version
	retriedRequest                      // a run of that rotation is going: nothing starts
)

// rotationVersionLocked decides which version a RotateSecret rotates, and
// how. The caller holds s.mu.
func (s *Server) rotationVersionLocked(sec *secret, reqTok *string, immediate bool) (string, rotationStart, error) {
	p := sec.pendingIncomplete()
	if p == nil {
		tok, err := s.tokenOrNew(reqTok)
		if err != nil {
			return "", newVersion, err
		}
		if sec.version(tok) != nil {
			return "", newVersion, errInvalidParameter(fmt.Sprintf(
				"ClientRequestToken %s is already the id of a version of this secret; a rotation needs a new one.", tok))
		}
		return tok, newVersion, nil
	}
	// flowkey's reading of AWS's documentation: the ClientRequestToken
	// "prevents the accidental creation of duplicate versions if there are
	// failures and retries during rotation", so RotateSecret with the
	// incomplete rotation's token runs that rotation again on its version
	// instead of refusing. AWS does not say so in as many words; flowkey's
	// rotate command handles a refusal too. Only a full rotation resumes: a
	// test-only run removes its pending version afterwards.
	if reqTok == nil || *reqTok != p.id || !immediate {
		return "", newVersion, errInvalidRequest(msgRotationIncomplete)
	}
	if sec.rot != nil && sec.rot.token == p.id {
		// Running, or waiting for its reattempt.
		return p.id, retriedRequest, nil
	}
	return p.id, resumeVersion, nil
}

type cancelRotateSecretOutput struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

// cancelRotateSecret turns rotation off and stops the driver after the step
// it is running, if any. Like AWS it leaves AWSPENDING where it is.
func (s *Server) cancelRotateSecret(in secretIDInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	sec.rotationSet, sec.rotationEnabled = true, false
	sec.nextRotation = time.Time{}
	sec.lastChanged = s.now()
	if sec.rot != nil {
		s.stopLocked(sec.rot, RotationCancelled, "CancelRotateSecret")
	}
	out := cancelRotateSecretOutput{ARN: sec.arn, Name: sec.name}
	if p := sec.pendingIncomplete(); p != nil {
		out.VersionId = &p.id
	}
	return out, nil
}

// stopLocked ends a rotation: no further step or reattempt. The caller holds s.mu.
func (s *Server) stopLocked(r *rotation, typ EventType, reason string) {
	if r.stopped {
		return
	}
	s.endLocked(r)
	s.record(Event{Type: typ, SecretARN: r.arn, Token: r.token, Attempt: r.attempt, Error: reason, TestOnly: r.testOnly})
}

// endLocked marks r finished and releases the secret for a new rotation.
// The caller holds s.mu.
func (s *Server) endLocked(r *rotation) {
	r.stopped = true
	close(r.stop)
	if r.sec.rot == r {
		r.sec.rot = nil
	}
	if r.testOnly {
		s.dropTestVersionLocked(r)
	}
}

// abandonLocked records that an incomplete rotation was replaced by hand.
// The caller holds s.mu and has removed AWSPENDING.
func (s *Server) abandonLocked(sec *secret, token, reason string) {
	if sec.rot != nil && sec.rot.token == token {
		s.stopLocked(sec.rot, RotationAbandoned, reason)
		return
	}
	s.record(Event{Type: RotationAbandoned, SecretARN: sec.arn, Token: token, Error: reason})
}

// dropTestVersionLocked removes the pending copy a RotateImmediately=false
// test created: "The test creates an AWSPENDING version of the secret and
// then removes it." The caller holds s.mu.
func (s *Server) dropTestVersionLocked(r *rotation) {
	v := r.sec.version(r.token)
	if v == nil {
		return
	}
	v.remove(stagePending)
	if len(v.stages) == 0 {
		r.sec.versions = slices.DeleteFunc(r.sec.versions, func(x *version) bool { return x == v })
	}
}

// outcome of one attempt.
type outcome int

const (
	succeeded outcome = iota
	failed
	interrupted // stopped, abandoned or closed: record nothing more
)

// drive runs a rotation: every step in order, and on a failed step the whole
// rotation again with the same token after RetryDelay, up to
// RotationAttempts attempts. It never holds s.mu while invoking.
func (s *Server) drive(r *rotation) {
	defer s.wg.Done()
	steps, attempts := rotationSteps, s.attempts
	if r.testOnly {
		steps, attempts = []string{"testSecret"}, 1
	}
	for attempt := 1; ; attempt++ {
		if !s.beginAttempt(r, attempt) {
			return
		}
		res, step, msg := s.runSteps(r, steps)
		if res == succeeded {
			res, step, msg = s.complete(r)
		}
		if res != failed {
			return
		}
		final := attempt >= attempts
		s.mu.Lock()
		if r.stopped || s.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		if final {
			s.endLocked(r)
		}
		s.record(Event{Type: RotationFailed, SecretARN: r.arn, Token: r.token, Attempt: attempt, Step: step, Error: msg, Final: final, TestOnly: r.testOnly})
		s.mu.Unlock()
		if final {
			return
		}
		t := time.NewTimer(s.retryDelay)
		select {
		case <-t.C:
		case <-r.stop:
			t.Stop()
			return
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// beginAttempt checks the rotation may go on and records RotationStarted.
func (s *Server) beginAttempt(r *rotation, attempt int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.stopped || s.ctx.Err() != nil {
		return false
	}
	if v := r.sec.version(r.token); v == nil || (!v.has(stagePending) && !v.has(stageCurrent)) {
		// The operator cleared the stuck rotation by removing AWSPENDING.
		s.stopLocked(r, RotationAbandoned, "AWSPENDING was removed from version "+r.token+" before the reattempt")
		return false
	}
	r.attempt = attempt
	s.record(Event{Type: RotationStarted, SecretARN: r.arn, Token: r.token, Attempt: attempt, TestOnly: r.testOnly})
	return true
}

// runSteps invokes each step in turn and stops at the first failure.
func (s *Server) runSteps(r *rotation, steps []string) (outcome, string, string) {
	for _, step := range steps {
		s.mu.Lock()
		if r.stopped || s.ctx.Err() != nil {
			s.mu.Unlock()
			return interrupted, "", ""
		}
		attempt := r.attempt
		s.record(Event{Type: StepStarted, SecretARN: r.arn, Token: r.token, Attempt: attempt, Step: step, TestOnly: r.testOnly})
		s.mu.Unlock()

		payload, err := json.Marshal(rotationEvent{Step: step, SecretID: r.arn, ClientRequestToken: r.token, RotationToken: r.rotationToken})
		if err != nil {
			return failed, step, "encoding the rotation event: " + err.Error()
		}
		ctx, cancel := context.WithTimeout(s.ctx, maxStepDuration)
		start := time.Now()
		_, err = s.invoker.Invoke(ctx, r.lambda, payload)
		took := time.Since(start)
		cancel()
		if s.ctx.Err() != nil {
			return interrupted, "", ""
		}
		ev := Event{Type: StepSucceeded, SecretARN: r.arn, Token: r.token, Attempt: attempt, Step: step, Duration: took, TestOnly: r.testOnly}
		if err != nil {
			ev.Type, ev.Error = StepFailed, err.Error()
		}
		s.record(ev)
		if err != nil {
			return failed, step, err.Error()
		}
	}
	return succeeded, "", ""
}

// complete settles a run whose steps all succeeded.
func (s *Server) complete(r *rotation) (outcome, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.stopped || s.ctx.Err() != nil {
		return interrupted, "", ""
	}
	v := r.sec.version(r.token)
	if r.testOnly {
		s.endLocked(r)
		s.record(Event{Type: RotationSucceeded, SecretARN: r.arn, Token: r.token, Attempt: r.attempt, TestOnly: true})
		return succeeded, "", ""
	}
	if v == nil || !v.has(stageCurrent) {
		return failed, "finishSecret", fmt.Sprintf(
			"finishSecret succeeded but AWSCURRENT is not on version %s: the function must call UpdateSecretVersionStage(AWSCURRENT, MoveToVersionId=%s)", r.token, r.token)
	}
	now := s.now()
	r.sec.lastRotated = now
	if r.sec.rotationEnabled {
		r.sec.nextRotation, _ = r.sec.sched.next(now)
	}
	s.endLocked(r)
	s.record(Event{Type: RotationSucceeded, SecretARN: r.arn, Token: r.token, Attempt: r.attempt})
	return succeeded, "", ""
}
