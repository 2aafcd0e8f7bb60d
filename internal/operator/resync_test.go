package operator

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
)

func resync(t *testing.T, h *harness, dryRun bool) *ResyncReport {
	t.Helper()
	out, err := h.run(t, Command{Name: CommandResync, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	return out.(*ResyncReport)
}

func actions(r *ResyncReport) map[string]string {
	m := map[string]string{}
	for _, n := range r.Numbers {
		m[n.PhoneNumberID] = n.Action
	}
	return m
}

// drifted sets up five numbers: one fine, three drifted that resync
// repairs, one whose GET fails.
func drifted(t *testing.T) *harness {
	h := newHarness(t, map[string]any{"phone_number_ids": phones})
	h.standard(t, phones...)
	h.g.Set(phones[1], keyForeign.PublicPEM(), graph.StatusValid) // matches none
	h.g.Set(phones[2], keyCur.PublicPEM(), graph.StatusMismatch)  // MISMATCH
	h.g.Set(phones[3], keyPrev.PublicPEM(), graph.StatusValid)    // AWSPREVIOUS, no rotation
	h.g.Fault("get", phones[4], graphErr("get", phones[4], 500, 0, 0, true))
	return h
}

func TestResyncDryRunWritesNothing(t *testing.T) {
	h := drifted(t)
	r := resync(t, h, true)
	want := map[string]string{phones[0]: ActionUnchanged, phones[1]: ActionWouldRepair, phones[2]: ActionWouldRepair, phones[3]: ActionWouldRepair, phones[4]: ActionSkipped}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	if r.OK || r.Outcome != OutcomeDryRun || !r.DryRun || r.WouldRepair != 3 || r.Skipped != 1 || r.Repaired != 0 {
		t.Errorf("got %+v", r)
	}
	const msg = "dry run: would upload the AWSCURRENT key %s to 3 numbers and verify them; 1 drifted numbers would be left alone. Nothing was written; send {\"command\":\"resync\"} to do it"
	if r.Message != strings.Replace(msg, "%s", keyCur.Fingerprint().Short(), 1) {
		t.Errorf("message %q", r.Message)
	}
	h.assertNoWrites(t)
	if want := []string{"resync ok=false uploaded=0 verified=0 failed=0"}; !slices.Equal(h.metrics.commands, want) {
		t.Errorf("metrics %v, want %v", h.metrics.commands, want)
	}
}

func TestResyncRepairsExactlyTheDriftedNumbers(t *testing.T) {
	h := drifted(t)
	r := resync(t, h, false)
	want := map[string]string{phones[0]: ActionUnchanged, phones[1]: ActionRepaired, phones[2]: ActionRepaired, phones[3]: ActionRepaired, phones[4]: ActionSkipped}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	up, gets := h.g.Counts()
	if want := map[string]int{phones[1]: 1, phones[2]: 1, phones[3]: 1}; !maps.Equal(up, want) {
		t.Errorf("uploads %v, want %v", up, want)
	}
	// One GET to judge each number, one more to verify each repaired one.
	if want := map[string]int{phones[0]: 1, phones[1]: 2, phones[2]: 2, phones[3]: 2, phones[4]: 1}; !maps.Equal(gets, want) {
		t.Errorf("gets %v, want %v", gets, want)
	}
	if r.OK || r.Outcome != OutcomeIncomplete || r.Repaired != 3 || r.Skipped != 1 || r.Failed != 0 {
		t.Errorf("got %+v", r)
	}
	if n := byID(t, r.Numbers, func(n ResyncNumber) string { return n.PhoneNumberID }, phones[4]); !strings.HasPrefix(n.Reason, "what Meta holds is unknown, so resync does not overwrite it") {
		t.Errorf("skipped reason %q", n.Reason)
	}
	if w := h.sm.Writes(); len(w) != 0 {
		t.Errorf("resync wrote the secret: %v", w)
	}
	if want := []string{"resync ok=false uploaded=3 verified=3 failed=0"}; !slices.Equal(h.metrics.commands, want) {
		t.Errorf("metrics %v, want %v", h.metrics.commands, want)
	}

	// Once the GET works again, status is healthy and resync has nothing to do.
	s := h.status(t)
	if !s.OK {
		t.Fatalf("after resync: %q", s.Reasons)
	}
	r = resync(t, h, false)
	if !r.OK || r.Outcome != OutcomeNothingToDo || r.Message != "no number needs the AWSCURRENT key; nothing was written" {
		t.Errorf("second resync: %+v", r)
	}
	if up2, _ := h.g.Counts(); !maps.Equal(up, up2) {
		t.Errorf("a healthy secret got uploads: %v", up2)
	}
}

func TestResyncLeavesTheRotationInProgressAlone(t *testing.T) {
	h := newHarness(t, map[string]any{"phone_number_ids": phones[:4]})
	h.standard(t, phones[:4]...)
	h.pending(t, "v-pend", keyPend)
	h.g.Set(phones[0], keyPend.PublicPEM(), graph.StatusValid)    // the rotation switched it: fine
	h.g.Set(phones[1], keyPend.PublicPEM(), graph.StatusMismatch) // the rotation's to fix
	h.g.Set(phones[2], keyPrev.PublicPEM(), graph.StatusValid)    // the rotation's setSecret replaces it
	h.g.Set(phones[3], keyForeign.PublicPEM(), graph.StatusValid) // drifted: repaired
	r := resync(t, h, false)
	want := map[string]string{phones[0]: ActionUnchanged, phones[1]: ActionSkipped, phones[2]: ActionSkipped, phones[3]: ActionRepaired}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	if !r.RotationInProgress {
		t.Error("rotation_in_progress is false")
	}
	if up, _ := h.g.Counts(); !maps.Equal(up, map[string]int{phones[3]: 1}) {
		t.Errorf("uploads %v, want only %s", up, phones[3])
	}
	n := byID(t, r.Numbers, func(n ResyncNumber) string { return n.PhoneNumberID }, phones[1])
	if !strings.HasPrefix(n.Reason, "what Meta holds is unknown while a rotation is incomplete (AWSPENDING version v-pend): it may hold the pending key, so only that rotation may change it") {
		t.Errorf("reason %q", n.Reason)
	}
}

func TestResyncNeverWritesToGoneNumbers(t *testing.T) {
	h := newHarness(t, map[string]any{"waba_id": wabaID, "include_phone_number_ids": []string{phones[0], phones[1], phones[2]}})
	h.standard(t, phones[0], phones[1])
	h.g.AddWABA(graph.PhoneNumber{ID: phones[0]}, graph.PhoneNumber{ID: phones[1]})
	h.g.Set(phones[1], " ", graph.StatusMismatch)
	r := resync(t, h, false)
	want := map[string]string{phones[0]: ActionUnchanged, phones[1]: ActionRepaired, phones[2]: ActionSkipped}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	if up, gets := h.g.Counts(); up[phones[2]]+gets[phones[2]] != 0 {
		t.Error("a gone number was called")
	}
}

func TestResyncReportsFailedUploadsAndVerifications(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	for _, p := range phones[:3] {
		h.g.Set(p, keyForeign.PublicPEM(), graph.StatusValid)
	}
	h.g.Fault("upload", phones[0], graphErr("upload", phones[0], 400, 100, 0, false))
	h.g.SetLag(phones[1], 1<<20) // Meta keeps showing the old key
	r := resync(t, h, false)
	want := map[string]string{phones[0]: ActionFailed, phones[1]: ActionFailed, phones[2]: ActionRepaired}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	get := func(id string) ResyncNumber {
		return byID(t, r.Numbers, func(n ResyncNumber) string { return n.PhoneNumberID }, id)
	}
	if n := get(phones[0]); !strings.HasPrefix(n.Error, "upload failed: graph upload "+phones[0]+": HTTP 400 code 100") || n.GraphError == nil || *n.GraphError.Code != 100 {
		t.Errorf("upload failure: %+v", n)
	}
	if n := get(phones[1]); !strings.HasPrefix(n.Error, "uploaded, but verification failed: Meta holds "+keyForeign.Fingerprint().Short()) {
		t.Errorf("verification failure: %+v", n)
	}
	if r.OK || r.Outcome != OutcomeIncomplete || r.Failed != 2 || r.Repaired != 1 ||
		r.Message != "repaired 1 numbers; 2 failed and 0 drifted numbers were left alone (see their reasons)" {
		t.Errorf("got %+v", r)
	}
	if want := []string{"resync ok=false uploaded=2 verified=1 failed=2"}; !slices.Equal(h.metrics.commands, want) {
		t.Errorf("metrics %v, want %v", h.metrics.commands, want)
	}
}

func TestResyncAbortsWhenALabelMovesWhileItReads(t *testing.T) {
	h := drifted(t)
	h.sm.OnDescribe = func(n int, s *secretsfake.Secret) {
		if n == 2 { // resync's re-check before writing
			v := h.doc(t, keyPend)
			s.Values["v-new"] = v
			s.Detach(rotation.StagePending)
			s.Stages["v-new"] = []string{rotation.StagePending}
		}
	}
	r := resync(t, h, false)
	if r.OK || r.Outcome != OutcomeAborted || r.Repaired != 0 || r.Skipped != 4 {
		t.Fatalf("got %+v", r)
	}
	h.assertNoWrites(t)
}

func TestResyncRefusesWithoutACurrentKey(t *testing.T) {
	for _, dry := range []bool{true, false} {
		h := newHarness(t, nil)
		h.sm.Put(h.s, "v0", h.doc(t, nil), rotation.StageCurrent)
		for _, p := range phones[:3] {
			h.g.Set(p, " ", graph.StatusMismatch)
		}
		_, err := h.run(t, Command{Name: CommandResync, DryRun: dry})
		want := "resync: AWSCURRENT version v0 of " + h.arn + ` holds no key (configuration only), so there is nothing to re-upload; fix: start the first rotation with {"command":"rotate"}`
		if err == nil || err.Error() != want {
			t.Fatalf("dry_run=%v: got %v\nwant %s", dry, err, want)
		}
		h.assertNoWrites(t)
	}
}

// While a rotation is incomplete, a MISMATCH or blank answer may hide the
// pending key: resync leaves such numbers to the rotation, and repairs
// only the numbers whose answer it can judge.
func TestResyncWritesNothingToUnknownNumbersDuringARotation(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.pending(t, "v-pend", keyPend)
	h.g.Set(phones[0], " ", graph.StatusMismatch)
	h.g.Set(phones[1], keyCur.PublicPEM(), graph.StatusMismatch)
	h.g.Set(phones[2], keyForeign.PublicPEM(), graph.StatusValid)
	r := resync(t, h, false)
	want := map[string]string{phones[0]: ActionSkipped, phones[1]: ActionSkipped, phones[2]: ActionRepaired}
	if got := actions(r); !maps.Equal(got, want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	if up, _ := h.g.Counts(); !maps.Equal(up, map[string]int{phones[2]: 1}) {
		t.Errorf("uploads %v, want only %s", up, phones[2])
	}
}

// An upload during a rotation makes the pending version's verification
// untrue: resync takes FLOWKEY_VERIFIED back before it uploads, so a
// hand-run finishSecret cannot promote on it.
func TestResyncTakesThePendingVerificationBackBeforeItUploads(t *testing.T) {
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	h.standard(t, phones[:3]...)
	h.sm.Put(h.s, "v-pend", h.doc(t, keyPend), rotation.StagePending, rotation.VerifiedStage)
	for _, p := range phones[:2] {
		h.g.Set(p, keyPend.PublicPEM(), graph.StatusValid)
	}
	h.g.Set(phones[2], keyForeign.PublicPEM(), graph.StatusValid) // changed behind flowkey's back since
	uploadsAtUnverify := -1
	h.sm.AfterStage = func(*secretsfake.Secret) { uploadsAtUnverify, _ = h.g.Totals() }
	r := resync(t, h, false)
	if got := actions(r); got[phones[2]] != ActionRepaired {
		t.Fatalf("actions %v", got)
	}
	if slices.Contains(h.s.Stages["v-pend"], rotation.VerifiedStage) {
		t.Errorf("v-pend keeps %s: labels %v", rotation.VerifiedStage, h.s.Stages["v-pend"])
	}
	if uploadsAtUnverify != 0 {
		t.Errorf("the label was removed after %d uploads, want before any", uploadsAtUnverify)
	}
}
