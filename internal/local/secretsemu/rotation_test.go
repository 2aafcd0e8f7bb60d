package secretsemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const lambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:rotator"

// fakeRotator is a rotation function written like AWS's template, acting on
// the emulator through the SDK exactly as the real bootstrap does.
type fakeRotator struct {
	client *secretsmanager.Client

	mu       sync.Mutex
	received []rotationEvent
	failures map[string]int // step → how many more times it fails
	// gate, when set, holds the first invocation until it is closed.
	gate chan struct{}
	// onFail runs before a scripted failure is returned.
	onFail func(ev rotationEvent)
	// testSaw is the AWSPENDING value testSecret read.
	testSaw []string
}

func (f *fakeRotator) Invoke(ctx context.Context, _ string, payload []byte) ([]byte, error) {
	var ev rotationEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.received = append(f.received, ev)
	gate := f.gate
	f.gate = nil
	fail := f.failures[ev.Step] > 0
	if fail {
		f.failures[ev.Step]--
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		if f.onFail != nil {
			f.onFail(ev)
		}
		return nil, &FunctionError{Type: "errorString", Message: ev.Step + " refused by the test"}
	}
	return nil, f.step(ctx, ev)
}

func (f *fakeRotator) step(ctx context.Context, ev rotationEvent) error {
	d, err := f.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
	if err != nil {
		return err
	}
	if !aws.ToBool(d.RotationEnabled) {
		return errors.New("rotation is not enabled")
	}
	stages, ok := d.VersionIdsToStages[ev.ClientRequestToken]
	switch {
	case !ok:
		return errors.New("token is not a version of the secret")
	case slices.Contains(stages, "AWSCURRENT"):
		return nil
	case !slices.Contains(stages, "AWSPENDING"):
		return errors.New("token is not AWSPENDING")
	}
	pending := &secretsmanager.GetSecretValueInput{SecretId: aws.String(ev.SecretID), VersionId: aws.String(ev.ClientRequestToken), VersionStage: aws.String("AWSPENDING")}
	switch ev.Step {
	case "createSecret":
		_, err := f.client.GetSecretValue(ctx, pending)
		if err == nil {
			return nil
		}
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			return err
		}
		_, err = f.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(ev.SecretID), ClientRequestToken: aws.String(ev.ClientRequestToken),
			SecretString: aws.String("value-" + ev.ClientRequestToken), VersionStages: []string{"AWSPENDING"},
			RotationToken: aws.String(ev.RotationToken),
		})
		return err
	case "setSecret":
		return nil
	case "testSecret":
		out, err := f.client.GetSecretValue(ctx, pending)
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.testSaw = append(f.testSaw, aws.ToString(out.SecretString))
		f.mu.Unlock()
		return nil
	case "finishSecret":
		current := ""
		for id, st := range d.VersionIdsToStages {
			if slices.Contains(st, "AWSCURRENT") {
				current = id
			}
		}
		_, err := f.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(ev.SecretID), VersionStage: aws.String("AWSCURRENT"),
			MoveToVersionId: aws.String(ev.ClientRequestToken), RemoveFromVersionId: aws.String(current),
		})
		return err
	}
	return fmt.Errorf("unknown step %q", ev.Step)
}

func (f *fakeRotator) steps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, ev := range f.received {
		s = append(s, ev.Step)
	}
	return s
}

// rotEmu is an emulator whose Invoker is a fakeRotator using its own client.
func rotEmu(t *testing.T, opts Options) (*emu, *fakeRotator) {
	f := &fakeRotator{failures: map[string]int{}}
	opts.Invoker = f
	e := newEmu(t, opts)
	f.client = e.client
	return e, f
}

func (e *emu) waitEvent(t *testing.T, arn string, typ EventType, attempt int) Event {
	t.Helper()
	ev, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool {
		return ev.SecretARN == arn && ev.Type == typ && (attempt == 0 || ev.Attempt == attempt)
	})
	if err != nil {
		t.Fatalf("waiting for %s (attempt %d): %v; events so far:\n%s", typ, attempt, err, timeline(e.srv.Events(arn)))
	}
	return ev
}

