package operator

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/rotation"
)

// Outcomes of resync.
const (
	OutcomeNothingToDo = "nothing_to_do" // no number needs the AWSCURRENT key
	OutcomeDryRun      = "dry_run"       // what would be done; nothing written
	OutcomeRepaired    = "repaired"      // every number it wrote to verified
	OutcomeIncomplete  = "incomplete"    // some writes failed, or drifted numbers were left alone
	OutcomeAborted     = "aborted"       // the labels moved while reading; nothing written
)

// Actions resync takes on a number.
const (
	ActionUnchanged   = "unchanged"    // already fine
	ActionRepaired    = "repaired"     // AWSCURRENT uploaded and verified
	ActionWouldRepair = "would_repair" // dry run: would be uploaded
	ActionFailed      = "failed"       // the upload or the verification failed
	ActionSkipped     = "skipped"      // drifted, but resync must not write to it
)

// ResyncReport is the result of the resync command.
type ResyncReport struct {
	Command string `json:"command"` // "resync"
	// OK is true when no number is left drifted (for a dry run: when
	// every drifted number can be repaired).
	OK                 bool   `json:"ok"`
	Outcome            string `json:"outcome"`
	DryRun             bool   `json:"dry_run"`
	SecretARN          string `json:"secret_arn"`
	CurrentVersionID   string `json:"current_version_id"`
	CurrentFingerprint string `json:"current_fingerprint_sha256"`
	RotationInProgress bool   `json:"rotation_in_progress"`
	// Numbers lists every number in status order.
	Numbers     []ResyncNumber `json:"numbers"`
	Repaired    int            `json:"repaired"`
	WouldRepair int            `json:"would_repair"`
	Failed      int            `json:"failed"`
	Skipped     int            `json:"skipped"`
	Message     string         `json:"message"`
}

// ResyncNumber is what resync did to one number.
type ResyncNumber struct {
	PhoneNumberID string `json:"phone_number_id"`
	Action        string `json:"action"`
	// Reason explains the action: the drift it repairs, or why it skipped.
	Reason string `json:"reason,omitempty"`
	// Before is the number as status saw it.
	Before NumberStatus `json:"before"`
	// Error is why an upload or verification failed.
	Error      string      `json:"error,omitempty"`
	GraphError *GraphError `json:"graph_error,omitempty"`
}

// plan decides what resync does to a number status judged. Writing the
// AWSCURRENT key keeps the invariant on any number, but resync writes only
// where it is a repair: never where the GET failed (nothing is known), and,
// while a rotation is incomplete, never where Meta's answer is unknown (the
// number may hold the pending key) or is the rotation's to change.
func (in *inspection) plan(ns NumberStatus) (action, reason string) {
	switch {
	case ns.State == StateOK:
		return ActionUnchanged, ""
	case ns.State == StateGone:
		return ActionSkipped, "gone: " + ns.Reason
	case ns.State == StateUnknown && ns.GraphError != nil:
		return ActionSkipped, "what Meta holds is unknown, so resync does not overwrite it: " + ns.Reason
	case in.inProgress && ns.State == StateUnknown:
		return ActionSkipped, "what Meta holds is unknown while a rotation is incomplete (AWSPENDING version " + in.versions.Pending.VersionID +
			"): it may hold the pending key, so only that rotation may change it; finish it with {\"command\":\"rotate\"}: " + ns.Reason
	case in.inProgress && ns.Matches == rotation.StagePending:
		return ActionSkipped, "holds the key of the rotation in progress (AWSPENDING version " + in.versions.Pending.VersionID +
			"); only that rotation may change it: " + ns.Reason
	case in.inProgress && ns.Matches == rotation.StagePrevious:
		return ActionSkipped, "holds the AWSPREVIOUS key while a rotation is in progress; that rotation's setSecret replaces it. Run resync again after the rotation if status still shows it"
	}
	return ActionWouldRepair, ns.Reason
}

