package stack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// The scenario: every Graph call takes 12 s, longer than the 10 s
// request timeout, and the function times out after 60 s. setSecret must
// end with flowkey's own report, its rollback run to the end, before
// Lambda's timeout: the uploads stop where the rollback's 20 s begin, the
// rollback makes only the attempts that fit before the 2 s kept for the
// report. (GRAPH_MAX_ATTEMPTS is the harness's 3: the default 5 can never
// fit in 60 s and fails at start-up, see the next test.)
func TestAGraphSlowerThanItsTimeoutEndsWithFlowkeysOwnReport(t *testing.T) {
	const timeout = time.Minute
	e := start(t, setup{timeout: timeout})
	e.rotateOK(t)
	if err := e.Graph.SetLatency(12 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.Graph.ResetCounters()
	token, msg := e.rotateFails(t, "setSecret", "3 of 3 phone numbers failed", "transport: timeout", "the rollback may have landed")
	if strings.Contains(msg, "Task timed out") || strings.Contains(msg, "Sandbox") {
		t.Errorf("the function timed out instead of reporting: %s", msg)
	}
	for _, ev := range e.Secrets.Events(e.arn) {
		if ev.Token == token && ev.Type == secretsemu.StepFailed && ev.Step == "setSecret" {
			// Uploads take about 30 s; the rollback then makes its
			// attempts until about 51 s.
			if ev.Duration < 40*time.Second || ev.Duration > timeout-time.Second {
				t.Errorf("setSecret took %s: want the rollback run (over 40 s) and the report before %s", ev.Duration, timeout)
			}
		}
	}
	for _, phone := range e.PhoneNumberIDs() {
		// 3 upload attempts, then the rollback's: 2 fit before its end.
		if c := e.Graph.Calls().Of(phone); c.Upload < 4 || c.Upload > 5 {
			t.Errorf("%s got %d uploads, want 3 and 1 or 2 rollback attempts", phone, c.Upload)
		}
	}
	e.checkInvariants(t, token)
}

// Settings that can never fit in the function's timeout fail at start-up,
// naming the variables, before any call to Meta.
func TestSettingsThatCanNeverFitFailAtStartUp(t *testing.T) {
	e := start(t, setup{timeout: time.Minute, fnEnv: map[string]string{"GRAPH_MAX_ATTEMPTS": "5", "VERIFY_TIMEOUT": "90s"}})
	token, _ := e.rotateFails(t)
	// The function's output is copied from the RIE after the rotation's
	// failure is recorded: wait for the line itself.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := e.logs.Wait(ctx, func(s string) bool { return strings.Contains(s, "invalid configuration") })
	for _, want := range []string{"invalid configuration", `GRAPH_MAX_ATTEMPTS=\"5\"`, "GRAPH_REQUEST_TIMEOUT=10s", "FUNCTION_TIMEOUT=1m0s", `VERIFY_TIMEOUT=\"90s\"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the function's output does not say %s", want)
		}
	}
	if c := e.Graph.Calls(); c.Total() != 0 {
		t.Errorf("Graph was called %d times", c.Total())
	}
	e.checkInvariants(t, token)
}

// A rate limit without Meta's estimate costs no second call: code 4 comes
// with X-App-Usage alone, and 80007 may carry an estimate of 0.
func TestRateLimitsWithoutAnEstimateCostNoExtraCall(t *testing.T) {
	for name, fault := range map[string]graphsim.Fault{
		"code 4 with only X-App-Usage": {Op: graphsim.OpUpload, Kind: graphsim.FaultGraphError, Code: 4, Times: graphsim.Forever},
		"80007 with an estimate of 0":  {Op: graphsim.OpUpload, Kind: graphsim.FaultGraphError, Code: 80007, Times: graphsim.Forever},
	} {
		t.Run(name, func(t *testing.T) {
			e := start(t, setup{fnEnv: map[string]string{"GRAPH_MAX_ATTEMPTS": "5"}})
			if _, err := e.Graph.AddFault(fault); err != nil {
				t.Fatal(err)
			}
			token, _ := e.rotateFails(t, "setSecret", "rate limited, retry later")
			if c := e.Graph.Calls(); c.Upload != len(e.PhoneNumberIDs()) || c.Get != 0 {
				t.Errorf("calls = %+v, want one upload per number and nothing else", c.OpCounts)
			}
			e.checkInvariants(t, token)
		})
	}
}

// Meta's v23 example of a VALID answer has no key: testSecret names that,
// rather than reporting "no key" or a MISMATCH.
func TestAValidAnswerWithoutAKeyIsNamed(t *testing.T) {
	e := start(t, setup{})
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpGet, Kind: graphsim.FaultMalformed, Times: graphsim.Forever,
		Body: `{"data":[{"business_public_key_signature_status":"VALID"}]}`}); err != nil {
		t.Fatal(err)
	}
	token, msg := e.rotateFails(t, "testSecret", "Meta answered VALID but returned no key")
	if strings.Contains(msg, "no readable key") || strings.Contains(msg, "MISMATCH") {
		t.Errorf("failure %q reads as no key or MISMATCH", msg)
	}
	e.checkInvariants(t, token)
}