func timeline(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %d %s attempt=%d step=%s final=%v err=%q\n", ev.Seq, ev.Type, ev.Attempt, ev.Step, ev.Final, ev.Error)
	}
	return b.String()
}

// kinds lists "Type/step" for a compact comparison of timelines.
func kinds(evs []Event) []string {
	var k []string
	for _, ev := range evs {
		s := string(ev.Type)
		if ev.Step != "" {
			s += "/" + ev.Step
		}
		k = append(k, s)
	}
	return k
}

var cleanRun = []string{
	"RotationStarted",
	"StepStarted/createSecret", "StepSucceeded/createSecret",
	"StepStarted/setSecret", "StepSucceeded/setSecret",
	"StepStarted/testSecret", "StepSucceeded/testSecret",
	"StepStarted/finishSecret", "StepSucceeded/finishSecret",
	"RotationSucceeded",
}

// checkWhileTheFirstStepIsHeld: RotateSecret has returned while the first
// step of rotation tok is still held. The new version exists, empty, with
// AWSPENDING, and the secret refuses another rotation and a stranger's
// RotationToken, but takes the same RotateSecret again.
func checkWhileTheFirstStepIsHeld(t *testing.T, e *emu, arn, v1, tok string) {
	t.Helper()
	e.waitEvent(t, arn, StepStarted, 1)
	if want := map[string][]string{v1: {"AWSCURRENT"}, tok: {"AWSPENDING"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("before createSecret: %v, want %v", e.stages(t, arn), want)
	}
	_, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(tok), VersionStage: aws.String("AWSPENDING")})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPENDING")
	_, err = e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn)})
	wantAPIError(t, err, "InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted.")
	again, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(tok)})
	if err != nil || aws.ToString(again.VersionId) != tok {
		t.Errorf("a retried RotateSecret with the same token: %v %+v", err, again)
	}
	_, err = e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(tok),
		SecretString: aws.String("x"), VersionStages: []string{"AWSPENDING"}, RotationToken: aws.String("not-the-rotation-token")})
	wantAPIError(t, err, "InvalidRequestException", "The RotationToken doesn't match the rotation in progress")
}

func TestRotationFullCycle(t *testing.T) {
	e, f := rotEmu(t, Options{})
	arn, v1 := e.create(t, "flowkey/key", "first")
	gate := make(chan struct{})
	f.gate = gate
	tok := token("rotation-1")
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{
		SecretId: aws.String("flowkey/key"), ClientRequestToken: aws.String(tok), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("4h")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != tok || aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "flowkey/key" {
		t.Fatalf("RotateSecret = %+v", out)
	}

	checkWhileTheFirstStepIsHeld(t, e, arn, v1, tok)
	close(gate)

	done := e.waitEvent(t, arn, RotationSucceeded, 0)
	if got := kinds(e.srv.Events(arn)); !slices.Equal(got, cleanRun) {
		t.Errorf("timeline:\n%s", timeline(e.srv.Events(arn)))
	}
	for _, ev := range e.srv.Events(arn) {
		if ev.Token != tok || ev.Attempt != 1 || ev.SecretARN != arn || ev.Time.IsZero() {
			t.Errorf("event %+v: want token %s, attempt 1, ARN and time", ev, tok)
		}
		if ev.Type == StepSucceeded && ev.Duration <= 0 {
			t.Errorf("%s/%s has no duration", ev.Type, ev.Step)
		}
	}
	f.mu.Lock()
	received := slices.Clone(f.received)
	f.mu.Unlock()
	if got := f.steps(); !slices.Equal(got, rotationSteps) {
		t.Errorf("function saw steps %v, want %v", got, rotationSteps)
	}
	for _, ev := range received {
		if ev.SecretID != arn || ev.ClientRequestToken != tok || ev.RotationToken == "" || ev.RotationToken != received[0].RotationToken {
			t.Errorf("event %+v: want SecretId %s, token %s and one RotationToken for the whole rotation", ev, arn, tok)
		}
	}

	d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, tok: {"AWSCURRENT", "AWSPENDING"}}; !equalStages(d.VersionIdsToStages, want) {
		t.Errorf("after the rotation: %v, want %v", d.VersionIdsToStages, want)
	}
	now := e.clock.Now()
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != lambdaARN ||
		d.LastRotatedDate == nil || !d.LastRotatedDate.Equal(now) || !done.Time.Equal(now) ||
		d.NextRotationDate == nil || !d.NextRotationDate.Equal(now.Add(10*24*time.Hour)) {
		t.Errorf("rotation fields: enabled %v lambda %v last %v next %v", d.RotationEnabled, d.RotationLambdaARN, d.LastRotatedDate, d.NextRotationDate)
	}
	if got := e.value(t, arn, "AWSCURRENT"); got != "value-"+tok {
		t.Errorf("AWSCURRENT = %q", got)
	}

	// AWSPENDING on the current version is a finished rotation: the next
	// one may start, with the stored function and rules, and a new token.
	e.clock.Add(time.Hour)
	out2, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	tok2 := aws.ToString(out2.VersionId)
	ev2, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool { return ev.Type == RotationSucceeded && ev.Token == tok2 })
	if err != nil || tok2 == tok || len(tok2) != 36 {
		t.Fatalf("second rotation %s: %v %+v", tok2, err, ev2)
	}
	if want := map[string][]string{tok: {"AWSPREVIOUS"}, tok2: {"AWSCURRENT", "AWSPENDING"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("after the second rotation: %v, want %v", e.stages(t, arn), want)
	}
}

