package rotation

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/graph"
)

// labels is the version's staging labels, sorted.
func (h *harness) labels(version string) []string {
	return slices.Sorted(slices.Values(h.sm.Secret(h.arn).Stages[version]))
}

// The reproduction: a verification that a later rollback made
// untrue must not let a hand-run finishSecret promote the version.
func TestARolledBackVerificationCannotPromote(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	current := h.doc(t, StageCurrent).Key.FingerprintSHA256
	// Rotation 2 fails in setSecret.
	h.g.Fault("upload", phones[1], graphErr("upload", phones[1], 400, 100, 0, false))
	if err := h.rotate(t, "v2"); err == nil || !strings.Contains(err.Error(), "setSecret") {
		t.Fatalf("want rotation 2 to fail in setSecret, got %v", err)
	}
	// By hand, setSecret and testSecret then succeed: the version is verified.
	for _, s := range []string{StepSet, StepTest} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatalf("%s by hand: %v", s, err)
		}
	}
	if !slices.Contains(h.labels("v2"), VerifiedStage) {
		t.Fatalf("v2 labels %v after a passing testSecret, want %s", h.labels("v2"), VerifiedStage)
	}
	// MISMATCH on one number: testSecret fails and puts the current key back.
	h.g.SetStatus(phones[0], graph.StatusMismatch)
	if err := h.step(StepTest, "v2"); err == nil || !strings.Contains(err.Error(), "Put the AWSCURRENT key back on 3 numbers") {
		t.Fatalf("want testSecret to fail and roll back every number, got %v", err)
	}
	if slices.Contains(h.labels("v2"), VerifiedStage) {
		t.Errorf("v2 keeps %s after the rollback: labels %v", VerifiedStage, h.labels("v2"))
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != current {
			t.Errorf("%s holds %.16s after the rollback, want the current key", p, got)
		}
	}
	// A hand-run finishSecret must refuse: promoting would leave every
	// number on a key that only AWSPREVIOUS holds.
	err := h.step(StepFinish, "v2")
	var ge *GuardError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "testSecret has not verified") {
		t.Fatalf("finishSecret after the rollback: want a refusal, got %v", err)
	}
	if got := h.doc(t, StageCurrent).Key.FingerprintSHA256; got != current {
		t.Error("AWSCURRENT moved")
	}
	h.assertInvariant(t)
}

// An upload for a version takes its verification back before anything
// reaches Meta, so a hand-run setSecret after testSecret needs a new
// testSecret before finishSecret promotes.
func TestSetSecretClearsTheVerificationBeforeItUploads(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "v2", nil)
	for _, s := range []string{StepCreate, StepSet, StepTest} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	// The label goes first: a failure to clear it stops setSecret before
	// any upload.
	h.sm.FailNext("UpdateSecretVersionStage", errors.New("throttled"))
	up0, _ := h.g.Totals()
	if err := h.step(StepSet, "v2"); err == nil || !strings.Contains(err.Error(), "remove "+VerifiedStage) {
		t.Fatalf("want setSecret to fail on clearing the label, got %v", err)
	}
	if up, _ := h.g.Totals(); up != up0 {
		t.Errorf("setSecret uploaded %d keys although it could not clear the verification", up-up0)
	}
	if err := h.step(StepSet, "v2"); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.labels("v2"), VerifiedStage) {
		t.Fatalf("v2 labels %v after setSecret, want no %s", h.labels("v2"), VerifiedStage)
	}
	if err := h.step(StepFinish, "v2"); err == nil || !strings.Contains(err.Error(), "testSecret has not verified") {
		t.Fatalf("finishSecret without a new testSecret: want a refusal, got %v", err)
	}
	for _, s := range []string{StepTest, StepFinish} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	h.assertInvariant(t)
}

// finishSecret leaves no AWSPENDING behind on the version it promotes, and
// a repeated finishSecret finishes that after a crash between the two
// label moves.
func TestFinishSecretRemovesAWSPENDINGFromThePromotedVersion(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	if got, want := h.labels("v1"), []string{StageCurrent, VerifiedStage}; !slices.Equal(got, want) {
		t.Errorf("v1 labels %v after the rotation, want %v", got, want)
	}
	// A crash after AWSCURRENT moved, before AWSPENDING was removed.
	h.sm.StagePending(h.arn, "v2", nil)
	for _, s := range []string{StepCreate, StepSet, StepTest} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	h.sm.FailNext("UpdateSecretVersionStage", nil) // the move goes through
	h.sm.FailNext("UpdateSecretVersionStage", errors.New("connection reset"))
	if err := h.step(StepFinish, "v2"); err == nil || !strings.Contains(err.Error(), "remove AWSPENDING") {
		t.Fatalf("want finishSecret to report the failed removal, got %v", err)
	}
	if got, want := h.labels("v2"), []string{StageCurrent, StagePending, VerifiedStage}; !slices.Equal(got, want) {
		t.Fatalf("v2 labels %v after the crash, want %v", got, want)
	}
	if err := h.step(StepFinish, "v2"); err != nil {
		t.Fatalf("repeated finishSecret: %v", err)
	}
	if got, want := h.labels("v2"), []string{StageCurrent, VerifiedStage}; !slices.Equal(got, want) {
		t.Errorf("v2 labels %v after the repeated finishSecret, want %v", got, want)
	}
	if got := h.labels("v1"); !slices.Equal(got, []string{StagePrevious}) {
		t.Errorf("v1 labels %v, want only AWSPREVIOUS", got)
	}
	h.assertInvariant(t)
}

// A failed testSecret that cannot take the label back changes nothing at
// Meta: a rollback under a label that still says "verified" would let a
// hand-run finishSecret strand every number.
func TestTestSecretRollsNothingBackWhenItCannotClearTheVerification(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "v2", nil)
	for _, s := range []string{StepCreate, StepSet, StepTest} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	h.g.SetStatus(phones[2], graph.StatusMismatch)
	h.sm.FailNext("UpdateSecretVersionStage", errors.New("throttled"))
	up0, _ := h.g.Totals()
	err := h.step(StepTest, "v2")
	if err == nil || !strings.Contains(err.Error(), "nothing was rolled back, because remove "+VerifiedStage) {
		t.Fatalf("want a failure that rolled nothing back, got %v", err)
	}
	if up, _ := h.g.Totals(); up != up0 {
		t.Errorf("%d rollback uploads under a label that could not be cleared", up-up0)
	}
	h.assertInvariant(t)
}
