package stack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

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
	s.LambdaURL, err = s.serve(&invokeAPI{names: []string{BackendFunctionName, BackendFunctionARN}, rie: &secretsemu.RIEInvoker{BaseURL: "http://" + addr}})
	return err
}

// invokeAPI is Lambda's synchronous Invoke, POST
// /2015-03-31/functions/{name}/invocations, for one function under an RIE:
// the answer is the function's payload, with X-Amz-Function-Error when the
// function failed, as Lambda answers it.
type invokeAPI struct {
	names []string
	rie   *secretsemu.RIEInvoker
}

func (a *invokeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/")
	rest, ok2 := strings.CutSuffix(rest, "/invocations")
	name, err := url.PathUnescape(rest)
	known := false
	for _, n := range a.names {
		known = known || n == name
	}
	if r.Method != http.MethodPost || !ok || !ok2 || err != nil || !known {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+name)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
	if err != nil {
		lambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "cannot read the payload")
		return
	}
	out, err := a.rie.Invoke(r.Context(), name, payload)
	var fe *secretsemu.FunctionError
	switch {
	case errors.As(err, &fe):
		body, _ := json.Marshal(map[string]string{"errorType": fe.Type, "errorMessage": fe.Message})
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	case err != nil:
		lambdaError(w, http.StatusInternalServerError, "ServiceException", "the function could not be invoked")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	}
}

func lambdaError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"Type": "User", "message": msg})
	_, _ = w.Write(body)
}
