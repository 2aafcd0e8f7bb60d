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

	"github.com/flowkey/flowkey/internal/rotation"
)

// Outcomes of rotate.
const (
	OutcomeStarted = "started"
	OutcomeBlocked = "blocked"
)

// RotateReport is the result of the rotate command.
type RotateReport struct {
	Command string `json:"command"` // "rotate"
	// OK is true when a rotation was started.
	OK bool `json:"ok"`
	// Outcome is "started" or "blocked".
	Outcome   string `json:"outcome"`
	SecretARN string `json:"secret_arn"`
	// VersionID is the version the started rotation creates.
	VersionID string `json:"version_id,omitempty"`
	Message   string `json:"message"`

	// The rest describes a blocked rotate: the incomplete rotation.
	PendingVersionID string `json:"pending_version_id,omitempty"`
	// PendingFingerprint is "" when the pending version holds no key.
	PendingFingerprint string `json:"pending_fingerprint_sha256,omitempty"`
	CurrentVersionID   string `json:"current_version_id,omitempty"`
	// Numbers is what Meta holds for each number, as status reports it.
	Numbers []NumberStatus `json:"numbers,omitempty"`
	// HoldingPending are the numbers that hold the pending key.
	HoldingPending []string `json:"numbers_holding_pending,omitempty"`
	// Unknown are the numbers whose key could not be read: they may hold
	// the pending key.
	Unknown []string `json:"numbers_unknown,omitempty"`
	// NumbersError is why the numbers could not be read at all.
	NumbersError string `json:"numbers_error,omitempty"`
	// SafeToRemovePending is true only when no number can hold the
	// pending key.
	SafeToRemovePending bool `json:"safe_to_remove_pending"`
	// Advice is the safe way on, in order.
	Advice []string `json:"advice,omitempty"`
}

// msgIncomplete is the start of Secrets Manager's refusal to start a
// rotation while AWSPENDING is on a version that is not AWSCURRENT.
const msgIncomplete = "previous rotation isn't complete"

func (o *Operator) rotate(ctx context.Context, log *slog.Logger, secretID string) (*RotateReport, error) {
	sec, err := o.describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	arn := sec.ARN
	if p, c := sec.VersionWith(rotation.StagePending), sec.VersionWith(rotation.StageCurrent); p != "" && p != c {
		log.Warn("rotation blocked", "pending_version", p)
		return o.blocked(ctx, log, arn)
	}
	out, err := o.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(arn),
		RotateImmediately: aws.Bool(true),
	})
	if err != nil {
		var ir *types.InvalidRequestException
		if errors.As(err, &ir) && strings.Contains(strings.ToLower(ir.ErrorMessage()), msgIncomplete) {
			// A rotation started between DescribeSecret and RotateSecret.
			log.Warn("rotation blocked", "reason", ir.ErrorMessage())
			return o.blocked(ctx, log, arn)
		}
		return nil, fmt.Errorf("rotate-secret %s: %w; fix: check that rotation is configured on the secret "+
			"(describe-secret shows RotationLambdaARN) and that the caller may call secretsmanager:RotateSecret on it "+
			"and lambda:InvokeFunction on the rotation function", arn, err)
	}
	v := aws.ToString(out.VersionId)
	log.Info("rotation started", "version_id", v)
	return &RotateReport{
		Command: CommandRotate, OK: true, Outcome: OutcomeStarted, SecretARN: arn, VersionID: v,
		Message: fmt.Sprintf("rotation started: Secrets Manager now invokes %s for createSecret, setSecret, testSecret and finishSecret "+
			"with version %s. This command does not wait for them (the steps run in this same function). "+
			"Watch with {\"command\":\"status\"}: the rotation is done when versions.AWSCURRENT.version_id is %s and every number matches AWSCURRENT; "+
			"or with `aws secretsmanager describe-secret --secret-id %s`.", o.opts.FunctionName, v, v, arn),
	}, nil
}

