package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// The test binary doubles as a stack process for the Stop tests.
const (
	helperEnv      = "FLOWKEY_DEMO_TEST_HELPER" // "serve", "ignore-term" or a Detach mode (detachHelper)
	helperStateEnv = "FLOWKEY_DEMO_TEST_STATE"
	helperBinEnv   = "FLOWKEY_DEMO_TEST_BIN"
	helperReady    = "HELPER READY"
)

// helper runs as a child test process: "serve" is the local-up command
// (Serve until SIGTERM); "ignore-term" writes a state file naming itself and
// ignores SIGTERM, like a stack that hangs on the way down.
func helper(mode string) int {
	state := os.Getenv(helperStateEnv)
	switch mode {
	case "serve":
		return serveHelper(state, io.Discard, func(*stack.Stack, Endpoints) { fmt.Println(helperReady) })
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		body, _ := json.Marshal(Endpoints{PID: os.Getpid()})
		if err := os.WriteFile(filepath.Join(state, StateFile), body, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(helperReady)
		_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		return 0
	}
	if code, ok := detachHelper(mode, state); ok {
		return code
	}
	fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperEnv, mode)
	return 2
}

// helperCommand runs the test binary in helper mode.
func helperCommand(mode, state string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperStateEnv+"="+state, helperBinEnv+"="+binaries.Bootstrap)
	return cmd
}

