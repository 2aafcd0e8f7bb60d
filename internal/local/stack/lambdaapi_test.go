package stack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// fakeRIE answers invocations with their payload, in the order they
// arrive; a payload "hold" waits for release first.
type fakeRIE struct {
	mu      sync.Mutex
	got     []string
	arrived chan struct{} // closed when "hold" arrives
	release chan struct{}
}

func (f *fakeRIE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if string(b) == `"hold"` {
		close(f.arrived)
		<-f.release
	}
	f.mu.Lock()
	f.got = append(f.got, string(b))
	f.mu.Unlock()
	w.Write(b)
}

func newTestInvokeAPI(t *testing.T) (*httptest.Server, *fakeRIE, *apiParts) {
	t.Helper()
	fake := &fakeRIE{arrived: make(chan struct{}), release: make(chan struct{})}
	rie := httptest.NewServer(fake)
	t.Cleanup(rie.Close)
	s := &Stack{async: newAsyncRuns()}
	t.Cleanup(s.async.close)
	inv := &secretsemu.RIEInvoker{BaseURL: rie.URL}
	api := httptest.NewServer(s.newInvokeAPI(inv, "fn", "arn:aws:lambda:us-east-1:111122223333:function:fn"))
	t.Cleanup(api.Close)
	return api, fake, &apiParts{stack: s, rie: inv}
}

// apiParts are what a test drives beside the API.
type apiParts struct {
	stack *Stack
	rie   *secretsemu.RIEInvoker
}

func invoke(t *testing.T, url, name, typ, payload string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/2015-03-31/functions/"+name+"/invocations", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if typ != "" {
		req.Header.Set("X-Amz-Invocation-Type", typ)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestInvokeAPIAnswersAsLambda(t *testing.T) {
	api, _, _ := newTestInvokeAPI(t)
	for _, tc := range []struct {
		name, fn, typ string
		status        int
		errType, body string
	}{
		{"request-response by name", "fn", "", 200, "", `{"a":1}`},
		{"request-response by ARN", "arn:aws:lambda:us-east-1:111122223333:function:fn", "RequestResponse", 200, "", `{"a":1}`},
		{"event", "fn", "Event", 202, "", ""},
		{"dry run", "fn", "DryRun", 204, "", ""},
		{"unknown function", "other", "Event", 404, "ResourceNotFoundException", ""},
		{"unknown invocation type", "fn", "Later", 400, "InvalidParameterValueException", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := invoke(t, api.URL, tc.fn, tc.typ, `{"a":1}`)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Amzn-ErrorType") != tc.errType {
				t.Fatalf("HTTP %d, error type %q, want %d, %q: %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), tc.status, tc.errType, body)
			}
			if tc.errType == "" && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
}

// The caller of an Event invocation is usually the invocation in
// progress: it gets its 202 at once, and the payload runs once that
// invocation has returned.
func TestAnEventRunsAfterTheInvocationInProgress(t *testing.T) {
	api, fake, p := newTestInvokeAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	held := make(chan error, 1)
	go func() {
		_, err := p.rie.Invoke(ctx, "fn", []byte(`"hold"`))
		held <- err
	}()
	select {
	case <-fake.arrived:
	case <-ctx.Done():
		t.Fatal("the held invocation never reached the RIE")
	}
	if resp, body := invoke(t, api.URL, "fn", "Event", `"event"`); resp.StatusCode != http.StatusAccepted || body != "" {
		t.Fatalf("Event during an invocation: HTTP %d %q, want 202 and no body", resp.StatusCode, body)
	}
	fake.mu.Lock()
	ranEarly := slices.Contains(fake.got, `"event"`)
	fake.mu.Unlock()
	if ranEarly {
		t.Fatal("the event ran beside the invocation in progress")
	}
	close(fake.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	runs, err := p.stack.async.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || string(runs[0].Result) != `"event"` || runs[0].Err != nil || runs[0].Function != "fn" {
		t.Fatalf("runs = %+v", runs)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.Equal(fake.got, []string{`"hold"`, `"event"`}) {
		t.Errorf("the RIE ran %v, want the held invocation, then the event", fake.got)
	}
}

func TestFleetEnvironmentNamesTheFleetsVariables(t *testing.T) {
	o := FleetOptions{Tenants: 3}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	fn := fleetFunctionEnv(o, "arn:aws:kms:us-east-1:111122223333:key/k", "http://127.0.0.1:1")
	for _, name := range config.FleetNames() {
		if _, ok := fn[name]; !ok && name != config.EnvFleetAppSecretPrefix {
			t.Errorf("the rotator's fleet environment lacks %s", name)
		}
	}
	if fn["AWS_ENDPOINT_URL_LAMBDA"] == "" {
		t.Error("the rotator cannot reach the Lambda API")
	}
	ep := fleetEndpointEnv(o)
	for _, name := range config.EndpointFleetNames() {
		if _, ok := ep[name]; !ok && name != config.EnvFleetAppSecretPrefix {
			t.Errorf("the endpoint's fleet environment lacks %s", name)
		}
	}
	if ep[config.EnvEndpointRingCache] != "256" {
		t.Errorf("ring cache %s for 3 tenants, want the default 256", ep[config.EnvEndpointRingCache])
	}
	big := FleetOptions{Tenants: 1000}
	if err := big.defaults(); err != nil || fleetEndpointEnv(big)[config.EnvEndpointRingCache] != "1000" {
		t.Errorf("ring cache for 1000 tenants: %v, %v", fleetEndpointEnv(big), err)
	}
	for _, bad := range []int{0, -1, config.MaxEndpointRingCache + 1} {
		o := FleetOptions{Tenants: bad}
		if err := o.defaults(); err == nil {
			t.Errorf("Tenants %d accepted", bad)
		}
	}
}