// blocked builds the report of an incomplete rotation: who holds which
// key, and the safe way on.
func (o *Operator) blocked(ctx context.Context, log *slog.Logger, arn string) (*RotateReport, error) {
	in, err := o.inspect(ctx, log, arn)
	if err != nil {
		return nil, err
	}
	r := &RotateReport{Command: CommandRotate, Outcome: OutcomeBlocked, SecretARN: in.secret.ARN, CurrentVersionID: in.versions.Current.VersionID}
	if !in.inProgress {
		// The rotation that blocked RotateSecret finished meanwhile.
		r.Message = "Secrets Manager refused to start a rotation because another one was incomplete, and that one has finished since; run {\"command\":\"rotate\"} again"
		return r, nil
	}
	p := in.versions.Pending
	r.PendingVersionID, r.PendingFingerprint, r.Numbers = p.VersionID, p.Fingerprint, in.results
	for _, n := range in.results {
		switch {
		case n.Matches == rotation.StagePending:
			r.HoldingPending = append(r.HoldingPending, n.PhoneNumberID)
		case n.State == StateUnreadable:
			r.Unknown = append(r.Unknown, n.PhoneNumberID)
		}
	}
	if in.numbersErr != nil {
		r.NumbersError = in.numbersErr.Error()
	}
	// A pending version without a key never reached Meta; otherwise every
	// number must have been read and none may hold it.
	noKey := in.keys.Pending == nil && strings.HasPrefix(p.Problem, problemNoValue)
	r.SafeToRemovePending = noKey || (in.keys.Pending != nil && in.numbersErr == nil && len(r.HoldingPending) == 0 && len(r.Unknown) == 0)
	r.Message, r.Advice = o.advice(in, r)
	return r, nil
}

func (o *Operator) advice(in *inspection, r *RotateReport) (string, []string) {
	arn, p := in.secret.ARN, r.PendingVersionID
	msg := fmt.Sprintf("not started: a previous rotation is incomplete (AWSPENDING is on version %s, AWSCURRENT on %s)", p, r.CurrentVersionID)
	stillRunning := "If that rotation started in the last few minutes it may still be running: run {\"command\":\"status\"} again shortly; it is done when versions.AWSCURRENT.version_id is " + p + "."
	// No "&&" in the commands: the Lambda runtime's JSON encoding would
	// print it as \u0026 and break copy and paste.
	steps := []string{rotation.StepSet, rotation.StepTest, rotation.StepFinish}
	if in.keys.Pending == nil {
		steps = append([]string{rotation.StepCreate}, steps...)
	}
	var invokes []string
	for _, s := range steps {
		invokes = append(invokes, fmt.Sprintf(`aws lambda invoke --function-name %s --cli-binary-format raw-in-base64-out --payload '{"Step":"%s","SecretId":"%s","ClientRequestToken":"%s"}' out.json`,
			o.opts.FunctionName, s, arn, p))
	}
	cause := "Find and fix the cause: the Graph errors in numbers[] here, and the rotator's log lines \"step failed\" for version " + p + "."
	wait := "Then either wait: Secrets Manager reattempts the incomplete rotation itself; watch with {\"command\":\"status\"}."
	byHand := "Or finish it by hand with its token, one step after the other, each leaving null in out.json: " + strings.Join(invokes, " ; then ") + "."
	after := "Afterwards {\"command\":\"status\"} must show every number matching AWSCURRENT; {\"command\":\"rotate\"} then works again."
	remove := fmt.Sprintf("aws secretsmanager update-secret-version-stage --secret-id %s --version-stage AWSPENDING --remove-from-version-id %s", arn, p)

	if r.SafeToRemovePending {
		why := "no phone number holds the pending key (every number was read)"
		if in.keys.Pending == nil {
			why = "the pending version holds no key, so Meta cannot hold it"
		}
		return msg + "; " + why + ", so clearing it strands nothing", []string{
			stillRunning,
			"To abandon it: make sure no rotation step is running now (the rotator's last log line for version " + p + " is \"step failed\", or no step ran for 15 minutes), so that none uploads the pending key while you clear it.",
			"Remove the label: " + remove,
			"Then start a new rotation: {\"command\":\"rotate\"}.",
			"To keep it instead: " + cause + " " + wait,
			byHand,
		}
	}

	var who []string
	if len(r.HoldingPending) > 0 {
		who = append(who, fmt.Sprintf("phone numbers %s hold its key", strings.Join(r.HoldingPending, ", ")))
	}
	if len(r.Unknown) > 0 {
		who = append(who, fmt.Sprintf("phone numbers %s could not be read and may hold it", strings.Join(r.Unknown, ", ")))
	}
	if r.NumbersError != "" {
		who = append(who, "the phone numbers could not be read at all ("+r.NumbersError+") and may hold it")
	}
	if in.keys.Pending == nil && !strings.HasPrefix(in.versions.Pending.Problem, problemNoValue) {
		who = append(who, "the pending version cannot be read ("+in.versions.Pending.Problem+"), so which numbers hold its key is unknown")
	}
	dont := fmt.Sprintf("Do NOT remove AWSPENDING from version %s: %s, and its private key is stored only in that version. "+
		"Without the label nothing keeps that version, and Flows requests encrypted for its key could no longer be decrypted.", p, strings.Join(who, "; "))
	return msg + "; " + strings.Join(who, "; ") + ": complete that rotation, do not abandon it", []string{
		dont,
		stillRunning,
		cause,
		wait,
		byHand,
		after,
	}
}
