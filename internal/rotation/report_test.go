package rotation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func rateLimited(op, phone string) *graph.Error {
	return &graph.Error{Op: op, Object: phone, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 80007, Attempts: 1,
		Retryable: true, RateLimited: true, Message: "(#80007) too many calls"}
}

// The step error says what each number is left holding, not only the
// last error: here setSecret uploaded the new key everywhere, testSecret
// failed on one number, and Meta refused every rollback.
func TestTheStepErrorSaysWhatEachNumberHolds(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "v2", nil)
	for _, s := range []string{StepCreate, StepSet} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	h.g.SetStatus(phones[0], graph.StatusMismatch)
	for _, p := range phones {
		h.g.Fault("upload", p, rateLimited("upload", p))
	}
	err := h.step(StepTest, "v2")
	if err == nil {
		t.Fatal("testSecret passed with a MISMATCH")
	}
	msg := err.Error()
	for _, want := range []string{
		"1 of 3 phone numbers failed",
		phones[0] + ": holds the new key, unverified",
		phones[1] + ": holds the new key (verified); the rollback was refused: graph upload " + phones[1] + ": HTTP 400 code 80007",
		"Could not put the AWSCURRENT key back on 3 numbers",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	h.assertInvariant(t)

	// Secrets Manager's next attempt: every upload is refused. The numbers
	// were not changed by it, and the error says what that means.
	for _, p := range phones {
		h.g.Fault("upload", p, rateLimited("upload", p))
	}
	err = h.step(StepSet, "v2")
	if err == nil {
		t.Fatal("setSecret passed with every upload refused")
	}
	want := phones[0] + " (graph code 80007, HTTP 400): not changed by this attempt (it holds the AWSCURRENT key, or the new key if an earlier attempt of this rotation uploaded it): graph upload"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error does not say %q:\n%s", want, err)
	}
	h.assertInvariant(t)
}

// A transport failure is reported as one: "graph code 0" is a real code.
func TestATransportFailureIsNotGraphCodeZero(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	reset := &graph.Error{Op: "upload", Object: phones[1], Failure: graph.FailureTransport, Transport: graph.TransportReset,
		Attempts: 3, Retryable: true, Uncertain: "attempt 1: no response (connection reset)"}
	h.g.Fault("upload", phones[1], reset)
	err := h.rotate(t, "v2")
	if err == nil {
		t.Fatal("want the reset reported")
	}
	if strings.Contains(err.Error(), "code 0") || !strings.Contains(err.Error(), phones[1]+" (transport: connection reset): back on the AWSCURRENT key; the upload may have landed: graph upload "+phones[1]+": no response (connection reset)") {
		t.Errorf("error = %s", err)
	}
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"phone number failed"`) && strings.Contains(line, `"phone_number_id":"`+phones[1]+`"`) && strings.Contains(line, `"action":"upload"`) {
			if strings.Contains(line, "graph_code") || !strings.Contains(line, `"transport":"connection reset"`) {
				t.Errorf("log line %s: want the transport cause and no graph_code", line)
			}
		}
	}
	h.assertInvariant(t)
}

// Meta's v23 example shape (VALID, no key) is its own failure: Meta holds
// a key flowkey cannot see, which is not "no key" nor a MISMATCH.
func TestValidWithoutAKeyIsReportedAsSuch(t *testing.T) {
	h := newHarness(t, configOnly(phones[0]), phones[0])
	h.sm.StagePending(h.arn, "v1", nil)
	for _, s := range []string{StepCreate, StepSet} {
		if err := h.step(s, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	h.g.SetKey(phones[0], "")
	err := h.step(StepTest, "v1")
	if err == nil || !strings.Contains(err.Error(), `Meta answered VALID but returned no key`) || strings.Contains(err.Error(), "no readable key") {
		t.Fatalf("want the VALID-without-key answer named, got %v", err)
	}
}

// The error of a large failure stays far below CloudWatch's 256 KB per
// log event: the first numbers in full, the rest counted by cause.
func TestALargeFailureIsSummarised(t *testing.T) {
	// The most numbers one secret may cover; in full, their errors alone
	// would be about 20 KB.
	many := make([]string, secretdoc.MaxPhoneNumbers)
	for i := range many {
		many[i] = fmt.Sprintf("1065403%08d", i)
	}
	// Start from a rotated secret without rotating them all first.
	current := &secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: secretdoc.Config{PhoneNumberIDs: many, AccessTokenSecretID: tokenSecret},
		Key: secretdoc.NewKey(&keypair.Generated{Pair: testPairs[3], Method: keypair.MethodCrypto}, time.Now())}
	body, err := current.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, string(body), many...)
	for i, p := range many {
		h.g.Set(p, testPairs[3].PublicPEM(), graph.StatusValid)
		switch {
		case i%3 == 0:
			h.g.Fault("upload", p, rateLimited("upload", p))
		case i%3 == 1:
			h.g.Fault("upload", p, &graph.Error{Op: "upload", Object: p, Failure: graph.FailureGraph, HTTPStatus: 500, Code: 131000, Attempts: 5,
				Retryable: true, Message: "(#131000) Something went wrong", Uncertain: "attempt 1: HTTP 500 code 131000"})
		}
	}
	err = h.rotate(t, "v2")
	if err == nil {
		t.Fatal("want a failure")
	}
	msg := err.Error()
	if len(msg) > 4<<10 {
		t.Errorf("the error is %d bytes, want under 4 KiB", len(msg))
	}
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if len(line) > 16<<10 {
			t.Errorf("a %d-byte log line: %.200s", len(line), line)
		}
	}
	for _, want := range []string{
		"67 of 100 phone numbers failed",
		many[0] + " (graph code 80007, HTTP 400): not changed by this attempt", many[1] + " (graph code 131000, HTTP 500): back on the AWSCURRENT key; the upload may have landed",
		"and 62 more: ", "31 back on the AWSCURRENT key after graph code 131000", "31 not changed by this attempt after graph code 80007",
		"Put the AWSCURRENT key back on 66 numbers",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	h.assertInvariant(t)
}
