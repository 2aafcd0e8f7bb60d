package operator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
)

func rotateNow(t *testing.T, h *harness) *RotateReport {
	t.Helper()
	out, err := h.run(t, Command{Name: CommandRotate})
	if err != nil {
		t.Fatal(err)
	}
	return out.(*RotateReport)
}

func TestRotateStartsARotationAndReturnsAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	r := rotateNow(t, h)
	const v = "00000000-0000-4000-8000-000000000001"
	if !r.OK || r.Outcome != OutcomeStarted || r.VersionID != v || r.SecretARN != h.arn {
		t.Fatalf("got %+v", r)
	}
	if len(h.sm.RotateInputs()) != 1 {
		t.Fatalf("%d RotateSecret calls, want 1", len(h.sm.RotateInputs()))
	}
	in := h.sm.RotateInputs()[0]
	if aws.ToString(in.SecretId) != h.arn || !aws.ToBool(in.RotateImmediately) || in.RotationLambdaARN != nil || in.RotationRules != nil || in.ClientRequestToken != nil {
		t.Errorf("RotateSecret input: secret %s, immediately %v, lambda %v, rules %v, token %v", aws.ToString(in.SecretId), aws.ToBool(in.RotateImmediately), in.RotationLambdaARN, in.RotationRules, in.ClientRequestToken)
	}
	// It does not wait: nothing is read after RotateSecret, and the new
	// version is still the empty one Secrets Manager staged.
	ops := h.sm.Ops()
	if want := []string{"DescribeSecret", "RotateSecret"}; !slices.Equal(ops, want) {
		t.Errorf("Secrets Manager calls %v, want %v", ops, want)
	}
	if up, gets := h.g.Counts(); len(up)+len(gets) != 0 {
		t.Errorf("Graph calls: uploads %v, gets %v", up, gets)
	}
	for _, s := range []string{"does not wait", "{\"command\":\"status\"}", "aws secretsmanager describe-secret --secret-id " + h.arn, "versions.AWSCURRENT.version_id is " + v, functionName} {
		if !strings.Contains(r.Message, s) {
			t.Errorf("message %q lacks %q", r.Message, s)
		}
	}
	if want := []string{"rotate ok=true uploaded=0 verified=0 failed=0"}; !slices.Equal(h.metrics.commands, want) {
		t.Errorf("metrics %v, want %v", h.metrics.commands, want)
	}
	b, _ := json.Marshal(r)
	want := `{"command":"rotate","ok":true,"outcome":"started","secret_arn":"` + h.arn + `","version_id":"` + v + `","message":` + mustJSON(r.Message) + `}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}

// assertOnlyRotateSecret: RotateSecret asks Secrets Manager to run the
// steps; the command itself writes no version, no label and no key.
func (h *harness) assertOnlyRotateSecret(t *testing.T) {
	t.Helper()
	if w := h.sm.Writes(); !slices.Equal(w, []string{"RotateSecret"}) {
		t.Errorf("Secrets Manager writes: %v, want only one RotateSecret", w)
	}
	if up, _ := h.g.Counts(); len(up) != 0 {
		t.Errorf("Graph uploads: %v", up)
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

const pend = "00000000-0000-4000-8000-0000000000aa"

// assertNeverAdvisesRemoval: no report of a pending version with a key
// may give the command that removes its AWSPENDING.
func assertNeverAdvisesRemoval(t *testing.T, r *RotateReport) {
	t.Helper()
	all := r.Message + "\n" + strings.Join(r.Advice, "\n")
	if strings.Contains(all, "--remove-from-version-id") {
		t.Errorf("the report gives the command that strands the pending key:\n%s", all)
	}
	if len(r.Advice) == 0 || !strings.HasPrefix(r.Advice[0], "Do NOT remove AWSPENDING from version "+r.PendingVersionID) {
		t.Errorf("first advice %q, want the warning", r.Advice)
	}
}

// A pending version that holds a key may be at Meta whatever a GET shows:
// rotate resumes that rotation with its token, writes no label, and
// reports a fresh read of every number.
func TestRotateResumesAnIncompleteRotationThatHoldsAKey(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		holding []string
		unknown []string
		why     string // in the message
	}{
		{"a number holds the pending key, another cannot be read", func(h *harness) {
			h.g.Set(phones[0], keyPend.PublicPEM(), graph.StatusValid)
			h.g.Fault("get", phones[2], graphErr("get", phones[2], 503, 131000, 0, true))
		}, []string{phones[0]}, []string{phones[2]}, phones[0] + " answer VALID with the pending key"},
		// The first reproduction: MISMATCH with a blank key reads
		// as "no key", yet the number holds the pending key.
		{"MISMATCH with a blank key on every number", func(h *harness) {
			for _, p := range phones[:3] {
				h.g.Set(p, " ", graph.StatusMismatch)
			}
		}, nil, phones[:3], phones[0] + ": Meta answers signature status MISMATCH with no key"},
		// The second: a lagging GET still shows the AWSCURRENT key.
		{"every number reads the AWSCURRENT key", func(h *harness) {}, nil, nil,
			"answer VALID with the AWSCURRENT key (a read may lag behind an upload of the pending key)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.standard(t, phones[:3]...)
			h.pending(t, pend, keyPend)
			tc.setup(h)
			r := rotateNow(t, h)
			if !r.OK || r.Outcome != OutcomeResumed || r.VersionID != pend || r.PendingVersionID != pend || r.CurrentVersionID != "v-cur" ||
				r.PendingFingerprint != keyPend.Fingerprint().String() || r.ClearedVersionID != "" {
				t.Fatalf("got %+v", r)
			}
			in := h.sm.RotateInputs()
			if len(in) != 1 || aws.ToString(in[0].ClientRequestToken) != pend || !aws.ToBool(in[0].RotateImmediately) {
				t.Fatalf("RotateSecret inputs %+v, want one with ClientRequestToken %s", in, pend)
			}
			if !slices.Equal(r.HoldingPending, tc.holding) || !slices.Equal(r.Unknown, tc.unknown) {
				t.Errorf("holding %v unknown %v; want %v %v", r.HoldingPending, r.Unknown, tc.holding, tc.unknown)
			}
			if len(r.Numbers) != 3 {
				t.Errorf("want every number reported, got %d", len(r.Numbers))
			}
			for _, n := range r.Numbers {
				if slices.Contains(tc.unknown, n.PhoneNumberID) && (n.State != StateUnknown || n.Matches != MatchUnknown) {
					t.Errorf("%s: %+v, want state and matches unknown", n.PhoneNumberID, n)
				}
			}
			for _, s := range []string{"resumed the incomplete rotation of version " + pend, tc.why, "versions.AWSCURRENT.version_id is " + pend} {
				if !strings.Contains(r.Message, s) {
					t.Errorf("message lacks %q:\n%s", s, r.Message)
				}
			}
			assertNeverAdvisesRemoval(t, r)
			advice := strings.Join(r.Advice, "\n")
			for _, s := range []string{`filter token = "` + pend + `" and msg = "step failed"`, "resumes this same rotation, with the same key", `"Step":"finishSecret"`} {
				if !strings.Contains(advice, s) {
					t.Errorf("advice lacks %q:\n%s", s, advice)
				}
			}
			if strings.Contains(advice, "&&") || strings.Contains(advice, `"Step":"createSecret"`) {
				t.Errorf("advice has a \"&&\" that JSON would escape, or a createSecret a keyed version does not need:\n%s", advice)
			}
			h.assertOnlyRotateSecret(t)
		})
	}
}

// AWS does not document that RotateSecret with the pending version's
// token resumes it. If it refuses, rotate says how to finish by hand.
func TestRotateBlockedWhenSecretsManagerRefusesToResume(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.pending(t, pend, keyPend)
	h.sm.RefuseResume = true
	h.g.Set(phones[1], " ", graph.StatusMismatch)
	r := rotateNow(t, h)
	if r.OK || r.Outcome != OutcomeBlocked || r.PendingVersionID != pend || r.VersionID != "" || !slices.Equal(r.Unknown, []string{phones[1]}) {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.Message, "Secrets Manager refused to run it again") || !strings.Contains(r.Message, phones[1]+": Meta answers signature status MISMATCH") {
		t.Errorf("message %s", r.Message)
	}
	assertNeverAdvisesRemoval(t, r)
	h.assertOnlyRotateSecret(t)
	advice := strings.Join(r.Advice, "\n")
	step := `aws lambda invoke --function-name ` + functionName + ` --cli-binary-format raw-in-base64-out --payload '{"Step":"setSecret","SecretId":"` + h.arn + `","ClientRequestToken":"` + pend + `"}' out.json`
	if !strings.Contains(advice, step) || !strings.Contains(advice, `"Step":"testSecret"`) || !strings.Contains(advice, "Secrets Manager reattempts the incomplete rotation itself") {
		t.Errorf("advice lacks finishing by hand or waiting:\n%s", advice)
	}
}

// A pending version without a usable key never reached Meta: rotate
// removes its AWSPENDING and starts a new rotation.
func TestRotateClearsAPendingVersionWithoutAUsableKey(t *testing.T) {
	tests := []struct {
		name   string
		value  func(h *harness) *string
		reason string
	}{
		{"no value yet", func(*harness) *string { return nil }, "it has no value yet"},
		{"a configuration without a key", func(h *harness) *string { return h.doc(t, nil) }, "it holds a configuration without a key"},
		{"the AWSCURRENT key", func(h *harness) *string { return h.doc(t, keyCur) }, "it holds the AWSCURRENT key, which AWSCURRENT keeps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.sm.ReadOnly = false
			h.standard(t, phones[:3]...)
			h.sm.Put(h.s, pend, tc.value(h), rotation.StagePending)
			r := rotateNow(t, h)
			const v = "00000000-0000-4000-8000-000000000001"
			if !r.OK || r.Outcome != OutcomeStarted || r.ClearedVersionID != pend || r.VersionID != v {
				t.Fatalf("got %+v", r)
			}
			if !strings.HasPrefix(r.Message, "cleared the incomplete rotation of version "+pend+" ("+tc.reason) {
				t.Errorf("message %s", r.Message)
			}
			if got := h.sm.Writes(); !slices.Equal(got, []string{"UpdateSecretVersionStage", "RotateSecret"}) {
				t.Errorf("writes %v, want the label removal, then RotateSecret", got)
			}
			if got := h.s.Stages[pend]; len(got) != 0 {
				t.Errorf("version %s keeps labels %v", pend, got)
			}
			if h.s.Holder(rotation.StagePending) != v {
				t.Errorf("AWSPENDING on %q, want the new rotation's %s", h.s.Holder(rotation.StagePending), v)
			}
			if up, gets := h.g.Counts(); len(up)+len(gets) != 0 {
				t.Errorf("Graph calls: uploads %v, gets %v; clearing needs none", up, gets)
			}
		})
	}
}

// createSecret may store a key between rotate's read and its removal of
// the label: the label goes back and the rotation is resumed.
func TestRotatePutsAWSPENDINGBackWhenAKeyAppearsWhileClearing(t *testing.T) {
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	h.standard(t, phones[:3]...)
	h.pending(t, pend, nil)
	stored := h.doc(t, keyPend)
	h.sm.AfterStage = func(s *secretsfake.Secret) {
		if s.Values[pend] == nil {
			s.Values[pend] = stored
		}
	}
	r := rotateNow(t, h)
	if !r.OK || r.Outcome != OutcomeResumed || r.VersionID != pend || r.ClearedVersionID != "" || r.PendingFingerprint != keyPend.Fingerprint().String() {
		t.Fatalf("got %+v", r)
	}
	if got := h.s.Stages[pend]; !slices.Equal(got, []string{rotation.StagePending}) {
		t.Errorf("version %s labels %v, want AWSPENDING back", pend, got)
	}
	if in := h.sm.RotateInputs(); len(in) != 1 || aws.ToString(in[0].ClientRequestToken) != pend {
		t.Errorf("RotateSecret inputs %+v, want one resuming %s", in, pend)
	}
	assertNeverAdvisesRemoval(t, r)
}

// A pending version this build cannot read may hold a key a newer build
// uploaded: it is reported, never cleared, and nothing is started.
func TestRotateLeavesAnUnreadablePendingVersionAlone(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.sm.Put(h.s, pend, aws.String(`{"schema_version":2,"config":{},"key":{}}`), rotation.StagePending)
	r := rotateNow(t, h)
	if r.OK || r.Outcome != OutcomeBlocked || r.PendingVersionID != pend || !strings.Contains(r.PendingProblem, "schema_version") {
		t.Fatalf("got %+v", r)
	}
	if !strings.Contains(r.Advice[0], "Do NOT remove AWSPENDING from version "+pend) || strings.Contains(strings.Join(r.Advice, "\n"), "--remove-from-version-id") {
		t.Errorf("advice %q", r.Advice)
	}
	if len(r.Numbers) != 3 {
		t.Errorf("numbers %+v, want every number read", r.Numbers)
	}
	h.assertNoWrites(t)
}

func TestRotateResumesARotationThatStartedMeanwhile(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.g.Set(phones[1], keyPend.PublicPEM(), graph.StatusValid)
	// Another caller starts a rotation between DescribeSecret and RotateSecret.
	h.sm.BeforeRotate = func(s *secretsfake.Secret) {
		s.Values["v-other"] = h.doc(t, keyPend)
		s.Detach(rotation.StagePending)
		s.Stages["v-other"] = []string{rotation.StagePending}
	}
	r := rotateNow(t, h)
	if r.Outcome != OutcomeResumed || r.PendingVersionID != "v-other" || !slices.Equal(r.HoldingPending, []string{phones[1]}) {
		t.Fatalf("got %+v", r)
	}
}

func TestRotateNeverClearsARotationThatStartedMeanwhile(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	// Its createSecret has not stored a key yet: it is running.
	h.sm.BeforeRotate = func(s *secretsfake.Secret) {
		s.Values["v-other"] = nil
		s.Detach(rotation.StagePending)
		s.Stages["v-other"] = []string{rotation.StagePending}
	}
	r := rotateNow(t, h)
	if r.OK || r.Outcome != OutcomeBlocked || r.PendingVersionID != "v-other" || !strings.Contains(r.Message, "started just now") {
		t.Fatalf("got %+v", r)
	}
	h.assertOnlyRotateSecret(t) // the refused one
}

func TestRotateReportsOtherRotateSecretErrorsWithAFix(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.sm.FailAlways("RotateSecret", &types.InvalidRequestException{Message: aws.String("No Lambda rotation function ARN is associated with this secret.")})
	_, err := h.run(t, Command{Name: CommandRotate})
	want := "rotate: rotate-secret " + h.arn + ": InvalidRequestException: No Lambda rotation function ARN is associated with this secret.; fix: check that rotation is configured"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "lambda:InvokeFunction on the rotation function") {
		t.Fatalf("got %v\nwant prefix %s", err, want)
	}
}

func TestRotateResumesWhenNoNumberCanBeReadAndNeverAdvisesRemoval(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.pending(t, "v-pend", keyPend)
	h.sm.Delete(tokenSecret)
	r := rotateNow(t, h)
	if r.Outcome != OutcomeResumed || !strings.Contains(r.NumbersError, "read access token secret "+tokenSecret) ||
		!strings.Contains(r.Message, "the phone numbers could not be read") {
		t.Fatalf("got %+v", r)
	}
	assertNeverAdvisesRemoval(t, r)
}
