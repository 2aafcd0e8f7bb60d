package secretsemu

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// RotateSecret with the ClientRequestToken of an incomplete rotation whose
// attempts are spent runs the four steps again on that same version:
// flowkey's reading of the token as AWS's idempotency token for "failures
// and retries during rotation". Everything else is still refused.
func TestRotateSecretWithTheIncompleteVersionsTokenResumesIt(t *testing.T) {
	e, f := rotEmu(t, Options{RotationAttempts: 1})
	arn, v1 := e.create(t, "s", "first")
	f.failures["testSecret"] = 1
	out, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)})
	if err != nil {
		t.Fatal(err)
	}
	tok := aws.ToString(out.VersionId)
	first := e.waitEvent(t, arn, RotationFailed, 1)
	if !first.Final {
		t.Fatalf("first run: %+v, want its final failure", first)
	}
	for _, in := range []*secretsmanager.RotateSecretInput{
		{SecretId: aws.String(arn)},
		{SecretId: aws.String(arn), ClientRequestToken: aws.String(token("another"))},
		// A test-only run would delete the pending version afterwards.
		{SecretId: aws.String(arn), ClientRequestToken: aws.String(tok), RotateImmediately: aws.Bool(false)},
	} {
		_, err := e.client.RotateSecret(ctxT(t), in)
		wantAPIError(t, err, "InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted.")
	}

	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate // holds the resumed run's first step
	f.mu.Unlock()
	resume := &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(tok)}
	again, err := e.client.RotateSecret(ctxT(t), resume)
	if err != nil || aws.ToString(again.VersionId) != tok {
		t.Fatalf("resuming RotateSecret: %v %+v", err, again)
	}
	if _, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool { return ev.Seq > first.Seq && ev.Type == StepStarted }); err != nil {
		t.Fatal(err)
	}
	// While the resumed run is going, the same call is a retried request.
	if again, err := e.client.RotateSecret(ctxT(t), resume); err != nil || aws.ToString(again.VersionId) != tok {
		t.Errorf("RotateSecret again while the resumed run goes: %v %+v", err, again)
	}
	close(gate)
	if _, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool { return ev.Seq > first.Seq && ev.Type == RotationSucceeded }); err != nil {
		t.Fatal(err)
	}

	var resumed []Event
	for _, ev := range e.srv.Events(arn) {
		if ev.Seq > first.Seq {
			resumed = append(resumed, ev)
		}
	}
	if got := kinds(resumed); !slices.Equal(got, cleanRun) {
		t.Errorf("the resumed run's timeline:\n%s", timeline(resumed))
	}
	for _, ev := range resumed {
		if ev.Token != tok || ev.Attempt != 1 {
			t.Errorf("%s: token %s attempt %d, want %s and 1 (a new run)", ev.Type, ev.Token, ev.Attempt, tok)
		}
	}
	// No new version: the value the first run's createSecret stored is
	// the one promoted.
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, tok: {"AWSCURRENT", "AWSPENDING"}}; !equalStages(e.stages(t, arn), want) {
		t.Errorf("stages %v, want %v", e.stages(t, arn), want)
	}
	if got := e.value(t, arn, "AWSCURRENT"); got != "value-"+tok {
		t.Errorf("AWSCURRENT = %q", got)
	}
	want := []string{"createSecret", "setSecret", "testSecret", "createSecret", "setSecret", "testSecret", "finishSecret"}
	if got := f.steps(); !slices.Equal(got, want) {
		t.Errorf("function saw %v, want %v", got, want)
	}
}
