package traffic

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/endpointlog"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

func phase(requests, sent, logged, invoked, failures int) Phase {
	return Phase{
		Name:        "p",
		Clients:     waclient.Stats{Requests: requests, Sent: sent, Failures: failures, Causes: map[string]int{"HTTP 500": failures}, Examples: []string{"client 1: HTTP 500"}},
		Endpoint:    endpointlog.Totals{Requests: logged},
		Invocations: invoked,
	}
}

// A check that sees nothing must fail: no traffic proves no zero downtime.
func TestCheckFailsAPhaseThatProvesNothingOrHurtAUser(t *testing.T) {
	tests := []struct {
		name string
		p    Phase
		want string // "" for no error
	}{
		{"good", phase(10, 12, 12, 12, 0), ""},
		{"no traffic", phase(0, 0, 0, 0, 0), "no request was sent"},
		{"no log line read", phase(10, 10, 0, 10, 0), "no endpoint log line was read"},
		{"a request not logged", phase(10, 10, 9, 10, 0), "the clients sent 10 requests, the function got 10 and logged 9"},
		{"a request that never reached the function", phase(10, 10, 9, 9, 0), "the function got 9"},
		{"a user-visible failure", phase(10, 10, 10, 10, 1), "1 user-visible failures map[HTTP 500:1]:\n  client 1: HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWriteTableHasARowPerPhase(t *testing.T) {
	p := Phase{Name: "clean rotation",
		Clients:  waclient.Stats{Requests: 96, Status421: 3, Retries: 3, KeyFetches: 30},
		Endpoint: endpointlog.Totals{Requests: 99, RSAOps: 104, Refreshes: 2, ByLabel: map[string]int{"AWSCURRENT": 80, "AWSPREVIOUS": 16, "": 3}},
	}
	var b bytes.Buffer
	WriteTable(&b, []Phase{p, {Name: "idle"}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "  PHASE ") {
		t.Fatalf("table:\n%s", b.String())
	}
	if f := strings.Fields(strings.TrimPrefix(lines[1], "  clean rotation")); strings.Join(f, " ") != "96 3 3 0 30 2 1.05 current 80, previous 16, no key 3" {
		t.Errorf("row = %q", f)
	}
	if f := strings.Fields(lines[2]); strings.Join(f[len(f)-2:], " ") != "0.00 -" {
		t.Errorf("an empty phase's row = %q", lines[2])
	}
}

func TestClockSkipsForward(t *testing.T) {
	var c Clock
	before := time.Now()
	c.Skip(rotationGap)
	if got := c.Now().Sub(before); got < rotationGap {
		t.Errorf("after Skip the clock is %s ahead, want at least %s", got, rotationGap)
	}
}

// In KMS custody the table gains the endpoint's kms:Decrypt calls per
// request; the rotator's calls are not the endpoint's.
func TestWriteTableAddsKMSDecryptsPerRequestInKMSCustody(t *testing.T) {
	kms := kmsproxy.Calls{
		{Caller: stack.EndpointAccessKeyID, Op: "Decrypt", Key: "k1", Result: kmsproxy.ResultOK}:            100,
		{Caller: stack.EndpointAccessKeyID, Op: "Decrypt", Key: "k1", Result: kmsproxy.ThrottlingException}: 4,
		{Caller: stack.EndpointAccessKeyID, Op: "Decrypt", Key: "k0", Result: "InvalidCiphertextException"}: 6,
		{Caller: stack.EndpointAccessKeyID, Op: "GetPublicKey", Key: "k1", Result: kmsproxy.ResultOK}:       1,
	}
	p := Phase{Name: "clean rotation", Clients: waclient.Stats{Requests: 100}, KMS: kms,
		Endpoint: endpointlog.Totals{Requests: 100, ByLabel: map[string]int{"AWSCURRENT": 100}}}
	if got := p.KMSDecryptsPerRequest(); got != 1.1 {
		t.Errorf("KMSDecryptsPerRequest = %v, want 1.1", got)
	}
	var b bytes.Buffer
	WriteTable(&b, []Phase{p, {Name: "idle"}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if !strings.Contains(lines[0], "RSA OPS/REQUEST  KMS DECRYPTS/REQUEST  DECRYPTED WITH") {
		t.Fatalf("header = %q", lines[0])
	}
	if f := strings.Fields(strings.TrimPrefix(lines[1], "  clean rotation")); strings.Join(f, " ") != "100 0 0 0 0 0 0.00 1.10 current 100" {
		t.Errorf("row = %q", f)
	}
	if f := strings.Fields(lines[2]); strings.Join(f[len(f)-3:], " ") != "0.00 0.00 -" {
		t.Errorf("an empty phase's row = %q", lines[2])
	}
}
