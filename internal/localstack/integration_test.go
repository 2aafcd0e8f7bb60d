package localstack_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/localstack"
	"github.com/flowkey/flowkey/internal/secretdoc"
	"github.com/flowkey/flowkey/internal/secretsemu"
)

// binaries are built once by TestMain and only read afterwards.
var binaries localstack.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := localstack.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "flowkey-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binaries, err = localstack.Build(context.Background(), root, dir); err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need the bootstrap, local-kms and the RIE:", err)
		return 1
	}
	return m.Run()
}

// syncBuffer collects the children's output (the function's logs).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	*localstack.Stack
	arn  string
	logs *syncBuffer
}

type setup struct {
	phones   int
	attempts int
	fnEnv    map[string]string
	timeout  time.Duration
	noKMS    bool
}

func start(t *testing.T, s setup) *env {
	t.Helper()
	logs := &syncBuffer{}
	fnEnv := map[string]string{"VERIFY_TIMEOUT": "3s", "GRAPH_MAX_ATTEMPTS": "3"}
	for k, v := range s.fnEnv {
		fnEnv[k] = v
	}
	stack, err := localstack.Start(context.Background(), localstack.Options{
		Binaries: binaries, Dir: t.TempDir(), PhoneNumbers: s.phones, FunctionEnv: fnEnv,
		FunctionTimeout: s.timeout, NoKMS: s.noKMS,
		RotationAttempts: max(s.attempts, 1), RetryDelay: 10 * time.Millisecond, Output: logs,
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	e := &env{Stack: stack, logs: logs}
	t.Cleanup(func() {
		stack.Close()
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
	if _, err := stack.CreateTokenSecret(ctx); err != nil {
		t.Fatal(err)
	}
	if e.arn, err = stack.CreateKeySecret(ctx, localstack.KeySecretName, secretdoc.Config{PhoneNumberIDs: stack.PhoneNumberIDs()}); err != nil {
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
func (e *env) rotate(t *testing.T) (string, secretsemu.Event) {
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

func (e *env) doc(t *testing.T, stage string) *secretdoc.Document {
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

// checkInvariants is run after every scenario.
func (e *env) checkInvariants(t *testing.T, inProgress string) {
	t.Helper()
	ctx := context.Background()
	desc, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.arn)})
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
		t.Errorf("invariant: %d versions are AWSCURRENT, want exactly 1", len(current))
	}
	for _, p := range pending {
		if (len(current) == 0 || p != current[0]) && p != inProgress {
			t.Errorf("invariant: AWSPENDING sits on %s, which is neither current nor the rotation in progress (%q)", p, inProgress)
		}
	}
	held := map[string]bool{}
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
		out, err := e.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arn), VersionStage: aws.String(stage)})
		if err != nil {
			continue
		}
		if d, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString))); err == nil && d.Key != nil {
			held[d.Key.FingerprintSHA256] = true
		}
	}
	for phone, der := range e.Graph.Keys() {
		if len(der) == 0 {
			continue
		}
		if fp := keypair.FingerprintOf(der).String(); !held[fp] {
			t.Errorf("invariant: Meta holds %.16s for %s, whose private key is in neither AWSCURRENT nor AWSPENDING", fp, phone)
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
	e.checkInvariants(t, token)
}