func (o *Operator) resync(ctx context.Context, log *slog.Logger, secretID string, dryRun bool) (*ResyncReport, counts, error) {
	in, err := o.inspect(ctx, log, secretID)
	if err != nil {
		return nil, counts{}, err
	}
	cur := in.current.Key
	if cur == nil {
		return nil, counts{}, fmt.Errorf("AWSCURRENT version %s of %s holds no key (configuration only), so there is nothing to re-upload; fix: start the first rotation with {\"command\":\"rotate\"}",
			in.versions.Current.VersionID, in.secret.ARN)
	}
	if in.numbersErr != nil {
		return nil, counts{}, in.numbersErr
	}
	r := &ResyncReport{
		Command: CommandResync, DryRun: dryRun, SecretARN: in.secret.ARN,
		CurrentVersionID: in.versions.Current.VersionID, CurrentFingerprint: cur.FingerprintSHA256,
		RotationInProgress: in.inProgress,
	}
	var targets []int
	for i, ns := range in.results {
		action, reason := in.plan(ns)
		r.Numbers = append(r.Numbers, ResyncNumber{PhoneNumberID: ns.PhoneNumberID, Action: action, Reason: reason, Before: ns})
		if action == ActionWouldRepair {
			targets = append(targets, i)
		}
	}
	if r.Numbers == nil {
		r.Numbers = []ResyncNumber{}
	}

	var st counts
	switch {
	case len(targets) == 0:
	case dryRun:
	default:
		// A rotation that started or finished while we read would make the
		// plan stale; writing the old AWSCURRENT then could undo its work.
		now, err := o.describe(ctx, in.secret.ARN)
		if err != nil {
			return nil, counts{}, err
		}
		if !sameLabels(in.secret.Stages, now.Stages) {
			r.abort()
			log.Warn("resync aborted", "reason", "labels changed")
			return r, st, nil
		}
		if in.inProgress {
			// Uploading during a rotation makes its verification untrue:
			// finishSecret must not promote on it.
			if err := o.rot.Unverify(ctx, now, in.versions.Pending.VersionID); err != nil {
				return nil, counts{}, fmt.Errorf("%w; nothing was uploaded", err)
			}
		}
		st = o.repair(ctx, log, in, r, targets)
	}
	r.count()
	r.OK = r.Failed == 0 && r.Skipped == 0
	switch {
	case len(targets) == 0 && r.Skipped == 0:
		r.Outcome = OutcomeNothingToDo
		r.Message = "no number needs the AWSCURRENT key; nothing was written"
	case len(targets) == 0:
		r.Outcome = OutcomeIncomplete
		r.Message = fmt.Sprintf("nothing was written; %d drifted numbers were left alone (see their reasons)", r.Skipped)
	case dryRun:
		r.Outcome = OutcomeDryRun
		r.Message = fmt.Sprintf("dry run: would upload the AWSCURRENT key %s to %d numbers and verify them; %d drifted numbers would be left alone. Nothing was written; send {\"command\":\"resync\"} to do it",
			short(cur.FingerprintSHA256), r.WouldRepair, r.Skipped)
	case r.OK:
		r.Outcome = OutcomeRepaired
		r.Message = fmt.Sprintf("uploaded the AWSCURRENT key %s to %d numbers and verified each", short(cur.FingerprintSHA256), r.Repaired)
	default:
		r.Outcome = OutcomeIncomplete
		r.Message = fmt.Sprintf("repaired %d numbers; %d failed and %d drifted numbers were left alone (see their reasons)", r.Repaired, r.Failed, r.Skipped)
	}
	log.Info("resync", "outcome", r.Outcome, "repaired", r.Repaired, "would_repair", r.WouldRepair, "failed", r.Failed, "skipped", r.Skipped)
	return r, st, nil
}

// repair uploads the AWSCURRENT public key, as read back from AWSCURRENT,
// to the target numbers and verifies those that took it as testSecret does.
func (o *Operator) repair(ctx context.Context, log *slog.Logger, in *inspection, r *ResyncReport, targets []int) counts {
	ids := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = r.Numbers[t].PhoneNumberID
	}
	pem := in.current.Key.PublicKeyPEM
	errs := fanout.Each(ctx, o.opts.Concurrency, ids, func(ctx context.Context, id string) error {
		return o.graph.UploadPublicKey(ctx, in.auth, id, pem)
	})
	var st counts
	var uploaded []int
	for i, err := range errs {
		n := &r.Numbers[targets[i]]
		if err != nil {
			st.failed++
			n.Action, n.Error, n.GraphError = ActionFailed, "upload failed: "+err.Error(), graphErrorOf(err)
			log.Warn("resync upload failed", "phone_number_id", n.PhoneNumberID, "error", err.Error())
			continue
		}
		st.uploaded++
		uploaded = append(uploaded, targets[i])
	}
	ids = ids[:0]
	for _, t := range uploaded {
		ids = append(ids, r.Numbers[t].PhoneNumberID)
	}
	for i, res := range o.rot.Verify(ctx, in.auth, ids, in.current.Key) {
		n := &r.Numbers[uploaded[i]]
		if res.Err != nil {
			st.failed++
			n.Action, n.Error = ActionFailed, "uploaded, but verification failed: "+res.Err.Error()
			if g := graphErrorOf(res.Err); g.Code != nil || g.HTTPStatus != 0 {
				n.GraphError = g
			}
			continue
		}
		st.verified++
		n.Action = ActionRepaired
	}
	return st
}

// abort reports a resync that wrote nothing because the labels moved
// while it read.
func (r *ResyncReport) abort() {
	r.Outcome, r.OK = OutcomeAborted, false
	r.Message = "the secret's labels changed while resync was reading (a rotation started or finished); nothing was written. Run {\"command\":\"status\"} and then resync again"
	for i := range r.Numbers {
		if r.Numbers[i].Action == ActionWouldRepair {
			r.Numbers[i].Action = ActionSkipped
			r.Numbers[i].Reason = "resync aborted before writing: " + r.Numbers[i].Reason
		}
	}
	r.count()
}

func (r *ResyncReport) count() {
	r.Repaired, r.WouldRepair, r.Failed, r.Skipped = 0, 0, 0, 0
	for _, n := range r.Numbers {
		switch n.Action {
		case ActionRepaired:
			r.Repaired++
		case ActionWouldRepair:
			r.WouldRepair++
		case ActionFailed:
			r.Failed++
		case ActionSkipped:
			r.Skipped++
		}
	}
}

func sameLabels(a, b map[string][]string) bool {
	norm := func(m map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range m {
			if len(v) > 0 {
				out[k] = slices.Sorted(slices.Values(v))
			}
		}
		return out
	}
	return maps.EqualFunc(norm(a), norm(b), slices.Equal)
}
