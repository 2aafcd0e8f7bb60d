package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Files Serve keeps in its state directory while the stack runs.
const (
	StateFile    = "stack.json" // Endpoints, for scripts
	CommandsFile = "stack.txt"  // the endpoints and commands Serve prints
)

// invocationsPath is where the RIE, and the stack's queueing proxy in front
// of it, take an invocation.
const invocationsPath = "/2015-03-31/functions/function/invocations"

// Endpoints is what StateFile holds: how to reach a running local stack.
type Endpoints struct {
	PID               int       `json:"pid"`
	StartedAt         time.Time `json:"started_at"`
	Region            string    `json:"region"`
	SecretsManagerURL string    `json:"secrets_manager_url"`
	EventsURL         string    `json:"events_url"`
	KMSURL            string    `json:"kms_url"`
	KMSKeyARN         string    `json:"kms_key_arn"`
	// KMSProxyURL is the functions' KMS endpoint: the fault-injecting
	// proxy in front of local-kms, with its controls under /_kms/.
	KMSProxyURL   string `json:"kms_proxy_url"`
	GraphURL      string `json:"graph_url"`
	GraphStateURL string `json:"graph_state_url"`
	// InvokeURL takes a rotation event, as the RIE does, but queues it so
	// that concurrent invocations cannot crash the RIE.
	InvokeURL      string   `json:"invoke_url"`
	FunctionARN    string   `json:"function_arn"`
	KeySecretName  string   `json:"key_secret_name"`
	KeySecretARN   string   `json:"key_secret_arn"`
	TokenSecretARN string   `json:"token_secret_arn"`
	WABAID         string   `json:"waba_id"`
	PhoneNumberIDs []string `json:"phone_number_ids"`
	// FirstVersionID is the key secret's configuration-only version.
	FirstVersionID string `json:"first_version_id"`
	// EndpointURL is the Flows endpoint, served as a Function URL; it
	// checks AppSecret, stored in the secret AppSecretName, and calls the
	// sample backend at BackendURL.
	EndpointURL   string `json:"endpoint_url"`
	AppSecret     string `json:"app_secret"`
	AppSecretName string `json:"app_secret_name"`
	BackendURL    string `json:"backend_url"`
}

// ServeOptions configure Serve.
type ServeOptions struct {
	Binaries stack.Binaries // required: see stack.Build
	// Dir is scratch space for the stack (required); the caller removes it.
	Dir string
	// StateDir receives StateFile and CommandsFile (required).
	StateDir string
	// PhoneNumbers in the simulated WABA (3).
	PhoneNumbers int
	// Out receives the endpoints and commands (required).
	Out io.Writer
	// Logs receives the child processes' output (io.Discard).
	Logs io.Writer
	// Ready, when set, is called once StateFile is written.
	Ready func(*stack.Stack, Endpoints)
}

// AlreadyRunningError is Serve's refusal to start a second stack on the same
// state directory.
type AlreadyRunningError struct {
	PID       int
	StateFile string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("a local stack is already running (pid %d, per %s): stop it with `make local-down` first", e.PID, e.StateFile)
}

