package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/rotation"
)

// clearAndStart removes AWSPENDING from a pending version that holds no
// usable key (no value, a document without a key, or the AWSCURRENT key),
// then starts a new rotation. flowkey never uploads from such a version, so
// no number can hold a key only it stores.
//
// A createSecret of that rotation may be running still, and store a key
// between the read that found none and the removal. So the version is read
// again after the removal, and AWSPENDING goes back on it if a key has
// appeared: a setSecret could only upload a key it read as AWSPENDING,
// which that read then finds too. The rotation is then resumed instead.
func (o *Operator) clearAndStart(ctx context.Context, log *slog.Logger, in *inspection) (*RotateReport, error) {
	arn, p := in.secret.ARN, in.versions.Pending.VersionID
	label := func(in *secretsmanager.UpdateSecretVersionStageInput) error {
		_, err := o.sm.UpdateSecretVersionStage(ctx, in)
		return err
	}
	if err := label(&secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(p),
	}); err != nil {
		return nil, fmt.Errorf("remove AWSPENDING from version %s, which holds no usable key: %w; fix: check that the function may call secretsmanager:UpdateSecretVersionStage", p, err)
	}
	doc, err := o.state.Load(ctx, arn, p, "")
	if isNotFound(err) || err == nil && (doc.Key == nil || in.keys.Current != nil && doc.Key.FingerprintSHA256 == in.keys.Current.FingerprintSHA256) {
		log.Info("incomplete rotation cleared", "pending_version", p, "reason", in.noKeyReason())
		r, err := o.start(ctx, log, arn)
		if err != nil {
			return nil, fmt.Errorf("AWSPENDING was removed from version %s (it held no usable key), but no new rotation started: %w", p, err)
		}
		r.ClearedVersionID = p
		r.Message = fmt.Sprintf("cleared the incomplete rotation of version %s (%s, so flowkey never uploaded from it and no number can hold a key only it stores), then %s",
			p, in.noKeyReason(), r.Message)
		return r, nil
	}
	// A key appeared, or the version cannot be read: put the label back.
	if lerr := label(&secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), MoveToVersionId: aws.String(p),
	}); lerr != nil {
		return nil, fmt.Errorf("AWSPENDING was removed from version %s, whose key may now be at Meta, and could not be put back: %w; "+
			"fix: at once, aws secretsmanager update-secret-version-stage --secret-id %s --version-stage AWSPENDING --move-to-version-id %s", p, lerr, arn, p)
	}
	log.Warn("incomplete rotation kept", "pending_version", p, "reason", "a key appeared while clearing it")
	sec, err := o.describe(ctx, arn)
	if err != nil {
		return nil, err
	}
	return o.incomplete(ctx, log, sec, false)
}

// noKeyReason says why the pending version holds no usable key.
func (in *inspection) noKeyReason() string {
	p := in.versions.Pending
	switch {
	case in.holdsCurrentKey():
		return "it holds the AWSCURRENT key, which AWSCURRENT keeps"
	case p.Problem != "":
		return "it has " + p.Problem
	}
	return "it holds a configuration without a key"
}

// unreadable reports a pending version this build cannot read. It may
// hold a key a newer build wrote and uploaded, so it is never cleared.
func (o *Operator) unreadable(ctx context.Context, log *slog.Logger, in *inspection) *RotateReport {
	o.readNumbers(ctx, log, in)
	r := in.incompleteReport()
	r.Outcome = OutcomeBlocked
	p := r.PendingVersionID
	r.Message = fmt.Sprintf("not started: a previous rotation is incomplete (AWSPENDING is on version %s, AWSCURRENT on %s), and its version cannot be read by this build: %s",
		p, r.CurrentVersionID, r.PendingProblem)
	r.Advice = []string{
		fmt.Sprintf("Do NOT remove AWSPENDING from version %s: a newer flowkey build (an unknown schema_version) or a hand-written value may hold a key that is at Meta now, stored only in that version.", p),
		"If a newer flowkey build wrote it, deploy that build again and run {\"command\":\"rotate\"}: it resumes the rotation.",
		fmt.Sprintf("Otherwise compare what Meta holds (numbers[] here) with that version (aws secretsmanager get-secret-value --secret-id %s --version-id %s), "+
			"and finish the rotation with the build that can read it.", in.secret.ARN, p),
	}
	return r
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
