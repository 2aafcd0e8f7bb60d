package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// binaries are built once by TestMain and only read afterwards.
var binaries stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	b, remove, err := stack.BuildTemp(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need the bootstrap, local-kms and the RIE:", err)
		return 1
	}
	defer remove()
	binaries = b
	return m.Run()
}

type env struct {
	*stack.Stack
	arn  string
	logs *logbuf.Buffer
	// brokenOnPurpose names why a test leaves Meta holding a key that no
	// version holds (drift planted behind flowkey's back); "" for none.
	brokenOnPurpose string
	// disabledOnPurpose holds the KMS keys a test disabled, scheduled for
	// deletion or named wrongly behind flowkey's back: the invariants take
	// any state of theirs.
	disabledOnPurpose map[string]bool
}

type setup struct {
	phones   int
	attempts int
	fnEnv    map[string]string
	timeout  time.Duration
	noKMS    bool
	// endpointEnv and graphNow: see stack.Options.
	endpointEnv   map[string]string
	graphNow      func() time.Time
	lambdaBackend bool
	// custody is the key secret's config.key_custody ("" for none, which
	// is PEM custody).
	custody string
	// fleet: see stack.Options.
	fleet *stack.FleetOptions
}

func start(t testing.TB, s setup) *env {
	t.Helper()
	logs := &logbuf.Buffer{}
	fnEnv := map[string]string{"VERIFY_TIMEOUT": "3s", "GRAPH_MAX_ATTEMPTS": "3"}
	for k, v := range s.fnEnv {
		fnEnv[k] = v
	}
	lst, err := stack.Start(context.Background(), stack.Options{
		Binaries: binaries, Dir: t.TempDir(), PhoneNumbers: s.phones, FunctionEnv: fnEnv,
		FunctionTimeout: s.timeout, NoKMS: s.noKMS,
		RotationAttempts: max(s.attempts, 1), RetryDelay: 10 * time.Millisecond, Output: logs,
		EndpointEnv: s.endpointEnv, GraphNow: s.graphNow, LambdaBackend: s.lambdaBackend, Fleet: s.fleet,
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	e := &env{Stack: lst, logs: logs, disabledOnPurpose: map[string]bool{}}
	t.Cleanup(func() {
		// After every scenario, whatever it asserted itself.
		if e.arn != "" && e.brokenOnPurpose == "" {
			e.checkInvariants(t, e.incompleteRotation())
		}
		lst.Close()
		if err := lst.OutputErr(); err != nil {
			t.Errorf("the processes' output was not all copied, so the scans below miss some: %v", err)
		}
		out := logs.String()
		for _, leak := range []string{"flowkey-local-token", "PRIVATE KEY"} {
			if strings.Contains(out, leak) {
				t.Errorf("process output contains %q", leak)
			}
		}
		if t.Failed() {
			t.Logf("process output:\n%s", tail(out, 60))
		}
	})
	ctx := context.Background()
	if _, err := lst.CreateTokenSecret(ctx); err != nil {
		t.Fatal(err)
	}
	if e.arn, err = lst.CreateKeySecret(ctx, stack.KeySecretName, secretdoc.Config{PhoneNumberIDs: lst.PhoneNumberIDs(), KeyCustody: s.custody}); err != nil {
		t.Fatal(err)
	}
	return e
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rotate runs one rotation through RotateSecret and waits for its end.
func (e *env) rotate(t testing.TB) (string, secretsemu.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token, err := e.Rotate(ctx, e.arn, true)
	if err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	ev, err := e.WaitRotation(ctx, e.arn, token)
	if err != nil {
		t.Fatalf("waiting for rotation %s: %v", token, err)
	}
	return token, ev
}

func (e *env) doc(t testing.TB, stage string) *secretdoc.Document {
	t.Helper()
	out, err := e.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arn), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("read %s: %v", stage, err)
	}
	d, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		t.Fatalf("parse %s: %v", stage, err)
	}
	return d
}

