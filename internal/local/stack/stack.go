// Package stack runs flowkey's whole product on one machine, with no
// AWS account and no Docker: the Secrets Manager emulator and the Graph API
// simulator in process, local-kms and the AWS Lambda Runtime Interface
// Emulator (running the real bootstrap) as child processes, all on free
// loopback ports. The demo, `make local-up` and the integration tests use it.
//
// Beside the rotator, a second RIE runs the Flows endpoint
// (functions/endpoint), served at EndpointURL the way a Function URL
// serves it (internal/local/funcurl), with the sample backend of
// internal/local/flowbackend behind it at BackendURL and the Meta app
// secret it checks in the AppSecretName secret. Its JSON log lines are
// counted in EndpointLog.
//
// Both functions reach KMS through KMSProxy (internal/local/kmsproxy), in
// front of local-kms: it counts their calls apart (each signs with its own
// access key ID), injects the faults tests script, and answers as AWS does
// where local-kms does not. The stack's own KMS client goes to local-kms
// directly, unfaulted and uncounted.
//
// With Options.Fleet the stack is a fleet (issue 13): both functions get
// the fleet's variables (FLEET_NAME and the rest of config.FleetNames and
// config.EndpointFleetNames, ENDPOINT_RING_CACHE at least the tenant
// count); the Graph simulator holds one WABA per tenant (TenantWABAID) with
// numbers of its own and a token that reaches only that WABA, stored in
// the tenant's token secret under flowkey/tokens/; and the rotator's
// AWS_ENDPOINT_URL_LAMBDA is Lambda's Invoke API, whose Event invocations
// (a fleet status's continuation) answer 202 at once and run after the
// invocation in progress (AsyncInvocations waits for them). Tenants are
// enrolled, rotated, unenrolled and read through the real function
// (EnrollTenant, RotateTenant, UnenrollTenant, FleetStatus), and reached
// at EndpointURL + "/t/<tenant>". The pinned RIE puts its own account in
// the function's ARN (RIEFunctionARN, not FunctionARN): that is the ARN
// enroll turns rotation on with. Without Options.Fleet nothing of this is
// set up, and the functions' environments are as before.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/local/endpointlog"
	"github.com/flowkey/flowkey/internal/local/flowbackend"
	"github.com/flowkey/flowkey/internal/local/funcurl"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// Fixed names of the local stack, so scripts and docs can name them.
const (
	Region          = "us-east-1"
	AccountID       = "111122223333"
	FunctionARN     = "arn:aws:lambda:us-east-1:111122223333:function:flowkey-rotator"
	DefaultWABAID   = "102290129340398"
	TokenSecretName = "flowkey/graph-token"
	KeySecretName   = "flowkey/whatsapp-flows-key"
)

// DefaultFunctionTimeout is the deployed function's timeout (infra/'s and
// template.yaml's): the default settings are planned for it, and a shorter
// one fails the function's start-up check (internal/config).
const DefaultFunctionTimeout = config.DefaultFunctionTimeout

// Options configure a stack. Zero values take the defaults noted.
type Options struct {
	Binaries Binaries // required: see Build
	Dir      string   // scratch directory for local-kms data (required)
	// PhoneNumbers in the simulated WABA (3).
	PhoneNumbers int
	// GraphToken is the only token the simulator accepts ("flowkey-local-token").
	GraphToken string
	// FunctionTimeout is the Lambda timeout the RIE enforces, and the
	// function's FUNCTION_TIMEOUT (DefaultFunctionTimeout).
	FunctionTimeout time.Duration
	// FunctionEnv adds or overrides the function's environment.
	FunctionEnv map[string]string
	// NoKMS leaves KMS_KEY_ID unset, so the function uses crypto/rsa.
	NoKMS bool
	// RotationAttempts and RetryDelay drive the emulator's reattempts of a
	// failed rotation (3, 1s). AWS documents no count, only that Secrets
	// Manager "retries the entire rotation process multiple times", so the
	// stack does the same as the emulator's default, 3 attempts, and waits
	// only a second between them so that `make demo` and `make local-up`
	// show a failure's reattempts without a long wait. Tests that want one
	// attempt say RotationAttempts: 1.
	RotationAttempts int
	RetryDelay       time.Duration
	// Output receives the child processes' output, the function's JSON
	// logs among them (io.Discard).
	Output io.Writer
	// EndpointEnv adds or overrides the endpoint's environment. Without it
	// the endpoint runs with the product's defaults (the key ring's TTL and
	// floor among them), as deployed.
	EndpointEnv map[string]string
	// GraphNow is the Graph simulator's clock (time.Now): its lag windows
	// are measured on it.
	GraphNow func() time.Time
	// LambdaBackend runs the sample backend as a Lambda function under its
	// own RIE (BACKEND_FUNCTION, reached through LambdaURL) instead of over
	// HTTP (BACKEND_URL).
	LambdaBackend bool
	// Fleet, when set, runs both functions as a fleet (see FleetOptions);
	// nil leaves the fleet off, as deployed by default. FunctionEnv and
	// EndpointEnv override its variables.
	Fleet *FleetOptions
}

