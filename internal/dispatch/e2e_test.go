package dispatch_test

// An in-process run of the whole function: the dispatch handler with the
// real rotation, operator, Graph client and EMF metrics, against the
// Secrets Manager emulator (which invokes the handler for each step, as
// Lambda would) and the Graph simulator. The local stack's integration
// tests do the same through the RIE; this one runs in `go test`.

import (
	"context"
	"encoding/json"
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

const (
	e2eToken  = "EAAG-e2e-token-never-logged-5d1c"
	e2eWABA   = "102290129340398"
	e2eLambda = "arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator"
)

type stack struct {
	sim  *graphsim.Sim
	emu  *secretsemu.Server
	sm   *secretsmanager.Client
	h    *dispatch.Handler
	arn  string
	out  *logbuf.Buffer // logs and EMF lines, as Lambda's stdout
	nums []string
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := &stack{out: &logbuf.Buffer{}}
	var err error
	// Page size 2 over 5 numbers: discovery follows three pages.
	if st.sim, err = graphsim.New(graphsim.Options{Token: e2eToken, PageSize: 2}); err != nil {
		t.Fatal(err)
	}
	if err := st.sim.AddWABA(e2eWABA); err != nil {
		t.Fatal(err)
	}
	for _, n := range graphsim.DemoNumbers(e2eWABA, 5) {
		if err := st.sim.AddPhoneNumber(e2eWABA, n.ID, n.DisplayPhoneNumber, n.VerifiedName); err != nil {
			t.Fatal(err)
		}
		st.nums = append(st.nums, n.ID)
	}
	gsrv := httptest.NewServer(st.sim)
	t.Cleanup(gsrv.Close)

	// Invoke, as the Lambda runtime calls it.
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
	st.sm = secretsmanager.New(secretsmanager.Options{
		BaseEndpoint: aws.String(esrv.URL),
		Region:       "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "test"}, nil
		}),
	})

	ctx := context.Background()
	if _, err := st.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("flowkey/graph-token"), SecretString: aws.String(e2eToken)}); err != nil {
		t.Fatal(err)
	}
	doc := `{"schema_version":1,"config":{"waba_id":"` + e2eWABA + `","access_token_secret_id":"flowkey/graph-token"}}`
	out, err := st.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("flowkey/key"), SecretString: aws.String(doc)})
	if err != nil {
		t.Fatal(err)
	}
	st.arn = aws.ToString(out.ARN)

	log := slog.New(slog.NewJSONHandler(st.out, nil))
	emf := metrics.New(st.out, "flowkey-rotator", nil)
	gc, err := graph.New(gsrv.Client(), graph.Options{BaseURL: gsrv.URL, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Observe: emf.ObserveGraph})
	if err != nil {
		t.Fatal(err)
	}
	state, err := keystate.New(st.sm, gc, keystate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := rotation.New(state, st.sm, keypair.LocalGenerator{}, gc, rotation.Options{VerifyTimeout: 2 * time.Second, VerifyBackoff: 5 * time.Millisecond, Logger: log, Metrics: emf})
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.New(st.sm, gc, state, rot, operator.Options{SecretID: st.arn, FunctionName: "flowkey-rotator", Logger: log, Metrics: emf})
	if err != nil {
		t.Fatal(err)
	}
	st.h = dispatch.New(rot, op, emf)
	t.Cleanup(func() {
		for _, leak := range []string{e2eToken, "PRIVATE KEY"} {
			if strings.Contains(st.out.String(), leak) {
				t.Errorf("stdout contains secret material %q", leak)
			}
		}
	})
	return st
}