// Serve starts the local stack, creates the Graph token secret and the
// configuration-only key secret without starting a rotation, writes
// StateFile and CommandsFile, prints the endpoints and commands to try,
// and runs until ctx ends; then it stops the stack and removes both files.
func Serve(ctx context.Context, opts ServeOptions) error {
	if opts.Out == nil || opts.Dir == "" || opts.StateDir == "" {
		return errors.New("demo: ServeOptions.Out, Dir and StateDir are required")
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	if err := CheckNotRunning(opts.StateDir); err != nil {
		return err
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}

	lst, err := stack.Start(ctx, stack.Options{
		Binaries: opts.Binaries, Dir: opts.Dir, PhoneNumbers: opts.PhoneNumbers, Output: opts.Logs,
	})
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer lst.Close()
	e, err := deploy(ctx, lst)
	if err != nil {
		return err
	}

	text := Commands(e)
	remove, err := writeState(opts.StateDir, e, text)
	defer remove()
	if err != nil {
		return err
	}
	fmt.Fprint(opts.Out, text)
	if opts.Ready != nil {
		opts.Ready(lst, e)
	}

	<-ctx.Done()
	fmt.Fprintf(opts.Out, "stopping the local stack (%v)\n", context.Cause(ctx))
	return nil
}

// deploy leaves the stack as a CDK deploy leaves AWS: both secrets, the key
// secret configuration-only with rotation configured. It returns how to
// reach the stack.
func deploy(ctx context.Context, lst *stack.Stack) (Endpoints, error) {
	tokenARN, err := lst.CreateTokenSecret(ctx)
	if err != nil {
		return Endpoints{}, err
	}
	phones := lst.PhoneNumberIDs()
	keyARN, err := lst.CreateKeySecret(ctx, stack.KeySecretName, secretdoc.Config{PhoneNumberIDs: phones})
	if err != nil {
		return Endpoints{}, err
	}
	// Configure rotation as a CDK deploy does: Secrets Manager runs
	// testSecret alone against the configuration, and from then on the
	// rotator's own {"command":"rotate"} can start rotations.
	check, err := lst.Rotate(ctx, keyARN, false)
	if err != nil {
		return Endpoints{}, fmt.Errorf("configure rotation: %w", err)
	}
	if ev, err := lst.WaitRotation(ctx, keyARN, check); err != nil || ev.Type != secretsemu.RotationSucceeded {
		return Endpoints{}, fmt.Errorf("configure rotation: the deploy-time testSecret ended with %v %s", err, ev.Error)
	}
	desc, err := lst.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(keyARN)})
	if err != nil {
		return Endpoints{}, fmt.Errorf("describe %s: %w", keyARN, err)
	}
	var first string
	for id := range desc.VersionIdsToStages {
		first = id
	}
	return Endpoints{
		PID: os.Getpid(), StartedAt: time.Now().UTC().Truncate(time.Second), Region: stack.Region,
		SecretsManagerURL: lst.SecretsURL, EventsURL: lst.SecretsURL + "/_emulator/events",
		KMSURL: lst.KMSURL, KMSKeyARN: lst.KMSKeyARN, KMSProxyURL: lst.KMSProxyURL,
		GraphURL: lst.GraphURL, GraphStateURL: lst.GraphURL + "/_sim/state",
		InvokeURL: lst.FunctionURL + invocationsPath, FunctionARN: stack.FunctionARN,
		KeySecretName: stack.KeySecretName, KeySecretARN: keyARN, TokenSecretARN: tokenARN,
		WABAID: stack.DefaultWABAID, PhoneNumberIDs: phones, FirstVersionID: first,
		EndpointURL: lst.EndpointURL, AppSecret: lst.AppSecret, AppSecretName: stack.AppSecretName, BackendURL: lst.BackendURL,
	}, nil
}

// writeState writes CommandsFile, then StateFile: whoever sees StateFile may
// print CommandsFile. The returned func removes what was written, also
// after an error, in reverse order for the same reason.
func writeState(stateDir string, e Endpoints, text string) (remove func(), err error) {
	var written []string
	remove = func() {
		for _, p := range slices.Backward(written) {
			os.Remove(p)
		}
	}
	cmds := filepath.Join(stateDir, CommandsFile)
	if err := writeFileAtomic(cmds, []byte(text)); err != nil {
		return remove, err
	}
	written = append(written, cmds)
	body, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return remove, err
	}
	statePath := filepath.Join(stateDir, StateFile)
	if err := writeFileAtomic(statePath, append(body, '\n')); err != nil {
		return remove, err
	}
	written = append(written, statePath)
	return remove, nil
}

