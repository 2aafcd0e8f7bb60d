package stack_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// invoke sends an operator command to the function through the RIE, as
// `aws lambda invoke` would, and decodes its result into out. It returns
// the function error's message, or "".
func (e *env) invoke(t *testing.T, payload string, out any) string {
	t.Helper()
	resp, err := http.Post(e.FunctionURL+"/2015-03-31/functions/function/invocations", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s: HTTP %d %s", payload, resp.StatusCode, body)
	}
	var fnErr struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &fnErr) == nil && fnErr.ErrorMessage != "" {
		return fnErr.ErrorMessage
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("invoke %s: decode %s: %v", payload, body, err)
		}
	}
	return ""
}

func (e *env) status(t *testing.T) operator.StatusReport {
	t.Helper()
	var r operator.StatusReport
	if msg := e.invoke(t, `{"command":"status"}`, &r); msg != "" {
		t.Fatalf("status: %s", msg)
	}
	return r
}

func numberStatus(r operator.StatusReport, phone string) operator.NumberStatus {
	for _, n := range r.Numbers {
		if n.PhoneNumberID == phone {
			return n
		}
	}
	return operator.NumberStatus{}
}

func TestRotateCommandStartsARotationAndReturnsAtOnce(t *testing.T) {
	e := start(t, setup{})
	first := e.rotateOK(t)
	var r operator.RotateReport
	if msg := e.invoke(t, `{"command":"rotate"}`, &r); msg != "" {
		t.Fatalf("rotate: %s", msg)
	}
	if !r.OK || r.Outcome != "started" || r.VersionID == "" || r.VersionID == first {
		t.Fatalf("rotate report = %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev, err := e.WaitRotation(ctx, e.arn, r.VersionID)
	if err != nil || ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("the started rotation: %v %+v", err, ev)
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, r.VersionID)
}

func TestRotateCommandDuringAnIncompleteRotation(t *testing.T) {
	t.Run("numbers back on the current key: rotate resumes, never clears AWSPENDING", func(t *testing.T) {
		e := start(t, setup{})
		e.rotateOK(t)
		if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: e.PhoneNumberIDs()[0], Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever}); err != nil {
			t.Fatal(err)
		}
		token, _ := e.rotateFails(t)
		seq := e.lastSeq()
		r := e.resume(t, token)
		if len(r.HoldingPending) != 0 || len(r.Numbers) != len(e.PhoneNumberIDs()) {
			t.Errorf("resumed report = %+v", r)
		}
		if !slices.ContainsFunc(r.Advice, func(a string) bool { return strings.Contains(a, `"Step":"setSecret"`) && strings.Contains(a, token) }) {
			t.Errorf("advice %q does not give the steps by hand", r.Advice)
		}
		// The fault stays: the resumed run fails the same way, and the
		// numbers are back on the current key.
		if ev := e.waitRun(t, token, seq); ev.Type != secretsemu.RotationFailed {
			t.Fatalf("resumed run: %+v", ev)
		}
		e.checkInvariants(t, token)
	})
	t.Run("numbers on the pending key: never advise clearing AWSPENDING", func(t *testing.T) {
		e := start(t, setup{})
		// A first rotation has no current key to roll back to.
		if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: e.PhoneNumberIDs()[0], Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever}); err != nil {
			t.Fatal(err)
		}
		token, _ := e.rotateFails(t)
		seq := e.lastSeq()
		if r := e.resume(t, token); len(r.HoldingPending) != 2 {
			t.Fatalf("resumed report = %+v", r)
		}
		if ev := e.waitRun(t, token, seq); ev.Type != secretsemu.RotationFailed {
			t.Fatalf("resumed run: %+v", ev)
		}
		e.checkInvariants(t, token)
	})
}

