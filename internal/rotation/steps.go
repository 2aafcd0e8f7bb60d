package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// createSecret stores a new key as AWSPENDING, in the custody the
// configuration names, carrying the configuration over from AWSCURRENT. A
// version that already has a value is kept, so a repeated step never
// replaces a key Meta may already hold; a KMS custody key is found again,
// never made twice (internal/custody).
func (r *Rotator) createSecret(ctx context.Context, inv *invocation) error {
	arn, token := inv.secret.ARN, inv.ev.ClientRequestToken
	current, err := r.state.Load(ctx, arn, "", StageCurrent)
	if err != nil {
		return err
	}
	if done, err := r.pendingExists(ctx, arn, token); done || err != nil {
		if done {
			inv.log.Info("pending version already holds a key", "reason", "repeated createSecret")
		}
		return err
	}

	key, err := r.newKey(ctx, inv, current.Config)
	if err != nil {
		return err
	}
	doc := &secretdoc.Document{
		SchemaVersion: secretdoc.SchemaVersion,
		Config:        current.Config,
		Key:           key,
	}
	body, err := doc.Marshal()
	if err != nil {
		return fmt.Errorf("encode pending version: %w", err)
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn),
		// Never nil: the SDK would fill in a random token, and the value
		// would land on a version that is not the rotation's.
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(string(body)),
		VersionStages:      []string{StagePending},
	}
	if inv.ev.RotationToken != "" {
		in.RotationToken = aws.String(inv.ev.RotationToken)
	}
	pctx, cancel := r.awsCtx(ctx)
	_, err = r.sm.PutSecretValue(pctx, in)
	cancel()
	if err != nil {
		var exists *types.ResourceExistsException
		if errors.As(err, &exists) {
			// A concurrent createSecret stored its own pair under this token
			// first. Use that one: it is the one any later step will read.
			if done, rerr := r.pendingExists(ctx, arn, token); done {
				inv.log.Info("pending version was stored concurrently", "reason", "ResourceExistsException")
				return nil
			} else if rerr != nil {
				return rerr
			}
		}
		return awsError("store pending version", err)
	}
	inv.log.Info("pending key stored", "fingerprint", key.FingerprintSHA256[:16], "generated_by", key.GeneratedBy)
	return nil
}

// newKey makes the pending version's key in the custody cfg names.
func (r *Rotator) newKey(ctx context.Context, inv *invocation, cfg secretdoc.Config) (*secretdoc.Key, error) {
	if cfg.Custody() == secretdoc.CustodyKMS {
		return r.newKMSKey(ctx, inv)
	}
	gctx, cancel := r.awsCtx(ctx)
	gen, err := r.keys.Generate(gctx, inv.secret.ARN)
	cancel()
	if err != nil {
		return nil, awsError("generate key pair", err)
	}
	return secretdoc.NewKey(gen, r.opts.Now().UTC()), nil
}