func TestRotationFailedStepIsReattemptedWithTheSameToken(t *testing.T) {
	e, f := rotEmu(t, Options{RetryDelay: time.Millisecond})
	arn, v1 := e.create(t, "s", "first")
	f.failures["setSecret"] = 1
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(out.VersionId)
	e.waitEvent(t, arn, RotationSucceeded, 2)
	want := append([]string{
		"RotationStarted",
		"StepStarted/createSecret", "StepSucceeded/createSecret",
		"StepStarted/setSecret", "StepFailed/setSecret",
		"RotationFailed/setSecret",
	}, cleanRun...)
	evs := e.srv.Events(arn)
	if !slices.Equal(kinds(evs), want) {
		t.Fatalf("timeline:\n%s", timeline(evs))
	}
	failedStep, failed := evs[4], evs[5]
	if failedStep.Error != "function error errorString: setSecret refused by the test" || failedStep.Duration <= 0 {
		t.Errorf("StepFailed = %+v", failedStep)
	}
	if failed.Attempt != 1 || failed.Final || failed.Error != failedStep.Error {
		t.Errorf("RotationFailed = %+v", failed)
	}
	for _, ev := range evs {
		if ev.Token != tok {
			t.Errorf("%s carries token %s, want %s", ev.Type, ev.Token, tok)
		}
	}
	if got := f.steps(); !slices.Equal(got, append([]string{"createSecret", "setSecret"}, rotationSteps...)) {
		t.Errorf("function saw %v", got)
	}
	f.mu.Lock()
	tokens := map[string]bool{}
	rotTokens := map[string]bool{}
	for _, ev := range f.received {
		tokens[ev.ClientRequestToken], rotTokens[ev.RotationToken] = true, true
	}
	f.mu.Unlock()
	if len(tokens) != 1 || len(rotTokens) != 1 {
		t.Errorf("a reattempt changed ClientRequestToken %v or RotationToken %v", tokens, rotTokens)
	}
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, tok: {"AWSCURRENT", "AWSPENDING"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("stages %v, want %v", e.stages(t, arn), want)
	}
}

