package dispatch_test

// The fleet's commands in-process, against the Secrets Manager emulator
// (CreateSecret with tags and a KMS key, RotateSecret's configuration
// test, ListSecrets with filters, CancelRotateSecret) and the Graph
// simulator with one WABA per tenant.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/dispatch"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/metrics"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/rotation"
)

func newFleetStack(t *testing.T, tenants int) *stack {
	t.Helper()
	st := &stack{out: &logbuf.Buffer{}}
	var err error
	if st.sim, err = graphsim.New(graphsim.Options{Token: e2eToken}); err != nil {
		t.Fatal(err)
	}
	for i := range tenants {
		nums, err := st.sim.AddDemoWABA(fmt.Sprintf("1022901293%05d", i), 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, pn := range nums {
			st.nums = append(st.nums, pn.ID)
		}
	}
	gsrv := httptest.NewServer(st.sim)
	t.Cleanup(gsrv.Close)
	invoke := secretsemu.InvokerFunc(func(ctx context.Context, _ string, payload []byte) ([]byte, error) {
		out, err := st.h.Invoke(ctx, payload)
		if err != nil {
			return nil, &secretsemu.FunctionError{Type: "errorString", Message: err.Error()}
		}
		return out, nil
	})
	if st.emu, err = secretsemu.New(secretsemu.Options{Invoker: invoke, RotationAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	esrv := httptest.NewServer(st.emu)
	t.Cleanup(func() { _ = st.emu.Close(); esrv.Close() })
	st.sm = secretsmanager.New(secretsmanager.Options{BaseEndpoint: aws.String(esrv.URL), Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "test"}, nil
		})})
	if _, err := st.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("flowkey/graph-token"), SecretString: aws.String(e2eToken)}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(st.out, nil))
	emf := metrics.New(st.out, "flowkey-rotator", nil)
	gc, err := graph.New(gsrv.Client(), graph.Options{BaseURL: gsrv.URL, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Observe: emf.ObserveGraph})
	if err != nil {
		t.Fatal(err)
	}
	state, err := keystate.New(st.sm, gc, keystate.Options{AccessTokenSecretID: "flowkey/graph-token"})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := rotation.New(state, st.sm, keypair.LocalGenerator{}, gc, rotation.Options{VerifyTimeout: 2 * time.Second, VerifyBackoff: 5 * time.Millisecond, Logger: log, Metrics: emf})
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.New(st.sm, gc, state, rot, operator.Options{FunctionName: "flowkey-rotator", Logger: log, Metrics: emf, FleetMetrics: emf,
		FunctionARN: e2eLambda, Fleet: operator.FleetOptions{Name: "flowkey-e2e", DefaultTokenSecretID: "flowkey/graph-token", KMSKeyID: "alias/aws/secretsmanager"}})
	if err != nil {
		t.Fatal(err)
	}
	st.h = dispatch.New(rot, op, emf, dispatch.WithSyntax(operator.Syntax{Fleet: true}))
	return st
}

// waitTest waits for the end of the configuration test of secret arn.
func (st *stack) waitTest(t *testing.T, arn string) secretsemu.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := st.emu.WaitEvent(ctx, func(e secretsemu.Event) bool {
		return e.SecretARN == arn && e.TestOnly && (e.Type == secretsemu.RotationSucceeded || (e.Type == secretsemu.RotationFailed && e.Final))
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestFleetEndToEnd(t *testing.T) {
	const n = 4
	st := newFleetStack(t, n)
	for i := range n {
		var er operator.EnrollReport
		st.command(t, fmt.Sprintf(`{"command":"enroll","tenant":"t%d","config":{"waba_id":"1022901293%05d"}}`, i, i), &er)
		if !er.OK || er.Outcome != operator.OutcomeEnrolled || len(er.Numbers) != 2 {
			t.Fatalf("enroll t%d: %+v", i, er)
		}
		if ev := st.waitTest(t, er.SecretARN); ev.Type != secretsemu.RotationSucceeded {
			t.Fatalf("t%d's configuration test: %+v", i, ev)
		}
		var again operator.EnrollReport
		st.command(t, fmt.Sprintf(`{"command":"enroll","tenant":"t%d","config":{"waba_id":"1022901293%05d"}}`, i, i), &again)
		if !again.OK || again.Outcome != operator.OutcomeAlreadyEnrolled {
			t.Fatalf("enroll t%d again: %+v", i, again)
		}
	}
	// Before their first rotation the tenants have no key: not unhealthy.
	var fs operator.FleetStatusReport
	st.command(t, `{"command":"status"}`, &fs)
	if !fs.Complete || fs.Run.Tenants != n || fs.Run.NoKeyYet != n || fs.Run.Unhealthy != 0 {
		t.Fatalf("fleet status before the first keys: %+v", fs.Run)
	}
	for i := range n {
		var rr operator.RotateReport
		st.command(t, fmt.Sprintf(`{"command":"rotate","tenant":"t%d"}`, i), &rr)
		if !rr.OK {
			t.Fatalf("rotate t%d: %+v", i, rr)
		}
		if ev := st.waitRotation(t, rr.VersionID); ev.Type != secretsemu.RotationSucceeded {
			t.Fatalf("t%d's rotation: %+v", i, ev)
		}
	}
	st.command(t, `{"command":"status"}`, &fs)
	if !fs.OK || fs.Run.Tenants != n || fs.Run.Healthy != n || fs.Run.Numbers != 2*n {
		t.Fatalf("fleet status after the rotations: %+v", fs.Run)
	}
	var ur operator.UnenrollReport
	st.command(t, `{"command":"unenroll","tenant":"t3"}`, &ur)
	if !ur.OK || ur.Outcome != operator.OutcomeUnenrolled || ur.Fingerprint == "" {
		t.Fatalf("unenroll: %+v", ur)
	}
	d, err := st.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(ur.SecretARN)})
	if err != nil || aws.ToBool(d.RotationEnabled) || len(d.VersionIdsToStages) < 2 {
		t.Fatalf("after unenroll: %+v, %v", d, err)
	}
	st.command(t, `{"command":"status"}`, &fs)
	if !fs.OK || fs.Run.Tenants != n-1 || fs.Run.NotEnrolled != 1 {
		t.Fatalf("fleet status after unenroll: %+v", fs.Run)
	}
	for _, want := range []string{`"TenantsChecked":3`, `"DriftedNumbers":0`} {
		if !strings.Contains(st.out.String(), want) {
			t.Errorf("stdout has no %s", want)
		}
	}
}
