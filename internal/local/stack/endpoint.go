package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/endpointlog"
	"github.com/flowkey/flowkey/internal/local/flowbackend"
	"github.com/flowkey/flowkey/internal/local/funcurl"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// Fixed names of the endpoint side of the local stack.
const (
	// AppSecretName is the secret holding the Meta app secret the endpoint
	// checks X-Hub-Signature-256 with, as {"app_secret":"..."}.
	AppSecretName        = "flowkey/meta-app-secret"
	EndpointFunctionName = "flowkey-endpoint"
	EndpointFunctionARN  = "arn:aws:lambda:us-east-1:111122223333:function:flowkey-endpoint"
	// DefaultGraphToken is the Graph simulator's token unless
	// Options.GraphToken says otherwise.
	DefaultGraphToken = "flowkey-local-token"
)

// startBackend serves the sample Flow backend on loopback, verifying the
// endpoint's signature with a fresh app secret (also when the endpoint
// calls the backend as a Lambda function: the app secret is the stack's).
func (s *Stack) startBackend() error {
	secret := make([]byte, 16)
	rand.Read(secret)
	// 32 hex digits, the form of a Meta app secret.
	s.AppSecret = hex.EncodeToString(secret)
	s.Backend = &flowbackend.Server{
		AppSecret: []byte(s.AppSecret),
		Logger:    slog.New(slog.NewJSONHandler(&prefixWriter{prefix: "[backend] ", w: s.opts.Output}, nil)),
	}
	var err error
	s.BackendURL, err = s.serve(s.Backend)
	return err
}

// startEndpoint runs the endpoint binary under its own RIE and serves it
// at EndpointURL as a Function URL does. The Secrets Manager URL and the
// backend must be known.
func (s *Stack) startEndpoint(ctx context.Context) error {
	riePort, err := freePort()
	if err != nil {
		return err
	}
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(riePort)
	env := map[string]string{
		// As for the rotator: nothing of the host's AWS set-up leaks in.
		"AWS_REGION":                       Region,
		"AWS_ACCESS_KEY_ID":                EndpointAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            "local",
		"AWS_CONFIG_FILE":                  os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":      os.DevNull,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": s.SecretsURL,
		"AWS_ENDPOINT_URL_KMS":             s.KMSProxyURL,
		"AWS_LAMBDA_FUNCTION_NAME":         EndpointFunctionName,
		// Meta gives up after 10 s.
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "10",
		"KEY_SECRET_ID":               KeySecretName,
		"APP_SECRET_ID":               AppSecretName,
		"BACKEND_URL":                 s.BackendURL,
		"PATH":                        os.Getenv("PATH"),
	}
	if s.opts.LambdaBackend {
		delete(env, "BACKEND_URL")
		env["BACKEND_FUNCTION"] = BackendFunctionName
		env["AWS_ENDPOINT_URL_LAMBDA"] = s.LambdaURL
	}
	if s.fleet != nil {
		maps.Copy(env, fleetEndpointEnv(s.fleet.opts))
	}
	for k, v := range s.opts.EndpointEnv {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	s.EndpointLog = &endpointlog.Recorder{}
	p, err := startProcess("endpoint", io.MultiWriter(s.opts.Output, s.EndpointLog), list, s.opts.Binaries.RIE,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		s.opts.Binaries.Endpoint)
	if err != nil {
		return err
	}
	s.endpointProc = p
	if err := waitListening(ctx, p, addr); err != nil {
		return err
	}
	// The RIE runs one invocation at a time and dies on a second
	// concurrent one: the invoker queues them, as it does the rotator's.
	s.EndpointInvoker = &secretsemu.RIEInvoker{BaseURL: "http://" + addr}
	s.Endpoint = &funcurl.Adapter{Invoker: s.EndpointInvoker, FunctionARN: EndpointFunctionARN, Region: Region}
	s.EndpointURL, err = s.serve(s.Endpoint)
	return err
}

// createAppSecret stores the app secret where APP_SECRET_ID points.
func (s *Stack) createAppSecret(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"app_secret": s.AppSecret})
	if err != nil {
		return err
	}
	out, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(AppSecretName), SecretString: aws.String(string(body)),
	})
	if err != nil {
		return fmt.Errorf("create the app secret: %w", err)
	}
	s.AppSecretARN = aws.ToString(out.ARN)
	return nil
}

// prefixWriter prefixes every Write, which slog makes one line each, the way
// the stack prefixes its child processes' lines.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