func TestRotationGivesUpAfterTheLastAttempt(t *testing.T) {
	e, f := rotEmu(t, Options{RotationAttempts: 2, RetryDelay: time.Millisecond})
	arn, v1 := e.create(t, "s", "first")
	f.failures["testSecret"] = 99
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(out.VersionId)
	final := e.waitEvent(t, arn, RotationFailed, 2)
	if !final.Final || final.Step != "testSecret" || !strings.Contains(final.Error, "testSecret refused") {
		t.Errorf("last RotationFailed = %+v", final)
	}
	e.srv.Close() // waits for the driver: nothing may follow the final failure
	for _, ev := range e.srv.Events(arn) {
		if ev.Attempt > 2 || ev.Type == RotationSucceeded {
			t.Errorf("after the last attempt: %+v", ev)
		}
	}
	if n := strings.Count(strings.Join(f.steps(), ","), "createSecret"); n != 2 {
		t.Errorf("createSecret ran %d times, want 2", n)
	}

	// The rotation is incomplete: its version keeps AWSPENDING and blocks the next.
	if want := map[string][]string{v1: {"AWSCURRENT"}, tok: {"AWSPENDING"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("stages %v, want %v", e.stages(t, arn), want)
	}
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if !aws.ToBool(d.RotationEnabled) || d.LastRotatedDate != nil {
		t.Errorf("after a failed rotation: enabled %v, last rotated %v", d.RotationEnabled, d.LastRotatedDate)
	}
}

func TestPutSecretValueAbandonsAnIncompleteRotation(t *testing.T) {
	e, f := rotEmu(t, Options{RotationAttempts: 1})
	arn, v1 := e.create(t, "s", "first")
	f.failures["setSecret"] = 1
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(out.VersionId)
	e.waitEvent(t, arn, RotationFailed, 1)
	_, err = e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn)})
	wantAPIError(t, err, "InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted.")

	manual := token("by-hand")
	e.put(t, arn, manual, "written by an operator")
	ab := e.waitEvent(t, arn, RotationAbandoned, 0)
	if ab.Token != tok || !strings.Contains(ab.Error, "PutSecretValue moved AWSCURRENT") {
		t.Errorf("RotationAbandoned = %+v", ab)
	}
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, manual: {"AWSCURRENT"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("stages %v, want %v (no AWSPENDING)", e.stages(t, arn), want)
	}
	if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Errorf("RotateSecret after the abandoned rotation: %v", err)
	}
	e.waitEvent(t, arn, RotationSucceeded, 0)
}

func TestRemovingAWSPENDINGBetweenAttemptsStopsTheRotation(t *testing.T) {
	e, f := rotEmu(t, Options{RetryDelay: time.Millisecond})
	arn, _ := e.create(t, "s", "first")
	f.failures["setSecret"] = 1
	// An operator clears the stuck rotation while the failed attempt ends.
	f.onFail = func(ev rotationEvent) {
		if _, err := e.client.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(arn), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(ev.ClientRequestToken),
		}); err != nil {
			t.Errorf("removing AWSPENDING: %v", err)
		}
	}
	if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
		t.Fatal(err)
	}
	ab := e.waitEvent(t, arn, RotationAbandoned, 0)
	if !strings.Contains(ab.Error, "AWSPENDING was removed") {
		t.Errorf("RotationAbandoned = %+v", ab)
	}
	e.srv.Close()
	for _, ev := range e.srv.Events(arn) {
		if ev.Type == RotationStarted && ev.Attempt > 1 {
			t.Errorf("reattempted after AWSPENDING was removed: %+v", ev)
		}
	}
}