func (st *stack) command(t *testing.T, raw string, into any) {
	t.Helper()
	out, err := st.h.Handle(context.Background(), json.RawMessage(raw))
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), e2eToken) || strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatalf("%s: the result contains secret material", raw)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// waitRotation waits for the end of the rotation with token.
func (st *stack) waitRotation(t *testing.T, token string) secretsemu.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := st.emu.WaitEvent(ctx, func(e secretsemu.Event) bool {
		return e.Token == token && (e.Type == secretsemu.RotationSucceeded || (e.Type == secretsemu.RotationFailed && e.Final))
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestCommandsEndToEnd(t *testing.T) {
	st := newStack(t)
	ctx := context.Background()

	// Turn rotation on as CloudFormation does: testSecret alone, on a
	// configuration-only secret.
	cfg, err := st.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(st.arn), RotationLambdaARN: aws.String(e2eLambda), RotateImmediately: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if ev := st.waitRotation(t, aws.ToString(cfg.VersionId)); ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("configuration test: %+v", ev)
	}

	// rotate returns before the rotation runs; the emulator then runs it
	// through the same handler.
	var rot operator.RotateReport
	st.command(t, `{"command":"rotate"}`, &rot)
	if !rot.OK || rot.Outcome != operator.OutcomeStarted || rot.VersionID == "" {
		t.Fatalf("rotate: %+v", rot)
	}
	if ev := st.waitRotation(t, rot.VersionID); ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("rotation: %+v", ev)
	}

	var status operator.StatusReport
	st.command(t, `{"command":"status"}`, &status)
	if !status.OK || len(status.Numbers) != 5 || status.Versions.Current.VersionID != rot.VersionID {
		t.Fatalf("status after the rotation: %+v", status)
	}

	// Drift behind flowkey's back: a foreign key on one number, a
	// re-registration (MISMATCH) on another.
	foreign, err := keypair.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.sim.SetKey(st.nums[1], foreign.PublicPEM(), ""); err != nil {
		t.Fatal(err)
	}
	if err := st.sim.Reregister(st.nums[3]); err != nil {
		t.Fatal(err)
	}
	st.command(t, `{"command":"status"}`, &status)
	if status.OK || status.Drifted != 2 {
		t.Fatalf("status after drift: %+v", status)
	}

	uploads := func() int { return st.sim.Calls().Upload }
	before := uploads()
	var rs operator.ResyncReport
	st.command(t, `{"command":"resync","dry_run":true}`, &rs)
	if rs.Outcome != operator.OutcomeDryRun || rs.WouldRepair != 2 || uploads() != before {
		t.Fatalf("dry run: %+v, %d uploads", rs, uploads()-before)
	}
	st.command(t, `{"command":"resync"}`, &rs)
	if !rs.OK || rs.Outcome != operator.OutcomeRepaired || rs.Repaired != 2 || uploads()-before != 2 ||
		st.sim.Calls().Of(st.nums[1]).Upload != 2 || st.sim.Calls().Of(st.nums[3]).Upload != 2 {
		t.Fatalf("resync: %+v, %d uploads", rs, uploads()-before)
	}
	st.command(t, `{"command":"status"}`, &status)
	if !status.OK {
		t.Fatalf("status after resync: %q", status.Reasons)
	}

	// A rotation that fails on one number is left incomplete; rotate then
	// resumes it (its version holds a key) instead of starting another.
	if _, err := st.sim.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: st.nums[4], Kind: graphsim.FaultGraphError, Code: 10, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	st.command(t, `{"command":"rotate"}`, &rot)
	if ev := st.waitRotation(t, rot.VersionID); ev.Type != secretsemu.RotationFailed {
		t.Fatalf("want the rotation to fail, got %+v", ev)
	}
	pending := rot.VersionID
	evs := st.emu.Events("")
	failed := evs[len(evs)-1].Seq
	st.command(t, `{"command":"rotate"}`, &rot)
	if !rot.OK || rot.Outcome != operator.OutcomeResumed || rot.VersionID != pending || rot.PendingVersionID != pending || len(rot.HoldingPending) != 0 {
		t.Fatalf("rotate during an incomplete rotation: %+v", rot)
	}
	// The fault is still there: the resumed run fails the same way.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := st.emu.WaitEvent(ctx, func(e secretsemu.Event) bool {
		return e.Seq > failed && e.Token == pending && e.Type == secretsemu.RotationFailed && e.Final
	}); err != nil {
		t.Fatal(err)
	}

	// The metrics went out as EMF lines.
	for _, want := range []string{`"Step":"setSecret"`, `"StepDuration":`, `"DriftedNumbers":2`, `"DaysSinceLastRotation":`, `"Command":"resync"`, `"GraphCalls":`} {
		if !strings.Contains(st.out.String(), want) {
			t.Errorf("stdout has no %s", want)
		}
	}
}