// CheckNotRunning returns an *AlreadyRunningError when StateFile in
// stateDir names a live process other than this one.
func CheckNotRunning(stateDir string) error {
	if prev, err := ReadEndpoints(stateDir); err == nil && alive(prev.PID) && prev.PID != os.Getpid() {
		return &AlreadyRunningError{PID: prev.PID, StateFile: filepath.Join(stateDir, StateFile)}
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadEndpoints reads StateFile from stateDir.
func ReadEndpoints(stateDir string) (Endpoints, error) {
	var e Endpoints
	path := filepath.Join(stateDir, StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s is not a local stack's state file: %w; remove it", path, err)
	}
	if e.PID <= 0 {
		return e, fmt.Errorf("%s has no pid (pid %d); remove it", path, e.PID)
	}
	return e, nil
}

// Stop ends the stack that StateFile in stateDir names: SIGTERM, then it
// waits up to grace for the process to exit (Serve then removes the state
// files). A stack already gone only has its stale files removed. It reports
// what it did on out.
func Stop(ctx context.Context, stateDir string, grace time.Duration, out io.Writer) error {
	e, err := ReadEndpoints(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "no local stack is running (no %s)\n", filepath.Join(stateDir, StateFile))
		return nil
	}
	if err != nil {
		return err
	}
	if !alive(e.PID) {
		removeState(stateDir)
		fmt.Fprintf(out, "the local stack (pid %d) was not running; removed its stale state files\n", e.PID)
		return nil
	}
	if err := syscall.Kill(e.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop the local stack (pid %d): %w", e.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	// A process that is not our child gives no exit notification: poll.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(e.PID) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the local stack (pid %d) is still running %s after SIGTERM; see .local/stack.log, or kill -9 %d: %w",
				e.PID, grace, e.PID, ctx.Err())
		case <-tick.C:
		}
	}
	// Serve removes the files itself; a stack killed another way does not.
	removeState(stateDir)
	fmt.Fprintf(out, "local stack stopped (pid %d)\n", e.PID)
	return nil
}

func removeState(stateDir string) {
	os.Remove(filepath.Join(stateDir, StateFile))
	os.Remove(filepath.Join(stateDir, CommandsFile))
}

// alive reports whether pid is a live process. A zombie is not: it has
// exited, and its parent (init, for a detached stack) may never reap it.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// jsonCall is one AWS JSON 1.1 request: printed as a curl command, and sent
// the same way by the tests.
type jsonCall struct {
	Target string // e.g. "secretsmanager.RotateSecret"
	Body   string
}

// headers are what the AWS JSON 1.1 protocol needs; the emulator accepts any
// Authorization value but, like AWS, refuses a request without one.
func (c jsonCall) headers() map[string]string {
	return map[string]string{
		"Content-Type":  "application/x-amz-json-1.1",
		"X-Amz-Target":  c.Target,
		"Authorization": "local",
	}
}

func (c jsonCall) curl(url string) string {
	h := c.headers()
	return fmt.Sprintf("curl -s %s -H 'Content-Type: %s' -H 'X-Amz-Target: %s' -H 'Authorization: %s' -d '%s'",
		url, h["Content-Type"], h["X-Amz-Target"], h["Authorization"], c.Body)
}

// rotationRules are the schedule the commands set: AWS's rules, which the
// emulator validates as AWS does.
const rotationRules = `{"ScheduleExpression":"rate(30 days)","Duration":"2h"}`

func rotateCall(e Endpoints) jsonCall {
	return jsonCall{Target: "secretsmanager.RotateSecret", Body: fmt.Sprintf(
		`{"SecretId":%q,"RotationLambdaARN":%q,"RotationRules":%s}`, e.KeySecretName, e.FunctionARN, rotationRules)}
}

func describeCall(e Endpoints) jsonCall {
	return jsonCall{Target: "secretsmanager.DescribeSecret", Body: fmt.Sprintf(`{"SecretId":%q}`, e.KeySecretName)}
}