// incompleteRotation is the token of the secret's last rotation if it has
// not succeeded: the one version besides AWSCURRENT that may hold AWSPENDING.
func (e *env) incompleteRotation() string { return e.incompleteRotationOf(e.arn) }

// incompleteRotationOf is incompleteRotation for any secret (a fleet's tenants').
func (e *env) incompleteRotationOf(arn string) string {
	token := ""
	for _, ev := range e.Secrets.Events(arn) {
		switch ev.Type {
		case secretsemu.RotationStarted:
			token = ev.Token
		case secretsemu.RotationSucceeded:
			if ev.Token == token {
				token = ""
			}
		}
	}
	return token
}

// checkInvariants is run after every scenario.
func (e *env) checkInvariants(t testing.TB, inProgress string) {
	t.Helper()
	// A fleet's tenants' numbers hold their own secrets' keys
	// (checkTenantInvariants).
	tenantNumber := map[string]bool{}
	for _, tn := range e.Tenants() {
		for _, n := range tn.Numbers {
			tenantNumber[n] = true
		}
	}
	var numbers []string
	for phone := range e.Graph.Keys() {
		if !tenantNumber[phone] {
			numbers = append(numbers, phone)
		}
	}
	e.checkSecretInvariant(t, e.arn, "the secret", inProgress, numbers)
	e.checkCustodyKeys(t, inProgress)
}

// checkSecretInvariant checks the invariant of the secret arn (what, in
// errors): exactly one AWSCURRENT, AWSPENDING only on it or on the
// rotation in progress, and every key Meta holds for numbers has its
// private key in AWSCURRENT or AWSPENDING of that secret.
func (e *env) checkSecretInvariant(t testing.TB, arn, what, inProgress string, numbers []string) {
	t.Helper()
	ctx := context.Background()
	desc, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var current, pending []string
	for v, labels := range desc.VersionIdsToStages {
		for _, l := range labels {
			switch l {
			case "AWSCURRENT":
				current = append(current, v)
			case "AWSPENDING":
				pending = append(pending, v)
			}
		}
	}
	if len(current) != 1 {
		t.Errorf("invariant of %s: %d versions are AWSCURRENT, want exactly 1", what, len(current))
	}
	for _, p := range pending {
		if (len(current) == 0 || p != current[0]) && p != inProgress {
			t.Errorf("invariant of %s: AWSPENDING sits on %s, which is neither current nor the rotation in progress (%q)", what, p, inProgress)
		}
	}
	held := map[string]bool{}
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
		out, err := e.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
		if err != nil {
			continue
		}
		if d, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString))); err == nil && d.Key != nil {
			held[d.Key.FingerprintSHA256] = true
		}
	}
	keys := e.Graph.Keys()
	for _, phone := range numbers {
		if der := keys[phone]; len(der) > 0 && !held[keypair.FingerprintOf(der).String()] {
			t.Errorf("invariant of %s: Meta holds %.16s for %s, whose private key is in neither AWSCURRENT nor AWSPENDING",
				what, keypair.FingerprintOf(der).String(), phone)
		}
	}
}

func TestCleanRotation(t *testing.T) {
	e := start(t, setup{})
	token, ev := e.rotate(t)
	if ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("rotation ended with %s: %s", ev.Type, ev.Error)
	}
	cur := e.doc(t, "AWSCURRENT")
	if cur.Key == nil || cur.Key.GeneratedBy != keypair.MethodKMS {
		t.Fatalf("AWSCURRENT key = %v, want one generated by KMS", cur.Key)
	}
	for phone, der := range e.Graph.Keys() {
		if keypair.FingerprintOf(der).String() != cur.Key.FingerprintSHA256 {
			t.Errorf("%s does not hold the new key", phone)
		}
	}
	calls := e.Graph.Calls()
	if n := len(e.PhoneNumberIDs()); calls.Upload != n || calls.Get != n {
		t.Errorf("rotation made %d uploads and %d reads, want %d each", calls.Upload, calls.Get, n)
	}
	// Without fields, Meta's v23 example (and the simulator) answer the
	// status alone: the key must be asked for.
	for _, rq := range e.Graph.Requests() {
		if rq.Op == graphsim.OpGet && rq.Fields != "business_public_key,business_public_key_signature_status" {
			t.Errorf("GET %s asked for fields %q, want both fields", rq.Path, rq.Fields)
		}
	}
	e.checkInvariants(t, token)
}