func TestRotateImmediatelyFalseRunsTestSecretOnACopy(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("test fails=%v", fail), func(t *testing.T) {
			e, f := rotEmu(t, Options{RetryDelay: time.Millisecond})
			arn, v1 := e.create(t, "s", "current value")
			if fail {
				f.failures["testSecret"] = 1
			}
			out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{
				SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN), RotateImmediately: aws.Bool(false),
				RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * ? *)")},
			})
			if err != nil {
				t.Fatal(err)
			}
			tok := aws.ToString(out.VersionId)
			end := RotationSucceeded
			if fail {
				end = RotationFailed
			}
			last := e.waitEvent(t, arn, end, 0)
			e.srv.Close()
			if !last.TestOnly || (fail && !last.Final) {
				t.Errorf("last event %+v", last)
			}
			want := []string{"RotationStarted", "StepStarted/testSecret", "StepSucceeded/testSecret", "RotationSucceeded"}
			if fail {
				want = []string{"RotationStarted", "StepStarted/testSecret", "StepFailed/testSecret", "RotationFailed/testSecret"}
			}
			if got := kinds(e.srv.Events(arn)); !slices.Equal(got, want) {
				t.Errorf("timeline:\n%s", timeline(e.srv.Events(arn)))
			}
			if got := f.steps(); !slices.Equal(got, []string{"testSecret"}) {
				t.Errorf("function saw %v, want testSecret alone", got)
			}
			if !fail && !slices.Equal(f.testSaw, []string{"current value"}) {
				t.Errorf("testSecret read %q, want the current value", f.testSaw)
			}
			// "The test creates an AWSPENDING version of the secret and then removes it."
			if want := map[string][]string{v1: {"AWSCURRENT"}}; !equalStages(e.stages(t, arn), want) {
				t.Errorf("stages %v, want %v", e.stages(t, arn), want)
			}
			_, err = e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(tok)})
			wantAPIError(t, err, "ResourceNotFoundException", tok)
			d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
			if !aws.ToBool(d.RotationEnabled) || d.LastRotatedDate != nil || d.NextRotationDate == nil || !d.NextRotationDate.Equal(time.Date(2026, 3, 4, 16, 0, 0, 0, time.UTC)) {
				t.Errorf("enabled %v last %v next %v", d.RotationEnabled, d.LastRotatedDate, d.NextRotationDate)
			}
		})
	}
}

func TestCancelRotateSecret(t *testing.T) {
	e, f := rotEmu(t, Options{RetryDelay: time.Hour})
	arn, v1 := e.create(t, "s", "first")
	f.failures["setSecret"] = 99
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)}})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(out.VersionId)
	e.waitEvent(t, arn, RotationFailed, 1) // now waiting an hour to reattempt

	c, err := e.client.CancelRotateSecret(ctxT(t), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(c.VersionId) != tok || aws.ToString(c.ARN) != arn {
		t.Errorf("CancelRotateSecret = %+v, want the pending version %s", c, tok)
	}
	if ev := e.waitEvent(t, arn, RotationCancelled, 0); ev.Token != tok {
		t.Errorf("RotationCancelled = %+v", ev)
	}
	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: the cancelled driver still waits for its reattempt")
	}
	for _, ev := range e.srv.Events(arn) {
		if ev.Attempt > 1 {
			t.Errorf("reattempted after CancelRotateSecret: %+v", ev)
		}
	}
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if d.RotationEnabled == nil || *d.RotationEnabled || d.NextRotationDate != nil {
		t.Errorf("after cancel: enabled %v next %v", d.RotationEnabled, d.NextRotationDate)
	}
	// AWS leaves AWSPENDING for the operator to clean up.
	if want := map[string][]string{v1: {"AWSCURRENT"}, tok: {"AWSPENDING"}}; !equalStages(d.VersionIdsToStages, want) {
		t.Errorf("stages %v, want %v", d.VersionIdsToStages, want)
	}
}

