package stack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// invokeAPI is Lambda's Invoke, POST /2015-03-31/functions/{name}/invocations,
// for one function under an RIE, answered as Lambda answers it:
//   - RequestResponse (the default): HTTP 200 with the function's payload,
//     and X-Amz-Function-Error when the function failed;
//   - Event: HTTP 202 with an empty body at once; the payload runs later,
//     through rie (which queues it behind the invocation in progress: the
//     caller is often that invocation, so running it now would deadlock);
//   - DryRun: HTTP 204.
//
// A name that is not the function's (its name or unqualified ARN) is
// ResourceNotFoundException, HTTP 404.
type invokeAPI struct {
	names []string
	rie   *secretsemu.RIEInvoker
	async *asyncRuns
}

func (s *Stack) newInvokeAPI(rie *secretsemu.RIEInvoker, names ...string) *invokeAPI {
	return &invokeAPI{names: names, rie: rie, async: s.async}
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
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
	case "Event":
		a.async.start(name, payload, a.rie)
		w.WriteHeader(http.StatusAccepted)
		return
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		lambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "1 validation error detected: Value '"+clipHeader(typ)+"' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
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

func clipHeader(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func lambdaError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"Type": "User", "message": msg})
	_, _ = w.Write(body)
}

// AsyncInvocation is one Event invocation the stack's Lambda API accepted,
// once it ran: its payload, and the function's answer or error. Lambda
// does not retry a failed one here: infra/ sets MaximumRetryAttempts 0.
type AsyncInvocation struct {
	Function string
	Payload  []byte
	Result   []byte
	Err      error
}

// asyncRuns runs accepted Event invocations in the background, each after
// the invocation in progress (the RIE's queue), and keeps their outcomes.
type asyncRuns struct {
	ctx    context.Context // ends at Close: a queued run is then dropped
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	pending int
	done    []AsyncInvocation
	idle    chan struct{} // closed and replaced whenever pending drops to 0 or a run ends
}

func newAsyncRuns() *asyncRuns {
	a := &asyncRuns{idle: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

func (a *asyncRuns) start(name string, payload []byte, rie *secretsemu.RIEInvoker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.done = append(a.done, AsyncInvocation{Function: name, Payload: payload, Err: errors.New("stack: the stack is closing")})
		return
	}
	a.pending++
	a.wg.Go(func() {
		out, err := rie.Invoke(a.ctx, name, payload)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.pending--
		a.done = append(a.done, AsyncInvocation{Function: name, Payload: payload, Result: out, Err: err})
		close(a.idle)
		a.idle = make(chan struct{})
	})
}

// wait blocks until no Event invocation is queued or running, and returns
// the ones that ran, in the order they ended.
func (a *asyncRuns) wait(ctx context.Context) ([]AsyncInvocation, error) {
	for {
		a.mu.Lock()
		pending, done, idle := a.pending, append([]AsyncInvocation(nil), a.done...), a.idle
		a.mu.Unlock()
		if pending == 0 {
			return done, nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return done, ctx.Err()
		}
	}
}

func (a *asyncRuns) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
}

// AsyncInvocations waits until every Event invocation of the rotator (a
// fleet status's continuation) accepted so far has run, those it started
// included, and returns all that ran since the stack started, in order.
func (s *Stack) AsyncInvocations(ctx context.Context) ([]AsyncInvocation, error) {
	return s.async.wait(ctx)
}