// rotateOK runs a rotation that must succeed.
func (e *env) rotateOK(t testing.TB) string {
	t.Helper()
	token, ev := e.rotate(t)
	if ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("rotation %s ended with %s: %s", token, ev.Type, ev.Error)
	}
	return token
}

// rotateFails runs a rotation that must fail with every attempt spent, and
// returns its token and the final error.
func (e *env) rotateFails(t *testing.T, want ...string) (string, string) {
	t.Helper()
	token, ev := e.rotate(t)
	if ev.Type != secretsemu.RotationFailed {
		t.Fatalf("rotation %s ended with %s, want RotationFailed", token, ev.Type)
	}
	for _, w := range want {
		if !strings.Contains(ev.Error, w) {
			t.Errorf("failure %q does not mention %q", ev.Error, w)
		}
	}
	return token, ev.Error
}

func (e *env) assertAllHold(t *testing.T, fingerprint string) {
	t.Helper()
	for _, phone := range e.PhoneNumberIDs() {
		der := e.Graph.Keys()[phone]
		if got := keypair.FingerprintOf(der).String(); len(der) == 0 || got != fingerprint {
			t.Errorf("%s holds %.16s, want %.16s", phone, got, fingerprint)
		}
	}
}

func TestTwentyFiveNumbersCostExactlyTwentyFiveUploadsAndReads(t *testing.T) {
	e := start(t, setup{phones: 25})
	token := e.rotateOK(t)
	calls := e.Graph.Calls()
	if calls.Upload != 25 || calls.Get != 25 || calls.List != 0 || calls.Other != 0 {
		t.Errorf("calls = %+v, want exactly 25 uploads and 25 reads", calls.OpCounts)
	}
	for _, phone := range e.PhoneNumberIDs() {
		if c := calls.Of(phone); c.Upload != 1 || c.Get != 1 {
			t.Errorf("%s: %+v, want one upload and one read", phone, c)
		}
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

func TestTransientFailuresAreRetried(t *testing.T) {
	e := start(t, setup{})
	phone := e.PhoneNumberIDs()[1]
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: phone, Kind: graphsim.FaultGraphError, Code: 131000, Times: 2}); err != nil {
		t.Fatal(err)
	}
	token := e.rotateOK(t)
	if c := e.Graph.Calls().Of(phone); c.Upload != 3 {
		t.Errorf("%s got %d uploads, want 3 (two 131000, then success)", phone, c.Upload)
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

func TestPermanentFailureRollsBackEveryNumber(t *testing.T) {
	e := start(t, setup{})
	first := e.rotateOK(t)
	current := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
	bad := e.PhoneNumberIDs()[0]
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: bad, Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	e.Graph.ResetCounters()
	token, _ := e.rotateFails(t, "setSecret", bad, "graph code 100", "Put the AWSCURRENT key back on 2 numbers")
	if c := e.Graph.Calls().Of(bad); c.Upload != 1 {
		t.Errorf("the refused number got %d uploads; code 100 must not be retried", c.Upload)
	}
	e.assertAllHold(t, current)
	if got := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256; got != current {
		t.Error("AWSCURRENT moved")
	}
	_ = first
	e.checkInvariants(t, token)
}

func TestPersistentMismatchFailsCleanly(t *testing.T) {
	e := start(t, setup{fnEnv: map[string]string{"VERIFY_TIMEOUT": "2s"}})
	e.rotateOK(t)
	current := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
	phone := e.PhoneNumberIDs()[2]
	if err := e.Graph.SetMismatch(phone, true); err != nil {
		t.Fatal(err)
	}
	token, _ := e.rotateFails(t, "testSecret", phone, "MISMATCH")
	// Rollback re-uploaded the current key; the forced MISMATCH stays on.
	for p, der := range e.Graph.Keys() {
		if keypair.FingerprintOf(der).String() != current {
			t.Errorf("%s not back on the current key", p)
		}
	}
	e.checkInvariants(t, token)
}

func TestGetLag(t *testing.T) {
	t.Run("shorter than the verification deadline", func(t *testing.T) {
		e := start(t, setup{fnEnv: map[string]string{"VERIFY_TIMEOUT": "10s"}})
		if err := e.Graph.SetLag("", 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		token := e.rotateOK(t)
		if c := e.Graph.Calls(); c.Get <= c.Upload {
			t.Errorf("reads = %d, want more than %d: the lag must have been polled through", c.Get, c.Upload)
		}
		e.checkInvariants(t, token)
	})
	// The last read comes at the deadline, not one backoff before it:
	// reads at 0 s, 1 s and 3 s, and the key is visible from 2 s.
	t.Run("2 s within a 3 s verification", func(t *testing.T) {
		e := start(t, setup{fnEnv: map[string]string{"VERIFY_TIMEOUT": "3s"}})
		if err := e.Graph.SetLag("", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		token := e.rotateOK(t)
		e.checkInvariants(t, token)
	})
	t.Run("longer than the verification deadline", func(t *testing.T) {
		e := start(t, setup{fnEnv: map[string]string{"VERIFY_TIMEOUT": "2s"}})
		e.rotateOK(t)
		current := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
		if err := e.Graph.SetLag("", time.Hour); err != nil {
			t.Fatal(err)
		}
		token, _ := e.rotateFails(t, "testSecret", "want")
		e.assertAllHold(t, current)
		e.checkInvariants(t, token)
	})
}

func TestRateLimitBeyondTheDeadlineFailsFast(t *testing.T) {
	e := start(t, setup{})
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Kind: graphsim.FaultGraphError, Code: 80007, RegainAccess: 30 * time.Minute, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	token, _ := e.rotateFails(t, "80007", "retry after ~30 min")
	if c := e.Graph.Calls(); c.Upload != len(e.PhoneNumberIDs()) || c.Get != 0 {
		t.Errorf("calls = %+v, want one upload per number and nothing else", c.OpCounts)
	}
	e.checkInvariants(t, token)
}

func TestInvalidTokenFails(t *testing.T) {
	e := start(t, setup{})
	if _, err := e.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(stack.TokenSecretName), SecretString: aws.String("EAAG-revoked-token"),
	}); err != nil {
		t.Fatal(err)
	}
	// The fix names the secret that holds the token.
	token, msg := e.rotateFails(t, "graph code 190", "fix: ", "secret "+stack.TokenSecretName)
	if strings.Contains(msg, "EAAG-revoked-token") || strings.Contains(e.logs.String(), "EAAG-revoked-token") {
		t.Error("the token appears in an error or a log")
	}
	if c := e.Graph.Calls(); c.Upload != len(e.PhoneNumberIDs()) {
		t.Errorf("uploads = %d: code 190 must not be retried", c.Upload)
	}
	e.checkInvariants(t, token)
}

func TestKMSDownDuringCreateSecretChangesNothing(t *testing.T) {
	e := start(t, setup{})
	e.StopKMS()
	token, _ := e.rotateFails(t, "createSecret", "generate key pair")
	if _, err := e.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(e.arn), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING"),
	}); err == nil {
		t.Error("a value was stored although no key could be generated")
	}
	if c := e.Graph.Calls(); c.Total() != 0 {
		t.Errorf("Graph was called %d times", c.Total())
	}
	e.checkInvariants(t, token)
}