func TestCloseInterruptsARunningStep(t *testing.T) {
	entered := make(chan struct{})
	sawCancel := make(chan error, 1)
	e := newEmu(t, Options{Invoker: InvokerFunc(func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		close(entered)
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return nil, ctx.Err()
	})})
	arn, _ := e.create(t, "s", "v")
	if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
		t.Fatal(err)
	}
	<-entered
	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a step was running")
	}
	if err := <-sawCancel; !errors.Is(err, context.Canceled) {
		t.Errorf("the step's context ended with %v", err)
	}
	if got := kinds(e.srv.Events(arn)); !slices.Equal(got, []string{"RotationStarted", "StepStarted/createSecret"}) {
		t.Errorf("an interrupted step recorded more: %v", got)
	}
	_, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("s")})
	wantAPIError(t, err, "InvalidRequestException", "closed")
	if err := e.srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRotateSecretRejects(t *testing.T) {
	noop := InvokerFunc(func(context.Context, string, []byte) ([]byte, error) { return nil, nil })
	tests := []struct {
		name     string
		opts     Options
		in       secretsmanager.RotateSecretInput
		wantCode string
		wantMsg  string
	}{
		{name: "no function ever configured", opts: Options{Invoker: noop}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("s")},
			wantCode: "InvalidRequestException", wantMsg: "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call."},
		{name: "emulator without invoker", opts: Options{}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN)},
			wantCode: "InvalidRequestException", wantMsg: "Options.Invoker is nil"},
		{name: "short token", opts: Options{Invoker: noop}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), ClientRequestToken: aws.String("x")},
			wantCode: "InvalidParameterException", wantMsg: "ClientRequestToken is 1 characters"},
		{name: "token of an existing version", opts: Options{Invoker: noop}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), ClientRequestToken: aws.String(token("s-v1"))},
			wantCode: "InvalidParameterException", wantMsg: "is already the id of a version"},
		{name: "not an ARN", opts: Options{Invoker: noop}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String("rotator")},
			wantCode: "InvalidParameterException", wantMsg: `RotationLambdaARN "rotator" is not a Lambda function ARN`},
		{name: "unknown secret", opts: Options{Invoker: noop}, in: secretsmanager.RotateSecretInput{SecretId: aws.String("nope"), RotationLambdaARN: aws.String(lambdaARN)},
			wantCode: "ResourceNotFoundException", wantMsg: "can't find the specified secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmu(t, tc.opts)
			e.create(t, "s", "v")
			_, err := e.client.RotateSecret(ctxT(t), &tc.in)
			wantAPIError(t, err, tc.wantCode, tc.wantMsg)
			d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
			if d.RotationEnabled != nil || len(d.VersionIdsToStages) != 1 || len(e.srv.Events("")) != 0 {
				t.Errorf("a rejected RotateSecret changed something: %+v, events %v", d, e.srv.Events(""))
			}
		})
	}
}

// TestConcurrentUse runs rotations and hand-made changes on several secrets
// at once; with -race it checks the locking, and afterwards every secret
// must still have exactly one AWSCURRENT with the value of its version.
func TestConcurrentUse(t *testing.T) {
	e, _ := rotEmu(t, Options{RetryDelay: time.Millisecond})
	const secrets, writers = 4, 4
	var arns []string
	for i := range secrets {
		arn, _ := e.create(t, fmt.Sprintf("c%d", i), "v0")
		arns = append(arns, arn)
	}
	var wg sync.WaitGroup
	for i, arn := range arns {
		wg.Go(func() {
			for r := range 3 {
				out, err := e.client.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)})
				if err != nil {
					var ae interface{ ErrorMessage() string }
					if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "previous rotation isn't complete") {
						continue // a writer abandoned it, or it is still running
					}
					t.Errorf("secret %d rotation %d: %v", i, r, err)
					return
				}
				tok := aws.ToString(out.VersionId)
				if _, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool {
					return ev.Token == tok && (ev.Type == RotationSucceeded || ev.Type == RotationAbandoned || (ev.Type == RotationFailed && ev.Final))
				}); err != nil {
					t.Errorf("secret %d rotation %d: %v", i, r, err)
					return
				}
			}
		})
		for w := range writers {
			wg.Go(func() {
				for n := range 5 {
					id := token(fmt.Sprintf("%s-w%d-%d", arn, w, n))
					if _, err := e.client.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
						SecretId: aws.String(arn), ClientRequestToken: aws.String(id), SecretString: aws.String("value-" + id),
					}); err != nil {
						t.Errorf("PutSecretValue: %v", err)
					}
					if _, err := e.client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil {
						t.Errorf("GetSecretValue: %v", err)
					}
					_ = e.srv.Events(arn)
				}
			})
		}
	}
	wg.Wait()
	e.srv.Close()
	for _, arn := range arns {
		current := 0
		for id, st := range e.stages(t, arn) {
			if slices.Contains(st, "AWSCURRENT") {
				current++
				out, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
				if err != nil || aws.ToString(out.VersionId) != id || aws.ToString(out.SecretString) != "value-"+id {
					t.Errorf("%s: AWSCURRENT %s reads %v %v", arn, id, out, err)
				}
			}
		}
		if current != 1 {
			t.Errorf("%s has %d AWSCURRENT labels", arn, current)
		}
	}
}