// Stack is a running local stack.
type Stack struct {
	SecretsURL, KMSURL, GraphURL, FunctionURL string
	// KMSProxyURL is the functions' KMS endpoint (AWS_ENDPOINT_URL_KMS):
	// KMSProxy in front of local-kms at KMSURL.
	KMSProxyURL string
	KMSProxy    *kmsproxy.Proxy
	// Secrets and Graph are the in-process emulators, for controls and checks.
	Secrets *secretsemu.Server
	Graph   *graphsim.Sim
	// SM and KMS are real SDK clients pointed at the emulators (KMS at
	// local-kms itself, not through the proxy).
	SM        *secretsmanager.Client
	KMS       *kms.Client
	KMSKeyARN string
	// Invoker serialises invocations: the RIE serves one at a time.
	Invoker *secretsemu.RIEInvoker

	// EndpointURL takes what Meta sends to a Flows endpoint; the endpoint
	// checks AppSecret (stored in AppSecretARN, AppSecretName) and calls
	// the sample Backend at BackendURL.
	EndpointURL, BackendURL string
	AppSecret, AppSecretARN string
	Backend                 *flowbackend.Server
	Endpoint                *funcurl.Adapter
	EndpointInvoker         *secretsemu.RIEInvoker
	EndpointLog             *endpointlog.Recorder
	endpointProc            *process
	// LambdaURL serves Lambda's Invoke API for the backend function, with
	// Options.LambdaBackend.
	LambdaURL   string
	backendProc *process

	opts     Options
	fleet    *fleetState // nil: the fleet is off
	async    *asyncRuns  // the Event invocations of the Lambda APIs
	servers  []*http.Server
	localKMS *LocalKMS
	rieProc  *process
	procs    []*process // every process started but local-kms's
	// smListener is opened before the function starts, because the
	// function's environment names its URL; Start serves it last.
	smListener net.Listener
	// lambdaListener serves the rotator's Lambda API (fleet only), opened
	// before the function starts for the same reason.
	lambdaListener net.Listener
	rieAddr        string
}

// Start brings the stack up. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	if opts.Binaries.Bootstrap == "" || opts.Binaries.Endpoint == "" || opts.Dir == "" {
		return nil, errors.New("stack: Options.Binaries and Options.Dir are required")
	}
	if opts.PhoneNumbers == 0 {
		opts.PhoneNumbers = 3
	}
	if opts.GraphToken == "" {
		opts.GraphToken = DefaultGraphToken
	}
	if opts.FunctionTimeout == 0 {
		opts.FunctionTimeout = DefaultFunctionTimeout
	}
	if opts.RotationAttempts == 0 {
		opts.RotationAttempts = secretsemu.DefaultRotationAttempts
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	s = &Stack{opts: opts, async: newAsyncRuns()}
	if opts.Fleet != nil {
		f := *opts.Fleet
		if err := f.defaults(); err != nil {
			return nil, err
		}
		s.fleet = &fleetState{opts: f, byID: map[string]int{}, tokens: map[string]int{}}
	}
	// The error returns below set s to nil: close what the stack started
	// through a copy.
	started := s
	defer func() {
		if err != nil {
			started.Close()
		}
	}()

	if s.Graph, err = graphsim.NewDemoOptions(graphsim.Options{Token: opts.GraphToken, Now: opts.GraphNow}, DefaultWABAID, opts.PhoneNumbers); err != nil {
		return nil, err
	}
	if s.GraphURL, err = s.serve(s.Graph); err != nil {
		return nil, err
	}
	if err = s.startKMS(ctx); err != nil {
		return nil, err
	}
	if err = s.startKMSProxy(); err != nil {
		return nil, err
	}
	if err = s.startFunction(ctx); err != nil {
		return nil, err
	}
	if err = s.startBackend(); err != nil {
		return nil, err
	}
	if opts.LambdaBackend {
		if err = s.startBackendLambda(ctx); err != nil {
			return nil, err
		}
	}
	if err = s.startEndpoint(ctx); err != nil {
		return nil, err
	}
	s.Invoker = &secretsemu.RIEInvoker{BaseURL: s.rieURL()}
	if s.FunctionURL, err = s.serve(s.Invoker); err != nil {
		return nil, err
	}
	s.Secrets, err = secretsemu.New(secretsemu.Options{
		Region: Region, AccountID: AccountID, Invoker: s.Invoker,
		RotationAttempts: opts.RotationAttempts, RetryDelay: opts.RetryDelay,
	})
	if err != nil {
		return nil, err
	}
	// The function needs the Secrets Manager URL before it starts, so the
	// emulator's listener is opened first and served now.
	if err = s.serveOn(s.smListener, s.Secrets); err != nil {
		return nil, err
	}
	s.SM = secretsmanager.New(secretsmanager.Options{
		Region: Region, BaseEndpoint: aws.String(s.SecretsURL), Credentials: localCredentials(),
	})
	if err = s.createAppSecret(ctx); err != nil {
		return nil, err
	}
	if s.fleet != nil {
		if err = s.startFleet(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func localCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("local", "local", "")
}

// serve runs h on a new loopback listener and returns its URL.
func (s *Stack) serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	return "http://" + l.Addr().String(), s.serveOn(l, h)
}

func (s *Stack) serveOn(l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(l) }()
	return nil
}

