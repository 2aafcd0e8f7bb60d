package stack

import (
	"context"
	"os"
	"strconv"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// Names of the sample backend when it runs as a Lambda function
// (Options.LambdaBackend).
const (
	BackendFunctionName = "flowkey-backend"
	BackendFunctionARN  = "arn:aws:lambda:us-east-1:111122223333:function:flowkey-backend"
)

// startBackendLambda runs the sample backend under a third RIE and serves
// Lambda's Invoke API in front of it at LambdaURL, for the endpoint's
// BACKEND_FUNCTION. The RIE itself only serves the function name
// "function", so the endpoint's SDK client, which puts the configured name
// in the path, talks to the Invoke API instead.
func (s *Stack) startBackendLambda(ctx context.Context) error {
	riePort, err := freePort()
	if err != nil {
		return err
	}
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(riePort)
	env := []string{
		"AWS_REGION=" + Region, "AWS_LAMBDA_FUNCTION_NAME=" + BackendFunctionName,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=8", "PATH=" + os.Getenv("PATH"),
	}
	p, err := startProcess("backend", s.opts.Output, env, s.opts.Binaries.RIE,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		s.opts.Binaries.Backend)
	if err != nil {
		return err
	}
	s.backendProc = p
	if err := waitListening(ctx, p, addr); err != nil {
		return err
	}
	s.LambdaURL, err = s.serve(s.newInvokeAPI(&secretsemu.RIEInvoker{BaseURL: "http://" + addr}, BackendFunctionName, BackendFunctionARN))
	return err
}