func TestRotateImmediatelyFalseRunsOnlyTestSecret(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	current := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
	e.Graph.ResetCounters()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, err := e.Rotate(ctx, e.arn, false)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := e.WaitRotation(ctx, e.arn, token)
	if err != nil || ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("test-only rotation: %v %+v", err, ev)
	}
	for _, x := range e.Secrets.Events(e.arn) {
		if x.Token == token && x.Type == secretsemu.StepStarted && x.Step != "testSecret" {
			t.Errorf("ran %s; RotateImmediately=false runs testSecret alone", x.Step)
		}
	}
	if c := e.Graph.Calls(); c.Upload != 0 || c.Get != len(e.PhoneNumberIDs()) {
		t.Errorf("calls = %+v, want no upload and one read per number", c.OpCounts)
	}
	if got := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256; got != current {
		t.Error("AWSCURRENT changed")
	}
	e.checkInvariants(t, "")
}

func TestSecondRotateSecretDuringAnIncompleteRotationIsRejected(t *testing.T) {
	e := start(t, setup{})
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	token, _ := e.rotateFails(t)
	_, err := e.Rotate(context.Background(), e.arn, true)
	var ire *smtypes.InvalidRequestException
	if !errors.As(err, &ire) || !strings.Contains(err.Error(), "A previous rotation isn't complete") {
		t.Fatalf("second RotateSecret: want InvalidRequestException, got %v", err)
	}
	e.checkInvariants(t, token)
}