func TestStatusReportsDrift(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	e.Graph.ResetCounters()
	if r := e.status(t); !r.OK || r.Overall != "healthy" || r.Drifted != 0 {
		t.Fatalf("healthy status = %+v", r)
	}
	phones := e.PhoneNumberIDs()
	other, err := keypair.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Graph.SetKey(phones[0], other.PublicPEM(), graph.StatusValid); err != nil {
		t.Fatal(err)
	}
	e.brokenOnPurpose = "a key set behind flowkey's back is the drift under test"
	if err := e.Graph.SetMismatch(phones[1], true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpGet, Object: phones[2], Kind: graphsim.FaultGraphError, Code: 10, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	r := e.status(t)
	if r.OK || r.Overall != "drifted" || r.Drifted != 3 {
		t.Errorf("status = ok %v, overall %q, drifted %d; want drifted 3", r.OK, r.Overall, r.Drifted)
	}
	if n := numberStatus(r, phones[0]); n.Matches != "none" || n.State != "drifted" {
		t.Errorf("a key changed behind flowkey's back: %+v", n)
	}
	if n := numberStatus(r, phones[1]); n.SignatureStatus != graph.StatusMismatch || n.State != "unknown" || n.Matches != "unknown" {
		t.Errorf("a forced MISMATCH: %+v", n)
	}
	if n := numberStatus(r, phones[2]); n.State != "unknown" || n.GraphError == nil || n.GraphError.Code == nil || *n.GraphError.Code != 10 {
		t.Errorf("a number whose GET fails: %+v", n)
	}
	if r.Unknown != 2 {
		t.Errorf("unknown = %d, want 2", r.Unknown)
	}
	if c := e.Graph.Calls(); c.Upload != 0 {
		t.Errorf("status uploaded %d keys; it must be read-only", c.Upload)
	}
}

func TestResyncRepairsExactlyTheDriftedNumbers(t *testing.T) {
	e := start(t, setup{phones: 4})
	token := e.rotateOK(t)
	current := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
	phones := e.PhoneNumberIDs()
	other, err := keypair.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Graph.SetKey(phones[0], other.PublicPEM(), graph.StatusValid); err != nil {
		t.Fatal(err)
	}
	// A re-registered number: MISMATCH until the key is uploaded again.
	if err := e.Graph.Reregister(phones[2]); err != nil {
		t.Fatal(err)
	}
	e.Graph.ResetCounters()

	var dry operator.ResyncReport
	if msg := e.invoke(t, `{"command":"resync","dry_run":true}`, &dry); msg != "" {
		t.Fatalf("resync dry run: %s", msg)
	}
	if dry.Outcome != "dry_run" || dry.WouldRepair != 2 {
		t.Errorf("dry run = %+v, want 2 numbers it would repair", dry)
	}
	if c := e.Graph.Calls(); c.Upload != 0 {
		t.Fatalf("a dry run uploaded %d keys", c.Upload)
	}

	e.Graph.ResetCounters()
	var r operator.ResyncReport
	if msg := e.invoke(t, `{"command":"resync"}`, &r); msg != "" {
		t.Fatalf("resync: %s", msg)
	}
	if !r.OK || r.Outcome != "repaired" || r.Repaired != 2 {
		t.Errorf("resync = %+v, want 2 repaired", r)
	}
	c := e.Graph.Calls()
	if c.Upload != 2 || c.Of(phones[0]).Upload != 1 || c.Of(phones[2]).Upload != 1 {
		t.Errorf("uploads = %d (%+v, %+v), want exactly one to each drifted number", c.Upload, c.Of(phones[0]), c.Of(phones[2]))
	}
	e.assertAllHold(t, current)
	if s := e.status(t); s.Overall != "healthy" {
		t.Errorf("after resync: %+v", s)
	}
	e.checkInvariants(t, token)
}

func TestWABADiscoveryFollowsTheWABA(t *testing.T) {
	e := start(t, setup{phones: 5}) // the simulator's page size is 2: three pages
	wabaSecret, err := e.CreateKeySecret(context.Background(), "flowkey/waba", secretdoc.Config{WABAID: stack.DefaultWABAID})
	if err != nil {
		t.Fatal(err)
	}
	e.arn = wabaSecret
	e.rotateOK(t)
	c := e.Graph.Calls()
	if c.List < 3*2 || c.Upload != 5 || c.Get != 5 {
		t.Errorf("first rotation calls = %+v: want 5 uploads, 5 reads, and the 3 pages listed by setSecret and testSecret", c.OpCounts)
	}

	removed := e.PhoneNumberIDs()[1]
	if err := e.Graph.RemovePhoneNumber(removed); err != nil {
		t.Fatal(err)
	}
	added := "106540352299999"
	if err := e.Graph.AddPhoneNumber(stack.DefaultWABAID, added, "+1 202-555-0199", "Flowkey Demo"); err != nil {
		t.Fatal(err)
	}
	e.Graph.ResetCounters()
	token := e.rotateOK(t)
	c = e.Graph.Calls()
	if c.Of(removed).Total() != 0 {
		t.Errorf("the number that left the WABA was called: %+v", c.Of(removed))
	}
	if c.Of(added).Upload != 1 || c.Upload != 5 {
		t.Errorf("uploads = %d (new number: %d), want the 5 numbers now in the WABA", c.Upload, c.Of(added).Upload)
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

func TestMalformedCommandsAreRejected(t *testing.T) {
	e := start(t, setup{})
	tests := []struct{ payload, want string }{
		{`{"command":"restart"}`, `command "restart" is not a command`},
		{`{"command":"resync","dry_run":"yes"}`, "dry_run must be true or false"},
		{`{"command":"status","SecretId":"x"}`, `field "SecretId" is not accepted in a command`},
		{`{"command":"status","dry_run":true}`, "dry_run is only accepted with resync"},
		{`{"hello":"world"}`, `no "command" and no "Step"`},
	}
	for _, tc := range tests {
		msg := e.invoke(t, tc.payload, nil)
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, `"command":"status"`) {
			t.Errorf("%s: error %q, want %q and the accepted shapes", tc.payload, msg, tc.want)
		}
	}
	if c := e.Graph.Calls(); c.Total() != 0 {
		t.Errorf("malformed commands reached Graph %d times", c.Total())
	}
}
