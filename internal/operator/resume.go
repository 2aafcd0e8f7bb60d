package operator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/rotation"
)

// resume reads every number afresh (the report's account of why the
// rotation failed) and asks Secrets Manager to run the incomplete rotation
// again on its version: RotateSecret with that version's ID as
// ClientRequestToken, the token AWS uses "to prevent the accidental
// creation of duplicate versions if there are failures and retries during
// rotation". AWS does not document that this resumes a rotation, so a
// refusal is handled too: the report then gives the steps to run by hand
// with the same token (every step is idempotent).
func (o *Operator) resume(ctx context.Context, log *slog.Logger, in *inspection) (*RotateReport, error) {
	o.readNumbers(ctx, log, in)
	r := in.incompleteReport()
	p := r.PendingVersionID
	out, err := o.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(in.secret.ARN),
		ClientRequestToken: aws.String(p),
		RotateImmediately:  aws.Bool(true),
	})
	switch {
	case isIncomplete(err):
		log.Warn("rotation blocked", "pending_version", p, "reason", "Secrets Manager refused to resume it")
		r.Outcome = OutcomeBlocked
		r.Message = fmt.Sprintf("not resumed: a previous rotation is incomplete (AWSPENDING is on version %s, AWSCURRENT on %s) and Secrets Manager refused to run it again (%s); %s. Finish it by hand: see advice",
			p, r.CurrentVersionID, err.Error(), in.whyFailed(r))
		r.Advice = o.advice(in, r, true)
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("rotate-secret %s with ClientRequestToken %s (resuming the incomplete rotation): %w; fix: check that the caller may call secretsmanager:RotateSecret on it, "+
			"or finish the rotation by hand with its token (invoke setSecret, testSecret and finishSecret)", in.secret.ARN, p, err)
	}
	r.OK, r.Outcome, r.VersionID = true, OutcomeResumed, aws.ToString(out.VersionId)
	log.Info("rotation resumed", "version_id", r.VersionID)
	r.Message = fmt.Sprintf("resumed the incomplete rotation of version %s (AWSCURRENT is %s): Secrets Manager runs createSecret, setSecret, testSecret and finishSecret "+
		"for it again, with its stored key %s (this command does not wait; a run of it still going goes on). Why it stopped, %s. If the cause is not fixed, it fails again and stays incomplete. %s",
		p, r.CurrentVersionID, short(r.PendingFingerprint), in.whyFailed(r), o.watch(in.secret.ARN, p))
	r.Advice = o.advice(in, r, false)
	return r, nil
}

// incompleteReport fills what every report of an incomplete rotation has.
func (in *inspection) incompleteReport() *RotateReport {
	p := in.versions.Pending
	r := &RotateReport{
		Command: CommandRotate, SecretARN: in.secret.ARN, CurrentVersionID: in.versions.Current.VersionID,
		PendingVersionID: p.VersionID, PendingFingerprint: p.Fingerprint, PendingProblem: p.Problem, Numbers: in.results,
	}
	for _, n := range in.results {
		switch {
		case n.Matches == rotation.StagePending:
			r.HoldingPending = append(r.HoldingPending, n.PhoneNumberID)
		case n.State == StateUnknown:
			r.Unknown = append(r.Unknown, n.PhoneNumberID)
		}
	}
	if in.numbersErr != nil {
		r.NumbersError = in.numbersErr.Error()
	}
	return r
}

// whyFailed summarises the fresh read of every number: the numbers on
// the pending key, those that read the AWSCURRENT key, then every other
// number with its reason.
func (in *inspection) whyFailed(r *RotateReport) string {
	if r.NumbersError != "" {
		return "the phone numbers could not be read (" + r.NumbersError + ")"
	}
	var current, others []string
	for _, n := range r.Numbers {
		switch {
		case n.State == StateOK && n.Matches == rotation.StageCurrent:
			current = append(current, n.PhoneNumberID)
		case n.State != StateOK || n.Matches != rotation.StagePending:
			others = append(others, n.PhoneNumberID+": "+n.Reason)
		}
	}
	var parts []string
	if len(r.HoldingPending) > 0 {
		parts = append(parts, strings.Join(r.HoldingPending, ", ")+" answer VALID with the pending key")
	}
	if len(current) > 0 {
		parts = append(parts, strings.Join(current, ", ")+" answer VALID with the AWSCURRENT key (a read may lag behind an upload of the pending key)")
	}
	parts = append(parts, others...)
	if len(parts) == 0 {
		return "no phone number was read"
	}
	return "what Meta answers now: " + strings.Join(parts, "; ")
}

// advice is the way on for an incomplete rotation that holds a key.
// byHand puts finishing it by hand first, for when Secrets Manager refused
// to resume it.
func (o *Operator) advice(in *inspection, r *RotateReport, byHand bool) []string {
	arn, p := in.secret.ARN, r.PendingVersionID
	dont := fmt.Sprintf("Do NOT remove AWSPENDING from version %s: its key may be at Meta on any number (reads lag behind uploads, and MISMATCH hides the key), "+
		"and its private key is stored only in that version. Without the label nothing keeps it, and Flows requests encrypted for it could no longer be decrypted.", p)
	logs := fmt.Sprintf("Why it failed, step by step: the rotator's log lines \"step failed\" for version %s (Logs Insights: "+
		"fields @timestamp, step, error | filter token = \"%s\" and msg = \"step failed\" | sort @timestamp desc), and numbers[] here (signature status and Graph error per number).", p, p)
	cause := "Fix the cause (a revoked or wrong token: Graph code 190; a number not allow-listed: code 10; a number re-registered at Meta: MISMATCH; Meta down: 5xx or 131000)"
	// No "&&" in the commands: the Lambda runtime's JSON encoding would
	// print it as \u0026 and break copy and paste.
	var invokes []string
	for _, s := range []string{rotation.StepSet, rotation.StepTest, rotation.StepFinish} {
		invokes = append(invokes, fmt.Sprintf(`aws lambda invoke --function-name %s --cli-binary-format raw-in-base64-out --payload '{"Step":"%s","SecretId":"%s","ClientRequestToken":"%s"}' out.json`,
			o.opts.FunctionName, s, arn, p))
	}
	hand := "finish it by hand with its token once no step of it is running (the rotator's last log line for version " + p + " is \"step failed\"), one step after the other, each leaving null in out.json: " +
		strings.Join(invokes, " ; then ") + ". Every step is idempotent, and finishSecret refuses until testSecret has verified every number"
	after := "Afterwards {\"command\":\"status\"} shows \"overall\":\"healthy\", every number matching AWSCURRENT with the fingerprint " + short(r.PendingFingerprint) + "."
	if byHand {
		return []string{dont, logs, cause + ", then " + hand + ".", "Or wait: Secrets Manager reattempts the incomplete rotation itself; then run {\"command\":\"rotate\"} again.", after}
	}
	return []string{dont, logs, cause + ", then run {\"command\":\"rotate\"} again: it resumes this same rotation, with the same key.",
		"If Secrets Manager ever refuses to resume it (rotate answers \"blocked\"), " + hand + ".", after}
}