func (s *Stack) startKMS(ctx context.Context) error {
	k, err := StartLocalKMS(ctx, s.opts.Binaries.LocalKMS, filepath.Join(s.opts.Dir, "kms"), s.opts.Output)
	if err != nil {
		return err
	}
	s.localKMS, s.KMSURL = k, k.URL
	s.KMS = kms.New(kms.Options{Region: Region, BaseEndpoint: aws.String(s.KMSURL), Credentials: localCredentials()})
	out, err := s.KMS.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("flowkey local stack"),
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
	})
	if err != nil {
		return fmt.Errorf("local-kms CreateKey: %w", err)
	}
	s.KMSKeyARN = aws.ToString(out.KeyMetadata.Arn)
	return nil
}

// StartKMS starts local-kms again after StopKMS, on the same port.
func (s *Stack) StartKMS(ctx context.Context) error { return s.localKMS.Start(ctx) }

// StopKMS stops local-kms, so that KMS calls fail as when KMS is unreachable.
func (s *Stack) StopKMS() { s.localKMS.Stop() }

func (s *Stack) rieURL() string { return "http://" + s.rieAddr }

func (s *Stack) startFunction(ctx context.Context) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.smListener = l
	s.SecretsURL = "http://" + l.Addr().String()

	riePort, err := freePort()
	if err != nil {
		return err
	}
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	s.rieAddr = "127.0.0.1:" + strconv.Itoa(riePort)
	env := map[string]string{
		// Only what the function needs: nothing of the host's AWS set-up
		// may leak in.
		"AWS_REGION":                       Region,
		"AWS_ACCESS_KEY_ID":                RotatorAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            "local",
		"AWS_CONFIG_FILE":                  os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":      os.DevNull,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.SecretsURL,
		"AWS_ENDPOINT_URL_KMS":             s.KMSProxyURL,
		"AWS_LAMBDA_FUNCTION_NAME":         "flowkey-rotator",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":      strconv.Itoa(int(s.opts.FunctionTimeout.Seconds())),
		config.EnvFunctionTimeout:          s.opts.FunctionTimeout.String(),
		config.EnvGraphBaseURL:             s.GraphURL,
		config.EnvAccessTokenSecretID:      TokenSecretName,
		config.EnvSecretID:                 KeySecretName,
		envCustodyRotatorRole:              RotatorRoleARN,
		envCustodyDecryptRoles:             EndpointRoleARN,
		"PATH":                             os.Getenv("PATH"),
	}
	if !s.opts.NoKMS {
		env[config.EnvKMSKeyID] = s.KMSKeyARN
	}
	if s.fleet != nil {
		lambdaURL, err := s.listenLambda()
		if err != nil {
			return err
		}
		maps.Copy(env, fleetFunctionEnv(s.fleet.opts, s.KMSKeyARN, lambdaURL))
	}
	for k, v := range s.opts.FunctionEnv {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	p, err := startProcess("rie", s.opts.Output, list, s.opts.Binaries.RIE,
		"--runtime-interface-emulator-address", s.rieAddr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		s.opts.Binaries.Bootstrap)
	if err != nil {
		return err
	}
	s.rieProc = p
	s.procs = append(s.procs, p)
	return waitListening(ctx, p, s.rieAddr)
}

// OutputErr reports output of the stack's processes that did not reach
// Options.Output: a line too long to copy, or a failed write. Tests that
// scan the output must fail on it, since what is missing was not scanned.
// After Close it covers everything the processes printed.
func (s *Stack) OutputErr() error {
	var errs []error
	for _, p := range s.procs {
		errs = append(errs, p.outputErr())
	}
	if s.localKMS != nil {
		errs = append(errs, s.localKMS.OutputErr())
	}
	return errors.Join(errs...)
}

// KillBootstrap kills the function's process, as a Lambda crash or an
// out-of-memory kill would. The RIE starts a fresh one for the next
// invocation.
func (s *Stack) KillBootstrap() error {
	kids := children(s.rieProc.cmd.Process.Pid)
	if len(kids) == 0 {
		return errors.New("stack: the RIE has no running bootstrap")
	}
	for _, pid := range kids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return err
		}
	}
	return nil
}

// Close stops everything the stack started: the rotation driver first, then
// the function, so nothing is mid-call when the servers go.
func (s *Stack) Close() {
	if s.Secrets != nil {
		_ = s.Secrets.Close()
	}
	// A queued continuation is dropped, one running cut short.
	s.async.cancel()
	s.rieProc.stop(5 * time.Second)
	s.endpointProc.stop(5 * time.Second)
	s.backendProc.stop(5 * time.Second)
	// Close, not Shutdown: Shutdown waits up to 5 s for connections a
	// client dialed but never used, and a teardown has nothing to drain.
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.smListener != nil {
		s.smListener.Close()
	}
	if s.lambdaListener != nil {
		s.lambdaListener.Close()
	}
	s.async.close()
	s.localKMS.Stop()
}
