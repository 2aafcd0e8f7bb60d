package secretsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Invoker runs one synchronous invocation of a rotation function. err is
// non-nil when the invocation failed for any reason, including a function
// error (*FunctionError); result is the function's response payload.
type Invoker interface {
	Invoke(ctx context.Context, functionARN string, payload []byte) (result []byte, err error)
}

// InvokerFunc adapts a function to Invoker.
type InvokerFunc func(ctx context.Context, functionARN string, payload []byte) ([]byte, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, functionARN string, payload []byte) ([]byte, error) {
	return f(ctx, functionARN, payload)
}

// FunctionError is a failed invocation the function (or its runtime) is
// responsible for: a handler error, a crashed bootstrap, a timeout.
type FunctionError struct {
	// Type is Lambda's errorType, for example "errorString" for a Go handler
	// error, "Runtime.ExitError" for a crashed bootstrap, "Sandbox.Timedout".
	Type string
	// Message is Lambda's errorMessage, as the function reported it.
	Message string
	// StatusCode is the HTTP status the RIE answered with.
	StatusCode int
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// RIE paths and limits.
const (
	riePath = "/2015-03-31/functions/function/invocations"
	// maxPayload is Lambda's synchronous response limit; a larger body means
	// something other than a rotation function is answering.
	maxPayload = 6 << 20
	// busyBackoffMin and busyBackoffMax bound the wait between attempts while
	// an RIE reports that it is already running an invocation.
	busyBackoffMin = 10 * time.Millisecond
	busyBackoffMax = 250 * time.Millisecond
)

// RIEInvoker invokes the function run by an AWS Lambda Runtime Interface
// Emulator (aws-lambda-rie), which serves a single function at
// {BaseURL}/2015-03-31/functions/function/invocations; functionARN is
// therefore ignored.
//
// The RIE runs one invocation at a time, and the pinned version does not
// reject a second concurrent one: it dereferences a nil reservation and the
// whole process dies (aws-lambda-runtime-interface-emulator issues #97 and
// #131). RIEInvoker therefore queues its own invocations, and it is also an
// http.Handler that forwards invocations from elsewhere (a demo, curl, the
// rotator's own commands) through the same queue: point every client at it
// instead of at the RIE. RIE versions that answer a concurrent invocation
// with HTTP 400 instead are handled too: the invocation is retried with a
// short backoff until ctx ends.
//
// Outcomes: HTTP 200 with a JSON body holding errorType and errorMessage is
// a handler error; HTTP 200 with "Task timed out after N seconds" is a
// timeout; HTTP 502 is a crashed bootstrap (Runtime.ExitError). All three are
// *FunctionError and are not retried here; the rotation driver treats them
// as a failed step. A connection error is returned wrapped, also unretried.
//
// The zero value is not usable: BaseURL is required. Client defaults to a
// client without a timeout (ctx bounds each invocation). Use a *RIEInvoker.
type RIEInvoker struct {
	BaseURL string
	Client  *http.Client

	once sync.Once
	// turn holds one token; whoever holds it may talk to the RIE.
	turn chan struct{}
}

var (
	_ Invoker      = (*RIEInvoker)(nil)
	_ http.Handler = (*RIEInvoker)(nil)
)

func (r *RIEInvoker) init() {
	r.once.Do(func() {
		r.turn = make(chan struct{}, 1)
		r.turn <- struct{}{}
	})
}

// acquire waits for the RIE to be ours, or for ctx to end.
func (r *RIEInvoker) acquire(ctx context.Context) error {
	r.init()
	select {
	case <-r.turn:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the RIE at %s to finish another invocation: %w", r.BaseURL, ctx.Err())
	}
}

func (r *RIEInvoker) release() { r.turn <- struct{}{} }

// rieResponse is what the RIE answered.
type rieResponse struct {
	status      int
	contentType string
	body        []byte
}

// post sends payload to the RIE, retrying while it reports busy (HTTP 400).
// The caller holds the turn.
func (r *RIEInvoker) post(ctx context.Context, payload []byte) (rieResponse, error) {
	if r.BaseURL == "" {
		return rieResponse{}, errors.New("RIEInvoker.BaseURL is empty: set it to the RIE's address, for example http://127.0.0.1:9000")
	}
	url := strings.TrimSuffix(r.BaseURL, "/") + riePath
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	backoff := busyBackoffMin
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		if err != nil {
			return rieResponse{}, fmt.Errorf("building the request for the RIE at %s: %w", r.BaseURL, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if backoff > busyBackoffMin && ctx.Err() != nil {
				// ctx ended during a retry: the cause is the busy RIE.
				return rieResponse{}, fmt.Errorf("the RIE at %s stayed busy with another invocation: %w", r.BaseURL, ctx.Err())
			}
			return rieResponse{}, fmt.Errorf("invoking the RIE at %s: %w", r.BaseURL, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPayload+1))
		resp.Body.Close()
		if err != nil {
			return rieResponse{}, fmt.Errorf("reading the RIE's answer from %s: %w", r.BaseURL, err)
		}
		if len(body) > maxPayload {
			return rieResponse{}, fmt.Errorf("the RIE at %s answered more than %d bytes, Lambda's synchronous limit", r.BaseURL, maxPayload)
		}
		if resp.StatusCode != http.StatusBadRequest {
			return rieResponse{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return rieResponse{}, fmt.Errorf("the RIE at %s stayed busy with another invocation: %w", r.BaseURL, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, busyBackoffMax)
	}
}

// Invoke implements Invoker.
func (r *RIEInvoker) Invoke(ctx context.Context, _ string, payload []byte) ([]byte, error) {
	if err := r.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.release()
	resp, err := r.post(ctx, payload)
	if err != nil {
		return nil, err
	}
	if ferr := functionErrorOf(resp); ferr != nil {
		return nil, ferr
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("the RIE at %s answered HTTP %d: %s", r.BaseURL, resp.status, snippet(resp.body))
	}
	return resp.body, nil
}

// ServeHTTP forwards an invocation to the RIE in turn with Invoke, so a
// client can never run into an invocation of the rotation driver.
func (r *RIEInvoker) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/invocations") {
		http.Error(w, "POST /2015-03-31/functions/function/invocations with the event as body", http.StatusNotFound)
		return
	}
	payload, err := io.ReadAll(io.LimitReader(req.Body, maxPayload+1))
	if err != nil || len(payload) > maxPayload {
		http.Error(w, fmt.Sprintf("reading the event: at most %d bytes", maxPayload), http.StatusRequestEntityTooLarge)
		return
	}
	if err := r.acquire(req.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer r.release()
	resp, err := r.post(req.Context(), payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.contentType != "" {
		w.Header().Set("Content-Type", resp.contentType)
	}
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

// functionErrorOf recognises the RIE's ways of reporting a failed function.
func functionErrorOf(resp rieResponse) *FunctionError {
	var body struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage *string `json:"errorMessage"`
	}
	trimmed := bytes.TrimSpace(resp.body)
	isErrorBody := len(trimmed) > 0 && trimmed[0] == '{' &&
		json.Unmarshal(trimmed, &body) == nil && body.ErrorType != nil && body.ErrorMessage != nil
	switch {
	case isErrorBody && (resp.status == http.StatusOK || resp.status >= 500):
		return &FunctionError{Type: *body.ErrorType, Message: *body.ErrorMessage, StatusCode: resp.status}
	case resp.status == http.StatusOK && bytes.HasPrefix(trimmed, []byte("Task timed out")):
		return &FunctionError{Type: "Sandbox.Timedout", Message: string(trimmed), StatusCode: resp.status}
	case resp.status == http.StatusBadGateway:
		return &FunctionError{Type: "Runtime.Unknown", Message: snippet(resp.body), StatusCode: resp.status}
	}
	return nil
}

// snippet keeps error text short: a body is quoted only to help diagnose.
func snippet(b []byte) string {
	const n = 512
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
