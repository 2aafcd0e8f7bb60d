package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/operator"
)

// Recovery rounds. Before round r, the faults whose Keep is below r end
// (Keep is at most allOffRound-1); from allOffRound on every fault has
// ended, and the rounds after it give a resumed rotation and a resync
// their turn.
const (
	maxRounds   = 5
	allOffRound = 3
)

// recover brings the secret back to a healthy status with flowkey's own
// commands and the advice they print, nothing else: each round ends some
// faults, runs status, then rotate (an incomplete rotation: it resumes or
// clears as it decides) or resync (drift), and checks the invariant after
// every command. It reports whether status ended healthy.
func (e *engine) recover(ctx context.Context, a *Attempt, sec *secret, b *switchboard) bool {
	for round := 1; round <= maxRounds; round++ {
		if err := b.endRound(ctx, round); err != nil {
			a.note("round %d: turning faults off: %v", round, err)
		}
		st, err := e.status(ctx, sec)
		e.check(ctx, a, fmt.Sprintf("round %d, after status", round))
		if err != nil {
			a.note("round %d: %v", round, err)
			continue
		}
		e.checkStatus(ctx, a, sec, st, round)
		e.checkAdvice(ctx, a, sec, "status", strings.Join(st.Reasons, " "))
		switch st.Overall {
		case operator.Healthy:
			return true
		case operator.RotationIncomplete:
			a.Rounds++
			e.finishRotation(ctx, a, sec, round)
		default:
			a.Rounds++
			e.resyncRound(ctx, a, sec, round)
		}
	}
	return false
}

// checkStatus holds status to its own rule: never healthy while a
// rotation is incomplete or a number holds another key than AWSCURRENT's.
func (e *engine) checkStatus(ctx context.Context, a *Attempt, sec *secret, st *operator.StatusReport, round int) {
	if st.Overall != operator.Healthy {
		return
	}
	o, err := e.observe(ctx, sec)
	if err != nil {
		a.note("round %d: %v", round, err)
		return
	}
	var wrong []string
	if o.place != PendingAbsent && o.place != PendingOnCurrent {
		wrong = append(wrong, "AWSPENDING is "+o.place)
	}
	for n, der := range o.meta {
		if o.current == nil || o.current.der == nil || string(der) != string(o.current.der) {
			wrong = append(wrong, fmt.Sprintf("%s holds %s, not the AWSCURRENT key", n, fingerprint(der)))
		}
	}
	if len(wrong) > 0 {
		e.violation(a, o, fmt.Sprintf("round %d, status", round), "status answered healthy although "+strings.Join(wrong, "; "))
	}
}

// finishRotation runs rotate during an incomplete rotation and follows
// what it says.
func (e *engine) finishRotation(ctx context.Context, a *Attempt, sec *secret, round int) {
	seq := e.lastSeq()
	r, err := e.rotateCommand(ctx, sec)
	if err != nil {
		a.note("round %d: %v", round, err)
		e.check(ctx, a, fmt.Sprintf("round %d, after rotate", round))
		var fe *FunctionError
		if errors.As(err, &fe) {
			// An error's fix is advice too (put a label back, say).
			e.checkAdvice(ctx, a, sec, "rotate's error", fe.Message)
			e.followAdvice(ctx, a, sec, []string{fe.Message}, round)
		}
		return
	}
	e.checkRotate(ctx, a, sec, r)
	a.note("round %d: rotate %s %s (pending %s, holding it %d, unknown %d; cleared %q)", round, r.Outcome, r.VersionID, r.PendingVersionID, len(r.HoldingPending), len(r.Unknown), r.ClearedVersionID)
	switch r.Outcome {
	case operator.OutcomeStarted, operator.OutcomeResumed:
		ev, err := e.waitRun(ctx, sec.arn, r.VersionID, seq)
		if err != nil {
			a.note("round %d: %v", round, err)
		} else {
			a.note("round %d: the run ended %s %s", round, ev.Type, clip(ev.Error))
		}
		e.check(ctx, a, fmt.Sprintf("round %d, after the run rotate %s", round, r.Outcome))
	default:
		e.followAdvice(ctx, a, sec, r.Advice, round)
	}
}

func (e *engine) resyncRound(ctx context.Context, a *Attempt, sec *secret, round int) {
	r, err := e.resync(ctx, sec)
	e.check(ctx, a, fmt.Sprintf("round %d, after resync", round))
	if err != nil {
		a.note("round %d: %v", round, err)
		return
	}
	e.checkAdvice(ctx, a, sec, "resync", r.Message)
	a.note("round %d: resync %s (repaired %d, failed %d, skipped %d)", round, r.Outcome, r.Repaired, r.Failed, r.Skipped)
}

// advice is one action a report tells the operator to take.
type advice struct {
	step    json.RawMessage // a rotation step to invoke by hand
	remove  string          // remove AWSPENDING from this version
	restore string          // move AWSPENDING to this version
}

var (
	payloadRE = regexp.MustCompile(`--payload '(\{[^']*\})'`)
	labelRE   = regexp.MustCompile(`update-secret-version-stage [^;]*?--version-stage AWSPENDING [^;]*?--(remove-from|move-to)-version-id ([0-9A-Za-z-]+)`)
)

