package rotation

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/keystate"
)

// markVerified moves VerifiedStage to the pending version. testSecret calls
// it only after every number passed a verification that began in the same
// step, so after any change at Meta that an upload or rollback for the
// version made (each clears the label first). finishSecret checks for it.
func (r *Rotator) markVerified(ctx context.Context, inv *invocation) error {
	token := inv.ev.ClientRequestToken
	holder := inv.secret.VersionWith(VerifiedStage)
	if holder == token {
		return nil
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(inv.secret.ARN),
		VersionStage:    aws.String(VerifiedStage),
		MoveToVersionId: aws.String(token),
	}
	if holder != "" {
		in.RemoveFromVersionId = aws.String(holder)
	}
	sctx, cancel := r.awsCtx(ctx)
	defer cancel()
	if _, err := r.sm.UpdateSecretVersionStage(sctx, in); err != nil {
		return awsError(fmt.Sprintf("label version %s %s", token, VerifiedStage), err)
	}
	return nil
}

// clearVerified takes VerifiedStage off the step's version before an upload
// or rollback for it changes what Meta holds.
func (r *Rotator) clearVerified(ctx context.Context, inv *invocation) error {
	if err := r.Unverify(ctx, inv.secret, inv.ev.ClientRequestToken); err != nil {
		return err
	}
	inv.secret.Stages[inv.ev.ClientRequestToken] = slices.DeleteFunc(slices.Clone(inv.secret.Stages[inv.ev.ClientRequestToken]),
		func(l string) bool { return l == VerifiedStage })
	return nil
}

// Unverify removes VerifiedStage from version, if sec (as just described)
// shows it there, so that finishSecret refuses the version until testSecret
// verifies it again. Whoever changes what Meta holds while version is
// AWSPENDING calls it first: the steps for their own uploads and
// rollbacks, the operator's resync before it writes during a rotation.
func (r *Rotator) Unverify(ctx context.Context, sec *keystate.Secret, version string) error {
	if !slices.Contains(sec.Stages[version], VerifiedStage) {
		return nil
	}
	sctx, cancel := r.awsCtx(ctx)
	defer cancel()
	if _, err := r.sm.UpdateSecretVersionStage(sctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(sec.ARN),
		VersionStage:        aws.String(VerifiedStage),
		RemoveFromVersionId: aws.String(version),
	}); err != nil {
		return awsError(fmt.Sprintf("remove %s from version %s before changing what Meta holds", VerifiedStage, version), err)
	}
	return nil
}