// serveHelper is Serve until SIGTERM, on the binaries TestMain built.
func serveHelper(state string, out io.Writer, ready func(*stack.Stack, Endpoints)) int {
	dir := filepath.Dir(os.Getenv(helperBinEnv))
	bins := stack.Binaries{Bootstrap: filepath.Join(dir, "bootstrap"), Endpoint: filepath.Join(dir, "endpoint"),
		LocalKMS: filepath.Join(dir, "local-kms"), RIE: filepath.Join(dir, "aws-lambda-rie")}
	scratch, err := os.MkdirTemp("", "flowkey-demo-helper-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(scratch)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := Serve(ctx, ServeOptions{Binaries: bins, Dir: scratch, StateDir: state, Out: out, Ready: ready}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startHelper runs the test binary in helper mode and waits for its ready line.
func startHelper(t *testing.T, mode, state string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := helperCommand(mode, state)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == helperReady {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return cmd, stdin
		}
	}
	t.Fatalf("the helper (%s) exited before it was ready: %v", mode, sc.Err())
	return nil, nil
}

// send makes one HTTP request and returns the status and body.
func send(t *testing.T, method, url, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

type ready struct {
	lst *stack.Stack
	e   Endpoints
}

// checkStateFiles checks what a ready Serve has written and printed: the
// endpoints of its stack, and the commands to paste.
func checkStateFiles(t *testing.T, state string, r ready, printed string) {
	t.Helper()
	e := r.e
	got, err := ReadEndpoints(state)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("%s = %+v, want %+v", StateFile, got, e)
	}
	if e.PID != os.Getpid() || e.SecretsManagerURL != r.lst.SecretsURL || e.InvokeURL != r.lst.FunctionURL+invocationsPath || len(e.PhoneNumberIDs) != 3 ||
		e.EndpointURL != r.lst.EndpointURL || e.AppSecret != r.lst.AppSecret || len(e.AppSecret) != 32 || e.BackendURL != r.lst.BackendURL {
		t.Errorf("endpoints %+v do not describe this stack", e)
	}
	text, err := os.ReadFile(filepath.Join(state, CommandsFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != Commands(e) || !strings.HasPrefix(printed, Commands(e)) {
		t.Errorf("%s and the printed text are not Commands(endpoints)", CommandsFile)
	}
	for _, want := range []string{
		"aws --endpoint-url " + e.SecretsManagerURL + " secretsmanager rotate-secret --secret-id flowkey/whatsapp-flows-key --rotation-lambda-arn " + stack.FunctionARN,
		"export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1",
		"curl -s " + e.GraphStateURL, "curl -s '" + e.EventsURL + "?secret=flowkey/whatsapp-flows-key'",
		"endpoint URL (Meta POSTs here)   " + e.EndpointURL, "app secret it checks             " + e.AppSecret,
		PingCommand, signedGarbage(e).curl(), badSignature(e).curl(),
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the commands lack %q", want)
		}
	}
	checkNoSecrets(t, "the commands", string(text))
}

// TestServeRunsTheStackAndItsCommandsWork follows the printed commands, as a
// user of make local-up would, with the same requests curl sends.
func TestServeRunsTheStackAndItsCommandsWork(t *testing.T) {
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	readyc := make(chan ready, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Binaries: binaries, Dir: t.TempDir(), StateDir: state, Out: &out,
			Ready: func(s *stack.Stack, e Endpoints) { readyc <- ready{s, e} }})
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("Serve returned before it was ready: %v", err)
	}
	e := r.e

	checkStateFiles(t, state, r, out.String())

	var pinged bytes.Buffer
	if err := Ping(ctx, e, PingOptions{Out: &pinged}); err == nil || !strings.Contains(err.Error(), "make rotate-now LOCAL=1") {
		t.Errorf("Ping before the first rotation = %v, want an error saying to rotate first", err)
	}

	// As after a CDK deploy: rotation is configured, no key exists yet.
	status, body := send(t, http.MethodPost, e.SecretsManagerURL, describeCall(e).Body, describeCall(e).headers())
	if status != http.StatusOK || !strings.Contains(body, `"RotationEnabled":true`) || !strings.Contains(body, `"RotationLambdaARN"`) {
		t.Errorf("DescribeSecret before a rotation = %d %s, want rotation configured", status, body)
	}

	status, body = send(t, http.MethodPost, e.SecretsManagerURL, rotateCall(e).Body, rotateCall(e).headers())
	var rotated struct{ VersionId string }
	if err := json.Unmarshal([]byte(body), &rotated); status != http.StatusOK || err != nil || rotated.VersionId == "" {
		t.Fatalf("RotateSecret as printed = %d %s (%v)", status, body, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	end, err := r.lst.WaitRotation(wctx, e.KeySecretARN, rotated.VersionId)
	if err != nil || end.Type != secretsemu.RotationSucceeded {
		t.Fatalf("the rotation started with the printed command ended with %s %s (%v)", end.Type, end.Error, err)
	}

	// Now a ping works, as Meta's health check would, and so does a Flow.
	// (The endpoint's first request loads its key ring: sent before the
	// rotation, it would hold a ring loaded too recently to refresh again
	// within KEYRING_REFRESH_FLOOR of the rotation's end.)
	for action, want := range map[string]string{"ping": `decrypted answer: {"data":{"status":"active"}}`, "INIT": `"screen":"PARTY"`} {
		pinged.Reset()
		if err := Ping(ctx, e, PingOptions{Action: action, Out: &pinged}); err != nil || !strings.Contains(pinged.String(), want) ||
			!strings.Contains(pinged.String(), "curl -si "+e.EndpointURL) {
			t.Errorf("Ping %s after the rotation = %v, printed:\n%s\nwant %q and the curl", action, err, pinged.String(), want)
		}
	}

	// The ready-made curls: the signature is checked first.
	for _, c := range []struct {
		call flowsCall
		want int
	}{{signedGarbage(e), 421}, {badSignature(e), 432}} {
		resp, _, err := c.call.send(ctx)
		if err != nil || resp.StatusCode != c.want {
			t.Errorf("%s = %v %v, want HTTP %d", c.call.curl(), resp, err, c.want)
		}
	}

	status, body = send(t, http.MethodGet, e.EventsURL+"?secret="+e.KeySecretName, "", nil)
	var events struct{ Events []secretsemu.Event }
	if err := json.Unmarshal([]byte(body), &events); status != http.StatusOK || err != nil || len(events.Events) == 0 ||
		events.Events[len(events.Events)-1].Type != secretsemu.RotationSucceeded {
		t.Errorf("GET %s = %d %s, want the timeline ending in RotationSucceeded", e.EventsURL, status, body)
	}
	status, body = send(t, http.MethodPost, e.SecretsManagerURL, describeCall(e).Body, describeCall(e).headers())
	if status != http.StatusOK || !strings.Contains(body, `"RotationEnabled":true`) || !strings.Contains(body, rotated.VersionId) {
		t.Errorf("DescribeSecret after the rotation = %d %s, want rotation enabled and version %s", status, body, rotated.VersionId)
	}
	status, body = send(t, http.MethodGet, e.GraphStateURL, "", nil)
	if status != http.StatusOK || strings.Count(body, `"business_public_key_signature_status": "VALID"`) < 3 {
		t.Errorf("GET %s = %d, want 3 numbers VALID:\n%s", e.GraphStateURL, status, body)
	}
	// The direct invocation reaches the bootstrap, whose guard refuses a
	// version that is no longer the rotation in progress.
	status, body = send(t, http.MethodPost, e.InvokeURL, invokeBody(e), nil)
	if status != http.StatusOK || !strings.Contains(body, "not staged AWSPENDING") {
		t.Errorf("POST %s = %d %s, want the rotator's guard error", e.InvokeURL, status, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
	for _, f := range []string{StateFile, CommandsFile} {
		if _, err := os.Stat(filepath.Join(state, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after Serve returned (%v)", f, err)
		}
	}
	checkStopped(t, r.lst)
}

func TestServeRefusesWhileAnotherStackRuns(t *testing.T) {
	state := t.TempDir()
	// The go test driver is alive and is not this process.
	before, _ := json.Marshal(Endpoints{PID: os.Getppid()})
	if err := os.WriteFile(filepath.Join(state, StateFile), before, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Serve(context.Background(), ServeOptions{Binaries: binaries, Dir: t.TempDir(), StateDir: state, Out: io.Discard})
	var running *AlreadyRunningError
	if !errors.As(err, &running) || running.PID != os.Getppid() || !strings.Contains(err.Error(), "make local-down") {
		t.Fatalf("Serve = %v, want an *AlreadyRunningError naming pid %d and make local-down", err, os.Getppid())
	}
	if after, _ := os.ReadFile(filepath.Join(state, StateFile)); !bytes.Equal(after, before) {
		t.Errorf("Serve changed the running stack's %s", StateFile)
	}
	if kids := leftovers(t); len(kids) > 0 {
		t.Errorf("Serve started processes although it refused: %v", kids)
	}
}

func TestStopEndsTheServingProcessAndItsChildren(t *testing.T) {
	state := t.TempDir()
	cmd, _ := startHelper(t, "serve", state)
	e, err := ReadEndpoints(state)
	if err != nil {
		t.Fatal(err)
	}
	if e.PID != cmd.Process.Pid {
		t.Fatalf("%s names pid %d, want the helper's %d", StateFile, e.PID, cmd.Process.Pid)
	}
	var out bytes.Buffer
	if err := Stop(context.Background(), state, 15*time.Second, &out); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("local stack stopped (pid %d)", e.PID)) {
		t.Errorf("Stop said %q", out.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the stack process exited with %v, want a clean exit on SIGTERM", err)
	}
	if _, err := os.Stat(filepath.Join(state, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", StateFile, err)
	}
	if kids := leftovers(t); len(kids) > 0 {
		t.Errorf("processes left after Stop: %v", kids)
	}
}

func TestStopGivesUpOnAProcessThatIgnoresSIGTERM(t *testing.T) {
	state := t.TempDir()
	cmd, _ := startHelper(t, "ignore-term", state)
	err := Stop(context.Background(), state, 200*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d) is still running", cmd.Process.Pid)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("kill -9 %d", cmd.Process.Pid)) {
		t.Fatalf("Stop = %v, want an error naming pid %d and kill -9", err, cmd.Process.Pid)
	}
	if _, err := os.Stat(filepath.Join(state, StateFile)); err != nil {
		t.Errorf("Stop removed the state file of a process still running: %v", err)
	}
}

func TestStopWithoutALiveStack(t *testing.T) {
	// A process that has exited leaves a stale pid behind.
	dead := exec.Command(binaries.Bootstrap)
	dead.Env = []string{}
	_ = dead.Run()
	tests := []struct {
		name      string
		state     string // StateFile content; "" for none
		wantOut   string
		wantErr   string
		wantState bool // StateFile still there afterwards
	}{
		{name: "no state file", wantOut: "no local stack is running"},
		{name: "stale pid", state: fmt.Sprintf(`{"pid":%d}`, dead.Process.Pid), wantOut: "was not running; removed its stale state files"},
		{name: "not JSON", state: "pid=12", wantErr: "is not a local stack's state file", wantState: true},
		{name: "no pid", state: `{"region":"us-east-1"}`, wantErr: "has no pid", wantState: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			if tt.state != "" {
				if err := os.WriteFile(filepath.Join(state, StateFile), []byte(tt.state), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := Stop(context.Background(), state, time.Second, &out)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Stop = %v, want error %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("Stop said %q, want %q", out.String(), tt.wantOut)
			}
			_, statErr := os.Stat(filepath.Join(state, StateFile))
			if (statErr == nil) != tt.wantState {
				t.Errorf("state file there afterwards: %v, want %v", statErr == nil, tt.wantState)
			}
		})
	}
}