// parseAdvice reads the commands in a report's text, in order.
func parseAdvice(text string) []advice {
	type found struct {
		at int
		a  advice
	}
	var all []found
	for _, m := range payloadRE.FindAllStringSubmatchIndex(text, -1) {
		all = append(all, found{m[0], advice{step: json.RawMessage(text[m[2]:m[3]])}})
	}
	for _, m := range labelRE.FindAllStringSubmatchIndex(text, -1) {
		a := advice{restore: text[m[4]:m[5]]}
		if text[m[2]:m[3]] == "remove-from" {
			a = advice{remove: a.restore}
		}
		all = append(all, found{m[0], a})
	}
	slices.SortFunc(all, func(x, y found) int { return x.at - y.at })
	out := make([]advice, len(all))
	for i, f := range all {
		out[i] = f.a
	}
	return out
}

// checkAdvice is the rule that no report may break: never advise removing
// AWSPENDING from a version that holds a key, since that key may be at
// Meta and the version is the only place its private key is stored.
func (e *engine) checkAdvice(ctx context.Context, a *Attempt, sec *secret, from, text string) {
	for _, ad := range parseAdvice(text) {
		if ad.remove == "" {
			continue
		}
		v, err := e.readVersion(ctx, sec.arn, ad.remove)
		if err != nil {
			a.note("reading version %s: %v", ad.remove, err)
			continue
		}
		if v.der != nil {
			o, err := e.observe(ctx, sec)
			if err != nil {
				a.note("%v", err)
				continue
			}
			e.violation(a, o, from, fmt.Sprintf("%s advises removing AWSPENDING from version %s, which holds key %s", from, ad.remove, fingerprint(v.der)))
		}
	}
}

// checkRotate holds a rotate report to the rules: its advice never
// removes AWSPENDING from a version with a key, and neither does rotate
// itself when it clears an incomplete rotation.
func (e *engine) checkRotate(ctx context.Context, a *Attempt, sec *secret, r *operator.RotateReport) {
	e.checkAdvice(ctx, a, sec, "rotate", r.Message+" "+strings.Join(r.Advice, " "))
	if r.ClearedVersionID == "" {
		return
	}
	v, err := e.readVersion(ctx, sec.arn, r.ClearedVersionID)
	if err != nil {
		a.note("reading the cleared version %s: %v", r.ClearedVersionID, err)
		return
	}
	if v.der != nil {
		if o, err := e.observe(ctx, sec); err == nil {
			e.violation(a, o, "rotate", fmt.Sprintf("rotate cleared AWSPENDING from version %s, which holds key %s", v.id, fingerprint(v.der)))
		}
	}
}

// followAdvice does what a blocked rotate's advice says, in order: the
// steps by hand (each must return null, or the rest is not run) and any
// label change. Anything else it says (fix the cause, wait, run rotate
// again) is what the next round does.
func (e *engine) followAdvice(ctx context.Context, a *Attempt, sec *secret, lines []string, round int) {
	for _, line := range lines {
		if !strings.Contains(line, "by hand") && !strings.Contains(line, "update-secret-version-stage") {
			continue
		}
		for _, ad := range parseAdvice(line) {
			err := e.followOne(ctx, sec, ad)
			e.check(ctx, a, fmt.Sprintf("round %d, after advice %s", round, ad))
			if err != nil {
				a.note("round %d: advice %s: %v", round, ad, err)
				return
			}
			a.note("round %d: followed advice %s", round, ad)
		}
	}
}

func (e *engine) followOne(ctx context.Context, sec *secret, ad advice) error {
	switch {
	case ad.step != nil:
		return e.step(ctx, ad.step)
	case ad.remove != "":
		_, err := e.st.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(sec.arn), VersionStage: aws.String(stagePending), RemoveFromVersionId: aws.String(ad.remove)})
		return err
	case ad.restore != "":
		_, err := e.st.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(sec.arn), VersionStage: aws.String(stagePending), MoveToVersionId: aws.String(ad.restore)})
		return err
	}
	return errors.New("empty advice")
}

func (ad advice) String() string {
	switch {
	case ad.step != nil:
		var ev struct{ Step string }
		_ = json.Unmarshal(ad.step, &ev)
		return "invoke " + ev.Step
	case ad.remove != "":
		return "remove AWSPENDING from " + ad.remove
	}
	return "move AWSPENDING to " + ad.restore
}

// waitRun waits for the end of a run of rotation token recorded after seq:
// a resumed rotation has the token of the runs before it.
func (e *engine) waitRun(ctx context.Context, arn, token string, seq int64) (secretsemu.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	ev, err := e.st.Secrets.WaitEvent(ctx, func(ev secretsemu.Event) bool {
		if ev.Seq <= seq || ev.SecretARN != arn || ev.Token != token {
			return false
		}
		switch ev.Type {
		case secretsemu.RotationSucceeded, secretsemu.RotationAbandoned, secretsemu.RotationCancelled:
			return true
		case secretsemu.RotationFailed:
			return ev.Final
		}
		return false
	})
	if err != nil {
		return ev, fmt.Errorf("the rotation of version %s did not end: %w", token, err)
	}
	return ev, nil
}

func (e *engine) lastSeq() int64 {
	evs := e.st.Secrets.Events("")
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}
