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
	if aws.ToString(in.SecretId) != h.arn || !aws.ToBool(in.RotateImmediately) || in.RotationLambdaARN != nil || in.RotationRules != nil {
		t.Errorf("RotateSecret input: secret %s, immediately %v, lambda %v, rules %v", aws.ToString(in.SecretId), aws.ToBool(in.RotateImmediately), in.RotationLambdaARN, in.RotationRules)
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
	want := `{"command":"rotate","ok":true,"outcome":"started","secret_arn":"` + h.arn + `","version_id":"` + v + `","message":` + mustJSON(r.Message) + `,"safe_to_remove_pending":false}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRotateDuringAnIncompleteRotation(t *testing.T) {
	const pend = "00000000-0000-4000-8000-0000000000aa"
	removeCmd := "aws secretsmanager update-secret-version-stage --secret-id arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key-AbCdEf --version-stage AWSPENDING --remove-from-version-id " + pend
	tests := []struct {
		name       string
		pendingKey bool
		setup      func(h *harness)
		holding    []string
		unknown    []string
		safe       bool
		message    string
	}{
		{"a number holds the pending key, another cannot be read", true, func(h *harness) {
			h.g.Set(phones[0], keyPend.PublicPEM(), graph.StatusValid)
			h.g.Fault("get", phones[2], graphErr("get", phones[2], 503, 131000, 0, true))
		}, []string{phones[0]}, []string{phones[2]}, false,
			"not started: a previous rotation is incomplete (AWSPENDING is on version " + pend + ", AWSCURRENT on v-cur); phone numbers " + phones[0] + " hold its key; phone numbers " + phones[2] + " could not be read and may hold it: complete that rotation, do not abandon it"},
		{"no number holds it but one cannot be read", true, func(h *harness) {
			h.g.Fault("get", phones[1], graphErr("get", phones[1], 500, 0, 0, true))
		}, nil, []string{phones[1]}, false,
			"not started: a previous rotation is incomplete (AWSPENDING is on version " + pend + ", AWSCURRENT on v-cur); phone numbers " + phones[1] + " could not be read and may hold it: complete that rotation, do not abandon it"},
		{"every number read, none holds it", true, func(h *harness) {}, nil, nil, true,
			"not started: a previous rotation is incomplete (AWSPENDING is on version " + pend + ", AWSCURRENT on v-cur); no phone number holds the pending key (every number was read), so clearing it strands nothing"},
		{"the pending version never got a key", false, func(h *harness) {
			h.g.Fault("get", phones[1], graphErr("get", phones[1], 500, 0, 0, true))
		}, nil, []string{phones[1]}, true,
			"not started: a previous rotation is incomplete (AWSPENDING is on version " + pend + ", AWSCURRENT on v-cur); the pending version holds no key, so Meta cannot hold it, so clearing it strands nothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.standard(t, phones[:3]...)
			if tc.pendingKey {
				h.pending(t, pend, keyPend)
			} else {
				h.pending(t, pend, nil)
			}
			tc.setup(h)
			r := rotateNow(t, h)
			if r.OK || r.Outcome != OutcomeBlocked || r.PendingVersionID != pend || r.CurrentVersionID != "v-cur" || r.VersionID != "" {
				t.Fatalf("got %+v", r)
			}
			if h.sm.Calls("RotateSecret") != 0 {
				t.Error("RotateSecret was called during an incomplete rotation")
			}
			if !slices.Equal(r.HoldingPending, tc.holding) || !slices.Equal(r.Unknown, tc.unknown) || r.SafeToRemovePending != tc.safe {
				t.Errorf("holding %v unknown %v safe %v; want %v %v %v", r.HoldingPending, r.Unknown, r.SafeToRemovePending, tc.holding, tc.unknown, tc.safe)
			}
			if r.Message != tc.message {
				t.Errorf("message\n%s\nwant\n%s", r.Message, tc.message)
			}
			if len(r.Numbers) != 3 {
				t.Errorf("want every number reported, got %d", len(r.Numbers))
			}
			advice := strings.Join(r.Advice, "\n")
			if tc.safe != strings.Contains(advice, removeCmd) {
				t.Errorf("safe=%v but the advice %s the exact remove command:\n%s", tc.safe, map[bool]string{true: "lacks", false: "has"}[tc.safe], advice)
			}
			if !tc.safe && !strings.HasPrefix(r.Advice[0], "Do NOT remove AWSPENDING from version "+pend) {
				t.Errorf("first advice %q, want the warning", r.Advice[0])
			}
			if tc.safe && strings.Contains(advice, "--remove-from-version-id") && !strings.Contains(advice, "make sure no rotation step is running now") {
				t.Error("removal advised without the warning about a running step")
			}
			step := `aws lambda invoke --function-name ` + functionName + ` --cli-binary-format raw-in-base64-out --payload '{"Step":"setSecret","SecretId":"` + h.arn + `","ClientRequestToken":"` + pend + `"}' out.json`
			if !strings.Contains(advice, step) || !strings.Contains(advice, `"Step":"finishSecret"`) || !strings.Contains(advice, "Secrets Manager reattempts the incomplete rotation itself") || strings.Contains(advice, "&&") {
				t.Errorf("advice lacks finishing by hand or waiting, or has a \"&&\" that JSON would escape:\n%s", advice)
			}
			if strings.Contains(advice, `"Step":"createSecret"`) == tc.pendingKey {
				t.Errorf("createSecret must be in the steps by hand exactly when the pending version has no key:\n%s", advice)
			}
			h.assertNoWrites(t)
		})
	}
}

func TestRotateMapsSecretsManagersRefusalToTheSameReport(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.g.Set(phones[1], keyPend.PublicPEM(), graph.StatusValid)
	// Another caller starts a rotation between DescribeSecret and RotateSecret.
	h.sm.BeforeRotate = func(s *secretsfake.Secret) {
		v := h.doc(t, keyPend)
		s.Values["v-other"] = v
		s.Detach(rotation.StagePending)
		s.Stages["v-other"] = []string{rotation.StagePending}
	}
	r := rotateNow(t, h)
	if r.Outcome != OutcomeBlocked || r.PendingVersionID != "v-other" || !slices.Equal(r.HoldingPending, []string{phones[1]}) || r.SafeToRemovePending {
		t.Fatalf("got %+v", r)
	}
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

func TestRotateBlockedWhenNoNumberCanBeReadNeverAdvisesRemoval(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.pending(t, "v-pend", keyPend)
	h.sm.Delete(tokenSecret)
	r := rotateNow(t, h)
	if r.Outcome != OutcomeBlocked || r.SafeToRemovePending || !strings.Contains(r.NumbersError, "read access token secret "+tokenSecret) {
		t.Fatalf("got %+v", r)
	}
	advice := strings.Join(r.Advice, "\n")
	if strings.Contains(advice, "--remove-from-version-id") || !strings.Contains(r.Advice[0], "the phone numbers could not be read at all") {
		t.Errorf("advice:\n%s", advice)
	}
}
