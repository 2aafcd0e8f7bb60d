package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
)

// Outcomes of rotate.
const (
	OutcomeStarted = "started" // a new rotation
	OutcomeResumed = "resumed" // the incomplete rotation runs again, on its version and key
	// OutcomeBlocked: the incomplete rotation could not be resumed
	// (Secrets Manager refused, or this build cannot read its version);
	// the report says how to finish it.
	OutcomeBlocked = "blocked"
)

// RotateReport is the result of the rotate command.
type RotateReport struct {
	Command string `json:"command"` // "rotate"
	// OK is true when a rotation was started or resumed.
	OK bool `json:"ok"`
	// Outcome is "started", "resumed" or "blocked".
	Outcome   string `json:"outcome"`
	SecretARN string `json:"secret_arn"`
	// VersionID is the version the started or resumed rotation promotes.
	VersionID string `json:"version_id,omitempty"`
	Message   string `json:"message"`
	// ClearedVersionID is a version whose AWSPENDING rotate removed before
	// starting: it held no usable key, so flowkey never uploaded from it.
	ClearedVersionID string `json:"cleared_pending_version_id,omitempty"`

	// The rest describes an incomplete rotation, resumed or blocked.
	PendingVersionID string `json:"pending_version_id,omitempty"`
	// PendingFingerprint is the pending version's key; "" when it cannot be
	// read.
	PendingFingerprint string `json:"pending_fingerprint_sha256,omitempty"`
	CurrentVersionID   string `json:"current_version_id,omitempty"`
	// PendingProblem says why the pending version cannot be read.
	PendingProblem string `json:"pending_problem,omitempty"`
	// Numbers is what Meta answered for each number just before the
	// resume, judged as status judges it: why the rotation failed.
	Numbers []NumberStatus `json:"numbers,omitempty"`
	// HoldingPending are the numbers that answered VALID with the pending key.
	HoldingPending []string `json:"numbers_holding_pending,omitempty"`
	// Unknown are the numbers whose key is unknown (the GET failed, or
	// answered MISMATCH, blank, no key): they may hold the pending key.
	Unknown []string `json:"numbers_unknown,omitempty"`
	// NumbersError is why the numbers could not be read at all.
	NumbersError string `json:"numbers_error,omitempty"`
	// Advice is the way on, in order.
	Advice []string `json:"advice,omitempty"`
}

// msgIncomplete is the start of Secrets Manager's refusal to start a
// rotation while AWSPENDING is on a version that is not AWSCURRENT.
const msgIncomplete = "previous rotation isn't complete"

func isIncomplete(err error) bool {
	var ir *types.InvalidRequestException
	return errors.As(err, &ir) && strings.Contains(strings.ToLower(ir.ErrorMessage()), msgIncomplete)
}

func (o *Operator) rotate(ctx context.Context, log *slog.Logger, secretID string) (*RotateReport, error) {
	sec, err := o.describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	if p, c := sec.VersionWith(rotation.StagePending), sec.VersionWith(rotation.StageCurrent); p != "" && p != c {
		return o.incomplete(ctx, log, sec, true)
	}
	r, err := o.start(ctx, log, sec.ARN)
	if isIncomplete(err) {
		// Another caller started a rotation between DescribeSecret and
		// RotateSecret. Resume it if it holds a key; never clear it: its
		// createSecret may be running now.
		log.Warn("rotation started meanwhile", "reason", err.Error())
		if sec, err = o.describe(ctx, sec.ARN); err != nil {
			return nil, err
		}
		return o.incomplete(ctx, log, sec, false)
	}
	return r, err
}

// start calls RotateSecret for a new rotation.
func (o *Operator) start(ctx context.Context, log *slog.Logger, arn string) (*RotateReport, error) {
	out, err := o.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(arn),
		RotateImmediately: aws.Bool(true),
	})
	switch {
	case isIncomplete(err):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("rotate-secret %s: %w; fix: check that rotation is configured on the secret "+
			"(describe-secret shows RotationLambdaARN) and that the caller may call secretsmanager:RotateSecret on it "+
			"and lambda:InvokeFunction on the rotation function", arn, err)
	}
	v := aws.ToString(out.VersionId)
	log.Info("rotation started", "version_id", v)
	return &RotateReport{
		Command: CommandRotate, OK: true, Outcome: OutcomeStarted, SecretARN: arn, VersionID: v,
		Message: fmt.Sprintf("rotation started: Secrets Manager now invokes %s for createSecret, setSecret, testSecret and finishSecret "+
			"with version %s. This command does not wait for them (the steps run in this same function). %s", o.opts.FunctionName, v, o.watch(arn, v)),
	}, nil
}

func (o *Operator) watch(arn, v string) string {
	return fmt.Sprintf("Watch with {\"command\":\"status\"}: the rotation is done when versions.AWSCURRENT.version_id is %s and every number matches AWSCURRENT; "+
		"or with `aws secretsmanager describe-secret --secret-id %s`.", v, arn)
}

// incomplete handles rotate while AWSPENDING is on a version that is not
// AWSCURRENT. What the pending version holds decides, never a read of Meta
// (reads lag, and MISMATCH hides the key):
//   - a key: it may have reached Meta. The rotation is resumed with its
//     token, and AWSPENDING is never removed from it.
//   - no value yet, a document without a key, or the AWSCURRENT key: no
//     number can hold a key only it stores, so its AWSPENDING is removed
//     (when mayClear) and a new rotation starts.
//   - anything this build cannot read (a newer schema among them, which a
//     newer build may have uploaded from): it is reported, never cleared.
func (o *Operator) incomplete(ctx context.Context, log *slog.Logger, sec *keystate.Secret, mayClear bool) (*RotateReport, error) {
	in, err := o.readVersions(ctx, sec)
	if err != nil {
		return nil, err
	}
	if !in.inProgress {
		// The rotation that blocked RotateSecret finished meanwhile.
		return &RotateReport{Command: CommandRotate, Outcome: OutcomeBlocked, SecretARN: sec.ARN, CurrentVersionID: in.versions.Current.VersionID,
			Message: "Secrets Manager refused to start a rotation because another one was incomplete, and that one has finished since; run {\"command\":\"rotate\"} again"}, nil
	}
	p := in.versions.Pending
	switch {
	case in.keys.Pending != nil && !in.holdsCurrentKey():
		return o.resume(ctx, log, in)
	case p.Problem != "" && !strings.HasPrefix(p.Problem, problemNoValue):
		log.Warn("rotation blocked", "pending_version", p.VersionID, "reason", "pending version unreadable")
		return o.unreadable(ctx, log, in), nil
	case !mayClear:
		return &RotateReport{Command: CommandRotate, Outcome: OutcomeBlocked, SecretARN: sec.ARN, PendingVersionID: p.VersionID, CurrentVersionID: in.versions.Current.VersionID,
			Message: fmt.Sprintf("not started: a rotation to version %s started just now, while this command ran; it is running. %s", p.VersionID, o.watch(sec.ARN, p.VersionID))}, nil
	}
	return o.clearAndStart(ctx, log, in)
}

// holdsCurrentKey is a pending version whose key is AWSCURRENT's (a copy
// Secrets Manager made for a test-only run): AWSCURRENT keeps that key.
func (in *inspection) holdsCurrentKey() bool {
	return in.keys.Pending != nil && in.keys.Current != nil && in.keys.Pending.FingerprintSHA256 == in.keys.Current.FingerprintSHA256
}