// invokeBody is a testSecret event for the configuration-only version: the
// rotator's guards answer it without a rotation in progress.
func invokeBody(e Endpoints) string {
	return fmt.Sprintf(`{"Step":"testSecret","SecretId":%q,"ClientRequestToken":%q}`, e.KeySecretARN, e.FirstVersionID)
}

// Commands is the text Serve prints: every endpoint, and commands to paste.
func Commands(e Endpoints) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	aws := "aws --endpoint-url " + e.SecretsManagerURL + " secretsmanager"
	w("flowkey local stack is up (pid %d); `make local-down` stops it.", e.PID)
	w("")
	w("Endpoints (loopback only, except local-kms, which listens on every interface):")
	w("  Secrets Manager (AWS JSON 1.1)   %s", e.SecretsManagerURL)
	w("  rotation timeline                %s", e.EventsURL)
	w("  KMS (local-kms)                  %s   key %s", e.KMSURL, e.KMSKeyARN)
	w("  KMS proxy (the functions' KMS)   %s   calls %s/_kms/calls", e.KMSProxyURL, e.KMSProxyURL)
	w("  Graph API simulator              %s   state %s", e.GraphURL, e.GraphStateURL)
	w("  rotation function (Lambda RIE)   %s", e.InvokeURL)
	w("  function ARN                     %s", e.FunctionARN)
	w("  secrets                          %s (configuration only; rotation configured as a deploy leaves it, no key yet), %s", e.KeySecretName, stack.TokenSecretName)
	w("  WABA %s                  %s", e.WABAID, firstFew(e.PhoneNumberIDs, 5))
	w("")
	w("The AWS CLI needs credentials and a region; any values do:")
	w("  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=%s", e.Region)
	w("")
	w("Operator commands, sent to the function as `aws lambda invoke` would:")
	w("  make status LOCAL=1          # per number: the key Meta holds and which version matches it")
	w("  make rotate-now LOCAL=1      # start a rotation now; returns the new version at once")
	w("  make resync LOCAL=1 DRY_RUN=1")
	w("")
	w("Rotate the key (RotateSecret returns at once; the emulator then invokes the four steps):")
	w("  %s rotate-secret --secret-id %s --rotation-lambda-arn %s --rotation-rules '%s'", aws, e.KeySecretName, e.FunctionARN, rotationRules)
	w("Follow the rotation:")
	w("  curl -s '%s?secret=%s'", e.EventsURL, e.KeySecretName)
	w("Look at the secret (versions, labels, rotation dates):")
	w("  %s describe-secret --secret-id %s", aws, e.KeySecretName)
	w("  %s list-secret-version-ids --secret-id %s --include-deprecated", aws, e.KeySecretName)
	w("What Meta holds now (fingerprints, statuses, call counters):")
	w("  curl -s %s", e.GraphStateURL)
	w("Make Meta fail the next two uploads with 131000 (the rotator retries), then rotate again:")
	w(`  curl -s %s/_sim/faults -d '{"op":"upload","kind":"graph_error","code":131000,"times":2}'`, e.GraphURL)
	w("Make KMS throttle the endpoint's next 20 kms:Decrypt calls (KMS custody; the routes: %s):", kmsproxy.ControlRoutes)
	w(`  curl -s %s/_kms/faults -d '{"op":"Decrypt","caller":"%s","error":"ThrottlingException","times":20}'`, e.KMSProxyURL, stack.EndpointAccessKeyID)
	w("Invoke one step directly, as Secrets Manager does; on the configuration-only version the rotator's guards refuse it and say why:")
	w("  curl -s %s -d '%s'", e.InvokeURL, invokeBody(e))
	w("Without the AWS CLI: the same RotateSecret and DescribeSecret with curl:")
	w("  %s", rotateCall(e).curl(e.SecretsManagerURL))
	w("  %s", describeCall(e).curl(e.SecretsManagerURL))
	flowsCommands(w, e)
	return b.String()
}