// pendingExists reports whether the token's AWSPENDING version holds a
// valid document with a key.
func (r *Rotator) pendingExists(ctx context.Context, arn, token string) (bool, error) {
	doc, err := r.state.Load(ctx, arn, token, StagePending)
	switch {
	case isNotFound(err):
		// Secrets Manager staged AWSPENDING on an empty version.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w; fix: remove the AWSPENDING label from version %s and start a new rotation", err, token)
	case doc.Key == nil:
		return false, &GuardError{arn, token, "the AWSPENDING version holds no key",
			"remove the AWSPENDING label from this version and start a new rotation"}
	}
	return true, nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// pair is the pending and current documents of one rotation.
type pair struct {
	pending, current *secretdoc.Document
}

// verifyOnly is the RotateImmediately=false case: Secrets Manager copied
// the current value to AWSPENDING and runs testSecret alone.
func (p pair) verifyOnly() bool {
	if p.pending.Key == nil {
		return true
	}
	return p.current.Key != nil && p.current.Key.FingerprintSHA256 == p.pending.Key.FingerprintSHA256
}

func (r *Rotator) loadPair(ctx context.Context, inv *invocation) (pair, error) {
	pending, err := r.state.Load(ctx, inv.secret.ARN, inv.ev.ClientRequestToken, StagePending)
	if err != nil {
		return pair{}, &loadError{stage: StagePending, err: err}
	}
	current, err := r.state.Load(ctx, inv.secret.ARN, "", StageCurrent)
	if err != nil {
		return pair{}, &loadError{stage: StageCurrent, err: err}
	}
	return pair{pending: pending, current: current}, nil
}

// reach resolves what a step needs to talk to Meta for cfg: the Graph
// auth (the token is read once per step) and the phone numbers. When only
// the numbers fail, auth comes with the error, so that it can name the
// token secret.
func (r *Rotator) reach(ctx context.Context, inv *invocation, cfg secretdoc.Config) (graph.Auth, []string, error) {
	auth, err := r.state.Auth(ctx, cfg)
	if err != nil {
		return graph.Auth{}, nil, err
	}
	numbers, err := r.phoneNumbers(ctx, inv, auth, cfg)
	if err != nil {
		return auth, nil, err
	}
	return auth, numbers, nil
}

// phoneNumbers resolves the numbers a rotation covers: the configured list,
// or the WABA's numbers narrowed by the include and exclude lists. Unlike
// a status, a step refuses a WABA with nothing left to write to.
func (r *Rotator) phoneNumbers(ctx context.Context, inv *invocation, auth graph.Auth, cfg secretdoc.Config) ([]string, error) {
	n, err := r.state.ResolveNumbers(ctx, auth, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.WABAID == "" {
		return n.IDs, nil
	}
	inv.log.Info("phone numbers discovered", "waba_id", cfg.WABAID, "listed", n.Listed, "selected", len(n.IDs), "gone", len(n.Gone))
	if len(n.IDs) == 0 {
		return nil, &noNumbersError{wabaID: cfg.WABAID, err: &InputError{Field: "config.waba_id",
			Problem: fmt.Sprintf("WABA %s has no phone numbers left after the include and exclude lists", cfg.WABAID),
			Fix:     "check the WABA ID and the include_phone_number_ids/exclude_phone_number_ids lists"}}
	}
	return n.IDs, nil
}

// setSecret uploads the pending public key to every phone number. If any
// number still fails after retries, it puts the current key back on the
// numbers this attempt may have switched and fails with a per-number report.
func (r *Rotator) setSecret(ctx context.Context, inv *invocation) (stepStats, error) {
	p, err := r.loadPair(ctx, inv)
	if err != nil {
		return stepStats{}, err
	}
	if p.verifyOnly() {
		inv.log.Info("nothing to upload", "reason", "the pending version holds the current key")
		return stepStats{}, nil
	}
	// A KMS-held key that cannot decrypt is never handed to Meta: clients
	// would encrypt to a key nobody can use until testSecret rolls back.
	if err := r.checkKMSKey(ctx, inv.secret.ARN, p.pending.Key); err != nil {
		return stepStats{}, fmt.Errorf("the AWSPENDING key cannot decrypt, so nothing was uploaded: %w", err)
	}
	auth, numbers, err := r.reach(ctx, inv, p.pending.Config)
	if err != nil {
		return stepStats{}, err
	}
	// What testSecret proved stops being true with the first upload.
	if err := r.clearVerified(ctx, inv); err != nil {
		return stepStats{}, err
	}
	// The PEM comes from the version just read back from AWSPENDING, so
	// Meta never receives a key whose private half is not stored. The
	// uploads end where the rollback's share of the time begins.
	uctx, cancel := until(ctx, r.budget(ctx).work)
	results := r.upload(uctx, inv, auth, numbers, p.pending.Key.PublicKeyPEM, "upload")
	cancel()
	failed := failures(results)
	st := stepStats{uploaded: len(results) - len(failed), failed: len(failed)}
	if len(failed) == 0 {
		return st, nil
	}
	return st, r.rollback(ctx, inv, auth, p, StepSet, len(results), failed, switchedOrUnknown(results))
}

// testSecret proves that every number holds exactly the pending key with
// status VALID, and that the pending private key decrypts what a WhatsApp
// client would encrypt with the key Meta returned. On failure it rolls back
// as setSecret does. When the pending version holds the current key
// (RotateImmediately=false) it verifies the current registration and
// uploads nothing. Every failure that rolled nothing back is a
// *DeployCheckError, worded for the deploy that ran it.
func (r *Rotator) testSecret(ctx context.Context, inv *invocation) (stepStats, error) {
	check := deployCheck{secret: inv.secret.ARN}
	p, err := r.loadPair(ctx, inv)
	if err != nil {
		return stepStats{}, check.wrap(err)
	}
	auth, numbers, err := r.reach(ctx, inv, p.pending.Config)
	check.tokenSecret = auth.TokenSecret
	if err != nil {
		return stepStats{}, check.wrap(err)
	}
	want := p.pending.Key
	if p.verifyOnly() {
		want = p.current.Key
	}
	var results []NumberResult
	switch kerr := r.checkKMSKey(ctx, inv.secret.ARN, want); {
	case want == nil:
		// A configuration-only secret (as deployed, before its first
		// rotation): there is no key to check yet, so prove what the first
		// rotation needs, that the token can read every number.
		results = r.checkAccess(ctx, inv, auth, numbers)
	case kerr != nil:
		// A KMS-held key that cannot decrypt fails every number at once;
		// what follows is a failed verification's (the rollback).
		inv.log.Error("KMS custody key cannot decrypt", "key_arn", want.KMSKeyARN, "error", kerr.Error())
		for _, id := range numbers {
			results = append(results, NumberResult{PhoneNumberID: id, Err: fmt.Errorf("the key cannot decrypt: %w", kerr)})
		}
	default:
		results = r.verify(ctx, inv, auth, numbers, want)
	}
	failed := failures(results)
	st := stepStats{verified: len(results) - len(failed), failed: len(failed)}
	if len(failed) > 0 {
		if p.verifyOnly() {
			return st, check.wrap(&StepError{Step: StepTest, Secret: inv.secret.ARN, Token: inv.ev.ClientRequestToken, Total: len(results), Failed: failed,
				Note: "verification only (the pending version holds the current key); nothing was uploaded or rolled back"})
		}
		// The verification failed, and the rollback changes Meta: the
		// label goes first, or nothing changes.
		if err := r.clearVerified(ctx, inv); err != nil {
			return st, &StepError{Step: StepTest, Secret: inv.secret.ARN, Token: inv.ev.ClientRequestToken, Total: len(results), Failed: failed,
				Note: "nothing was rolled back, because " + err.Error()}
		}
		return st, r.rollback(ctx, inv, auth, p, StepTest, len(results), failed, numbers)
	}
	if !p.verifyOnly() {
		if err := r.markVerified(ctx, inv); err != nil {
			return st, err
		}
	}
	return st, nil
}

// finishSecret makes the pending version AWSCURRENT, then removes
// AWSPENDING from it (see "AWSPENDING after a rotation" in the package
// documentation). Secrets Manager moves AWSPREVIOUS to the old version.
func (r *Rotator) finishSecret(ctx context.Context, inv *invocation) error {
	token := inv.ev.ClientRequestToken
	if !slices.Contains(inv.secret.Stages[token], VerifiedStage) {
		// Promoting an unverified key could leave numbers on a key that
		// only AWSPREVIOUS holds: the invariant forbids it.
		return &GuardError{inv.secret.ARN, token, "testSecret has not verified this version on every phone number since the last upload or rollback for it",
			"run testSecret for this version first (it labels the version " + VerifiedStage + ")"}
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(inv.secret.ARN),
		VersionStage:    aws.String(StageCurrent),
		MoveToVersionId: aws.String(token),
	}
	if cur := inv.secret.VersionWith(StageCurrent); cur != "" {
		in.RemoveFromVersionId = aws.String(cur)
	}
	sctx, cancel := r.awsCtx(ctx)
	_, err := r.sm.UpdateSecretVersionStage(sctx, in)
	cancel()
	if err != nil {
		return awsError("move AWSCURRENT to version "+token, err)
	}
	inv.log.Info("pending version promoted", "previous_version", aws.ToString(in.RemoveFromVersionId))
	return r.afterPromotion(ctx, inv)
}

// afterPromotion ends a finishSecret whose version is AWSCURRENT: it drops
// AWSPENDING, then retires the custody keys no labelled version names.
func (r *Rotator) afterPromotion(ctx context.Context, inv *invocation) error {
	if err := r.dropPending(ctx, inv); err != nil {
		return err
	}
	r.retireKeys(ctx, inv)
	return nil
}

// dropPending removes AWSPENDING from the token's version once it is
// AWSCURRENT: the first finishSecret does it after the promotion, and a
// repeated one (the version already current) finishes it after a crash
// between the two.
func (r *Rotator) dropPending(ctx context.Context, inv *invocation) error {
	token := inv.ev.ClientRequestToken
	sctx, cancel := r.awsCtx(ctx)
	defer cancel()
	if _, err := r.sm.UpdateSecretVersionStage(sctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(inv.secret.ARN),
		VersionStage:        aws.String(StagePending),
		RemoveFromVersionId: aws.String(token),
	}); err != nil {
		return awsError("remove AWSPENDING from version "+token+", now AWSCURRENT", fmt.Errorf("%w; fix: run finishSecret for this version again", err))
	}
	inv.log.Info("AWSPENDING removed from the current version")
	return nil
}
