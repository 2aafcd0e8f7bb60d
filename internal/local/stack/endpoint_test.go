package stack_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/traffic"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// post sends one request to the endpoint as curl would.
func post(t *testing.T, url, method string, body []byte, signature string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(waclient.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The endpoint binary, under its RIE behind the Function URL adapter,
// answers Meta's requests with the sample backend behind it, and every
// malformed request with its documented status.
func TestTheEndpointAnswersThroughTheFunctionURL(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	d, err := traffic.New(e.Stack, waclient.Options{Clients: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := d.Rounds(ctx, "flows", 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if e.Backend.Calls() == 0 {
		t.Error("the sample backend was never called")
	}

	secret := []byte(e.AppSecret)
	ping := []byte(`{"version":"3.0","action":"ping"}`)
	before := e.EndpointLog.Totals()
	invoked := e.Endpoint.Invocations()
	for _, c := range []struct {
		name   string
		method string
		body   []byte
		sig    string
		want   int
	}{
		{"a signed body that is not encrypted", http.MethodPost, ping, waclient.Sign(secret, ping), 421},
		{"no signature", http.MethodPost, ping, "", 432},
		{"another app's signature", http.MethodPost, ping, waclient.Sign([]byte("other"), ping), 432},
		{"a GET", http.MethodGet, nil, "", 405},
		{"2 MB", http.MethodPost, bytes.Repeat([]byte("a"), 2<<20), "", 413},
	} {
		if got := post(t, e.EndpointURL, c.method, c.body, c.sig); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, got, c.want)
		}
	}
	// 7 MB is over Lambda's payload limit: the Function URL refuses it
	// before the function runs.
	if got := post(t, e.EndpointURL, http.MethodPost, bytes.Repeat([]byte("a"), 7<<20), ""); got != 413 || e.Endpoint.Invocations() != invoked+5 {
		t.Errorf("7 MB: HTTP %d after %d invocations, want 413 and no invocation", got, e.Endpoint.Invocations()-invoked)
	}
	got, err := e.EndpointLog.WaitRequests(ctx, before.Requests+5)
	if err != nil {
		t.Fatal(err)
	}
	d5 := got.Sub(before)
	if d5.ByStatus[421] != 1 || d5.ByStatus[432] != 2 || d5.ByStatus[405] != 1 || d5.ByStatus[413] != 1 || d5.RSAOps != 0 {
		t.Errorf("the endpoint logged %v with %d RSA operations; want 421, 2x432, 405, 413 and none", d5.ByStatus, d5.RSAOps)
	}
	if out := e.logs.String(); strings.Contains(out, e.AppSecret) {
		t.Error("the process output contains the app secret")
	}
}

// With BACKEND_FUNCTION the endpoint invokes the sample backend as a
// Lambda function (under its own RIE, through Lambda's Invoke API), not
// over HTTP.
func TestTheEndpointCallsABackendLambdaFunction(t *testing.T) {
	e := start(t, setup{lambdaBackend: true})
	e.rotateOK(t)
	d, err := traffic.New(e.Stack, waclient.Options{Clients: 3, Seed: 6, Mix: &waclient.Mix{Expired: 0.6, Back: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := d.Rounds(ctx, "flows", 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if p.Clients.Verified == 0 || p.Clients.Expired == 0 || p.Endpoint.ByOutcome["ok"] == 0 {
		t.Errorf("got %s, endpoint outcomes %v; want screens and expired-token 427s from the backend", p.Clients, p.Endpoint.ByOutcome)
	}
	if n := e.Backend.Calls(); n != 0 {
		t.Errorf("the HTTP backend got %d calls; the Lambda function should have had them all", n)
	}
	if !strings.Contains(e.logs.String(), "[backend] ") || !strings.Contains(e.logs.String(), `"msg":"flowbackend: call answered"`) {
		t.Error("the backend function's log lines are not in the process output")
	}
}