func TestBootstrapKilledDuringSetSecretThenRetriedCompletes(t *testing.T) {
	e := start(t, setup{attempts: 2})
	phone := e.PhoneNumberIDs()[0]
	// Hold the first upload, so the kill lands in the middle of setSecret.
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: phone, Kind: graphsim.FaultDelay, Delay: time.Minute, Times: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token, err := e.Rotate(ctx, e.arn, true)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the held upload", func() bool { return e.Graph.Calls().Of(phone).Upload >= 1 })
	if err := e.KillBootstrap(); err != nil {
		t.Fatal(err)
	}
	ev, err := e.WaitRotation(ctx, e.arn, token)
	if err != nil || ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("rotation after the kill: %v %+v", err, ev)
	}
	var failedSet bool
	for _, x := range e.Secrets.Events(e.arn) {
		if x.Token == token && x.Type == secretsemu.StepFailed && x.Step == "setSecret" && x.Attempt == 1 {
			failedSet = true
		}
	}
	if !failedSet {
		t.Error("no failed setSecret in attempt 1: the kill did not land during setSecret")
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

// waitFor polls a condition the stack offers no event for, with a deadline.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestEventFilesDriveARotationThroughTheRIE invokes events/*.json, the files
// users give `sam local invoke`, through the RIE: the by-hand recovery of a
// rotation whose createSecret failed.
func TestEventFilesDriveARotationThroughTheRIE(t *testing.T) {
	e := start(t, setup{})
	e.StopKMS()
	token, _ := e.rotateFails(t, "createSecret")
	if err := e.StartKMS(context.Background()); err != nil {
		t.Fatal(err)
	}
	root, err := stack.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		raw, err := os.ReadFile(filepath.Join(root, "events", step+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("events/%s.json: %v", step, err)
		}
		if ev["Step"] != step {
			t.Fatalf("events/%s.json has Step %v", step, ev["Step"])
		}
		ev["SecretId"], ev["ClientRequestToken"] = e.arn, token
		body, _ := json.Marshal(ev)
		resp, err := http.Post(e.FunctionURL+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || bytes.Contains(out, []byte("errorMessage")) {
			t.Fatalf("%s: HTTP %d %s", step, resp.StatusCode, out)
		}
	}
	cur := e.doc(t, "AWSCURRENT")
	if cur.Key == nil {
		t.Fatal("the by-hand rotation left no key in AWSCURRENT")
	}
	e.assertAllHold(t, cur.Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

// TestTheDeployedShapeRotates follows what the CDK stack creates: an empty
// secret, a create-only seed labelled flowkey-seed that holds only the
// numbers, CloudFormation's RotateImmediately=false check, then the first
// rotation, with the token secret and Graph version from the environment.
func TestTheDeployedShapeRotates(t *testing.T) {
	e := start(t, setup{})
	ctx := context.Background()
	e.deployedShape(t)
	check, err := e.Rotate(ctx, e.arn, false)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := e.WaitRotation(ctx, e.arn, check); err != nil || ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("deploy-time check: %v %+v", err, ev)
	}
	if c := e.Graph.Calls(); c.Upload != 0 || c.Get != len(e.PhoneNumberIDs()) {
		t.Errorf("deploy-time check made %+v, want one read per number and no upload", c.OpCounts)
	}
	token := e.rotateOK(t)
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

// deployedShape makes e.arn what the CDK stack creates: an empty secret,
// then the seed's create-only version labelled flowkey-seed, which holds
// only the numbers (Secrets Manager makes it AWSCURRENT as the first).
func (e *env) deployedShape(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	out, err := e.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("flowkey/deployed")})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = aws.ToString(out.ARN)
	seed, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{"phone_number_ids": e.PhoneNumberIDs()}})
	if _, err := e.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.arn), ClientRequestToken: aws.String("e0d1db6c-1e5b-5247-af7f-df9e462ab3b5"),
		SecretString: aws.String(string(seed)), VersionStages: []string{"flowkey-seed"},
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTheDeployedShapeWithARevokedTokenFailsTheDeployCheck: CloudFormation's
// RotateSecret(RotateImmediately=false) against a revoked token fails the
// deploy with the function's own message, which names the cause and the
// token secret to fix first and never quotes the token.
func TestTheDeployedShapeWithARevokedTokenFailsTheDeployCheck(t *testing.T) {
	e := start(t, setup{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.deployedShape(t)
	if _, err := e.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(stack.TokenSecretName), SecretString: aws.String("EAAG-revoked-token"),
	}); err != nil {
		t.Fatal(err)
	}
	check, err := e.Rotate(ctx, e.arn, false)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := e.WaitRotation(ctx, e.arn, check); err != nil || ev.Type != secretsemu.RotationFailed {
		t.Fatalf("deploy-time check: %v %+v, want it to fail", err, ev)
	}
	var msg string
	for _, x := range e.Secrets.Events(e.arn) {
		if x.Token == check && x.Type == secretsemu.StepFailed && x.Step == "testSecret" {
			msg = x.Error
		}
	}
	// The emulator records "function error <errorType>: <errorMessage>";
	// CloudFormation gets the errorMessage.
	_, msg, ok := strings.Cut(strings.TrimPrefix(msg, "function error "), ": ")
	want := rotation.DeployCheckPrefix + "Meta rejects the Graph token (code 190). Fix: put a valid system user token into " + stack.TokenSecretName + ". Details: "
	if !ok || !strings.HasPrefix(msg, want) {
		t.Fatalf("testSecret's error message\n%s\nwant it to start with\n%s", msg, want)
	}
	if len(msg) > rotation.DeployCheckMaxBytes {
		t.Errorf("message of %d bytes, want at most %d", len(msg), rotation.DeployCheckMaxBytes)
	}
	if strings.Contains(msg, "EAAG-revoked-token") || strings.Contains(e.logs.String(), "EAAG-revoked-token") {
		t.Error("the token appears in the message or a log")
	}
	if c := e.Graph.Calls(); c.Upload != 0 {
		t.Errorf("the deploy check uploaded %d times", c.Upload)
	}
	if d := e.doc(t, "AWSCURRENT"); d.Key != nil {
		t.Error("the deploy check wrote a key")
	}
}
