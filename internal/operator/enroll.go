package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Outcomes of enroll and unenroll besides OutcomeDryRun and OutcomeRefused.
const (
	OutcomeEnrolled          = "enrolled"           // rotation is on now, with the fleet's function, schedule and window
	OutcomeAlreadyEnrolled   = "already_enrolled"   // nothing to do: the same configuration, rotation on
	OutcomeUnenrolled        = "unenrolled"         // rotation is off now; every version kept
	OutcomeAlreadyUnenrolled = "already_unenrolled" // nothing to do
)

// EnrollReport is the result of the enroll command.
type EnrollReport struct {
	Command string `json:"command"` // "enroll"
	// OK is true when the tenant is enrolled (for a dry run: would be).
	OK         bool   `json:"ok"`
	Outcome    string `json:"outcome"`
	DryRun     bool   `json:"dry_run"`
	Tenant     string `json:"tenant"`
	SecretName string `json:"secret_name"`
	SecretARN  string `json:"secret_arn,omitempty"`
	// VersionID is the first version's ID, derived from the fleet, the
	// tenant and the configuration.
	VersionID string `json:"version_id"`
	// Schedule and Window are the tenant's rotation rules; NextWindow is
	// when its first scheduled rotation may start.
	Schedule          string           `json:"schedule"`
	Window            string           `json:"window"`
	NextWindow        time.Time        `json:"next_window_start"`
	RotationLambdaARN string           `json:"rotation_lambda_arn"`
	Config            secretdoc.Config `json:"config"`
	// Numbers are the phone numbers the configuration resolves to now.
	Numbers []string `json:"phone_number_ids"`
	Message string   `json:"message"`
}

// UnenrollReport is the result of the unenroll command.
type UnenrollReport struct {
	Command   string `json:"command"` // "unenroll"
	OK        bool   `json:"ok"`
	Outcome   string `json:"outcome"`
	DryRun    bool   `json:"dry_run"`
	Tenant    string `json:"tenant"`
	SecretARN string `json:"secret_arn,omitempty"`
	// Fingerprint is the AWSCURRENT key, the one Meta keeps holding.
	Fingerprint string `json:"fingerprint_sha256,omitempty"`
	Message     string `json:"message"`
}

// enroll creates the tenant's configuration-only secret, tagged for the
// fleet, and turns its rotation on (see "Fleet mode" in the package
// documentation).
func (o *Operator) enroll(ctx context.Context, log *slog.Logger, tenant, raw string, dryRun bool) (*EnrollReport, error) {
	f := o.opts.Fleet
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	if err := o.checkTenantConfig(cfg); err != nil {
		return nil, err
	}
	fn, err := o.functionARN(ctx)
	if err != nil {
		return nil, err
	}
	canonical, _ := json.Marshal(cfg) // a struct of strings: cannot fail
	sched := fleet.ScheduleFor(f.Name, tenant, f.Window)
	r := &EnrollReport{Command: CommandEnroll, DryRun: dryRun, Tenant: tenant, SecretName: fleet.SecretName(f.SecretPrefix, tenant),
		VersionID: fleet.EnrollToken(f.Name, tenant, string(canonical)), Schedule: sched.Expression(), Window: sched.Duration(),
		NextWindow: sched.Next(o.opts.Now()), RotationLambdaARN: fn, Config: cfg, Numbers: []string{}}
	// The token can be read and the numbers resolved: what Secrets
	// Manager's configuration test checks too, but it runs after the
	// command returns, and this answer is the one a script reads.
	auth, err := o.state.Auth(ctx, cfg)
	if err != nil {
		return nil, withFix(err, "store the tenant's Graph token in the secret the configuration names (or the function's ACCESS_TOKEN_SECRET_ID), then enroll again")
	}
	nums, err := o.state.ResolveNumbers(ctx, auth, cfg)
	if err != nil {
		return nil, withFix(err, "check config.waba_id and that the token may list its numbers, then enroll again")
	}
	r.Numbers = append(r.Numbers, nums.IDs...)
	if len(nums.IDs) == 0 {
		r.Outcome = OutcomeRefused
		r.Message = fmt.Sprintf("nothing written: WABA %s has no phone numbers left after the include and exclude lists, so every rotation would fail; fix: check config.waba_id and the lists", cfg.WABAID)
		return r, nil
	}
	sec, exists, err := o.describeTenant(ctx, r.SecretName)
	if err != nil {
		return nil, err
	}
	if exists {
		return o.enrollExisting(ctx, log, sec, r)
	}
	if dryRun {
		r.OK, r.Outcome = true, OutcomeDryRun
		r.Message = fmt.Sprintf("dry run: would create %s (version %s, configuration only, tagged %s=%s and %s=%s), then turn its rotation on with %s, %s and a %s window. Nothing was written",
			r.SecretName, r.VersionID, fleet.TagFleet, f.Name, fleet.TagTenant, tenant, fn, r.Schedule, r.Window)
		return r, nil
	}
	if err := o.createTenant(ctx, r); err != nil {
		var exists *types.ResourceExistsException
		if !errors.As(err, &exists) {
			return nil, err
		}
		// Another enroll of the same tenant created it first.
		if sec, _, err = o.describeTenant(ctx, r.SecretName); err != nil || sec == nil {
			return nil, fmt.Errorf("enroll %s: the secret was created meanwhile and cannot be read: %v", r.SecretName, err)
		}
		return o.enrollExisting(ctx, log, sec, r)
	}
	log.Info("tenant secret created", "secret_arn", r.SecretARN, "version_id", r.VersionID)
	if err := o.turnOn(ctx, r); err != nil {
		return nil, err
	}
	log.Info("tenant enrolled", "secret_arn", r.SecretARN, "schedule", r.Schedule)
	r.OK, r.Outcome = true, OutcomeEnrolled
	r.Message = o.enrolledMessage(r, "created "+r.SecretName+" (configuration only) and turned its rotation on")
	return r, nil
}

// withFix adds fix to an error that names none.
func withFix(err error, fix string) error {
	if strings.Contains(err.Error(), "fix:") {
		return err
	}
	return fmt.Errorf("%w; fix: %s", err, fix)
}

func (o *Operator) createTenant(ctx context.Context, r *EnrollReport) error {
	f := o.opts.Fleet
	body, err := (&secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: r.Config}).Marshal()
	if err != nil {
		return fmt.Errorf("encode the tenant's first version: %w", err)
	}
	in := &secretsmanager.CreateSecretInput{
		Name:               aws.String(r.SecretName),
		ClientRequestToken: aws.String(r.VersionID),
		SecretString:       aws.String(string(body)),
		Description:        aws.String("flowkey: the WhatsApp Flows key of tenant " + r.Tenant + " of fleet " + f.Name),
		Tags: []types.Tag{
			{Key: aws.String(fleet.TagFleet), Value: aws.String(f.Name)},
			{Key: aws.String(fleet.TagTenant), Value: aws.String(r.Tenant)},
			{Key: aws.String(fleet.TagEnrolled), Value: aws.String("true")},
		},
	}
	if f.KMSKeyID != "" {
		in.KmsKeyId = aws.String(f.KMSKeyID)
	}
	out, err := o.sm.CreateSecret(ctx, in)
	if err != nil {
		var exists *types.ResourceExistsException
		if errors.As(err, &exists) {
			return err
		}
		return fmt.Errorf("create-secret %s: %w; fix: check that the rotator may call secretsmanager:CreateSecret and secretsmanager:TagResource on %s* with the tag %s=%s, "+
			"and use the fleet's KMS key (kms:GenerateDataKey through Secrets Manager)", r.SecretName, err, f.SecretPrefix, fleet.TagFleet, f.Name)
	}
	r.SecretARN = aws.ToString(out.ARN)
	return nil
}

// enrollExisting handles a tenant whose secret exists: the same
// configuration with rotation on is done; rotation off (unenrolled, or a
// first enroll that stopped after CreateSecret) is turned on again; any
// other configuration is set-config's to change.
func (o *Operator) enrollExisting(ctx context.Context, log *slog.Logger, sec *keystate.Secret, r *EnrollReport) (*EnrollReport, error) {
	r.SecretARN = sec.ARN
	refuse := func(msg string) (*EnrollReport, error) {
		r.Outcome, r.Message = OutcomeRefused, "nothing written: "+msg
		log.Warn("enroll refused", "reason", msg)
		return r, nil
	}
	if !sec.Deleted.IsZero() {
		return nil, &rotation.InputError{Field: "tenant", Problem: fmt.Sprintf("%q: its secret %s is scheduled for deletion (since %s)", r.Tenant, sec.ARN, sec.Deleted.UTC().Format(time.RFC3339)),
			Fix: "restore it with `aws secretsmanager restore-secret --secret-id " + sec.ARN + "`, then enroll again"}
	}
	if why := o.notInFleet(sec); why != "" {
		return refuse(why + "; choose another tenant ID")
	}
	cur, err := o.state.Load(ctx, sec.ARN, "", rotation.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read the tenant's AWSCURRENT version: %w", err)
	}
	if !sameConfig(cur.Config, r.Config) {
		return refuse(fmt.Sprintf("tenant %s is enrolled with another configuration; change it with {\"command\":\"set-config\",\"tenant\":%q,\"config\":{...}}, then send enroll again if its rotation is off", r.Tenant, r.Tenant))
	}
	if p, c := sec.VersionWith(rotation.StagePending), sec.VersionWith(rotation.StageCurrent); p != "" && p != c {
		return refuse(fmt.Sprintf("a rotation of tenant %s is incomplete (AWSPENDING on version %s); finish it with {\"command\":\"rotate\",\"tenant\":%q}, which turns rotation back on", r.Tenant, p, r.Tenant))
	}
	on := sec.RotationEnabled && sec.RotationLambdaARN == r.RotationLambdaARN && sec.Schedule == r.Schedule && sec.Window == r.Window && sec.Tags[fleet.TagEnrolled] != "false"
	switch {
	case on:
		r.OK, r.Outcome = true, OutcomeAlreadyEnrolled
		r.Message = o.enrolledMessage(r, "tenant "+r.Tenant+" is already enrolled with this configuration; nothing was written")
		return r, nil
	case r.DryRun:
		r.OK, r.Outcome = true, OutcomeDryRun
		r.Message = fmt.Sprintf("dry run: %s exists with this configuration; would turn its rotation on with %s, %s and a %s window. Nothing was written", sec.ARN, r.RotationLambdaARN, r.Schedule, r.Window)
		return r, nil
	}
	if err := o.turnOn(ctx, r); err != nil {
		return nil, err
	}
	log.Info("tenant enrolled", "secret_arn", r.SecretARN, "schedule", r.Schedule, "existing", true)
	r.OK, r.Outcome = true, OutcomeEnrolled
	r.Message = o.enrolledMessage(r, "turned the rotation of "+r.SecretName+" on (every version it had is kept)")
	return r, nil
}

// turnOn tags the tenant enrolled, then sets its rotation: this function,
// the tenant's schedule and window, and RotateImmediately false, with which
// Secrets Manager runs only testSecret (the deploy check of the tenant's
// token and numbers) now. A retry after a stop between the two finishes.
func (o *Operator) turnOn(ctx context.Context, r *EnrollReport) error {
	f := o.opts.Fleet
	if _, err := o.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(r.SecretARN), Tags: []types.Tag{
		{Key: aws.String(fleet.TagFleet), Value: aws.String(f.Name)},
		{Key: aws.String(fleet.TagEnrolled), Value: aws.String("true")},
	}}); err != nil {
		return fmt.Errorf("tag %s enrolled: %w; fix: send enroll again", r.SecretARN, err)
	}
	if _, err := o.sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(r.SecretARN),
		RotationLambdaARN: aws.String(r.RotationLambdaARN),
		RotationRules:     &types.RotationRulesType{ScheduleExpression: aws.String(r.Schedule), Duration: aws.String(r.Window)},
		RotateImmediately: aws.Bool(false),
	}); err != nil {
		return fmt.Errorf("rotate-secret %s (turning rotation on): %w; the secret exists, fix: check that the rotator may call secretsmanager:RotateSecret on it and lambda:InvokeFunction on %s, "+
			"and that the function's resource policy lets secretsmanager.amazonaws.com invoke it for %s*, then send enroll again", r.SecretARN, err, r.RotationLambdaARN, f.SecretPrefix)
	}
	return nil
}

func (o *Operator) enrolledMessage(r *EnrollReport, done string) string {
	return fmt.Sprintf("%s: %s with a %s window (the first at %s), rotated by %s. Secrets Manager now runs testSecret alone to check the token and every number "+
		"(see the rotator's log). The tenant has no key until its first rotation: start it now with {\"command\":\"rotate\",\"tenant\":%q}, and watch with {\"command\":\"status\",\"tenant\":%q}",
		done, r.Schedule, r.Window, r.NextWindow.Format(time.RFC3339), r.RotationLambdaARN, r.Tenant, r.Tenant)
}

// unenroll turns the tenant's rotation off and keeps every version, so that
// the key Meta holds keeps its private half (see "Fleet mode" in the
// package documentation).
func (o *Operator) unenroll(ctx context.Context, log *slog.Logger, tenant string, dryRun bool) (*UnenrollReport, error) {
	name := fleet.SecretName(o.opts.Fleet.SecretPrefix, tenant)
	r := &UnenrollReport{Command: CommandUnenroll, DryRun: dryRun, Tenant: tenant}
	sec, ok, err := o.describeTenant(ctx, name)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, &rotation.InputError{Field: "tenant", Problem: fmt.Sprintf("%q has no secret %s", tenant, name), Fix: "check the tenant ID"}
	}
	r.SecretARN = sec.ARN
	if why := o.notInFleet(sec); why != "" {
		r.Outcome, r.Message = OutcomeRefused, "nothing written: "+why
		return r, nil
	}
	in, err := o.readVersions(ctx, sec)
	if err != nil {
		return nil, err
	}
	r.Fingerprint = in.versions.Current.Fingerprint
	if in.inProgress {
		r.Outcome = OutcomeRefused
		r.Message = fmt.Sprintf("nothing written: a rotation of tenant %s is incomplete (AWSPENDING on version %s, whose key Meta may hold). Turning rotation off now would leave that key "+
			"without Secrets Manager's retries; finish it first with {\"command\":\"rotate\",\"tenant\":%q}, then send unenroll again", tenant, in.versions.Pending.VersionID, tenant)
		log.Warn("unenroll refused", "reason", "rotation incomplete", "pending_version", in.versions.Pending.VersionID)
		return r, nil
	}
	tagged := sec.Tags[fleet.TagEnrolled] == "false"
	keeps := "Meta keeps holding the AWSCURRENT key " + short(r.Fingerprint) + ", whose private key stays in the secret with every other version; the endpoint keeps decrypting for the tenant " +
		"while the secret exists. Re-enroll with the same configuration to rotate again; delete the secret by hand only once the tenant's Flows no longer use this endpoint"
	if r.Fingerprint == "" {
		keeps = "The tenant never had a key, so Meta holds none of flowkey's; re-enroll with the same configuration to rotate again"
	}
	switch {
	case !sec.RotationEnabled && tagged:
		r.OK, r.Outcome = true, OutcomeAlreadyUnenrolled
		r.Message = "tenant " + tenant + " is already unenrolled (rotation off); nothing was written. " + keeps
		return r, nil
	case dryRun:
		r.OK, r.Outcome = true, OutcomeDryRun
		r.Message = "dry run: would turn the rotation of " + sec.ARN + " off and tag it " + fleet.TagEnrolled + "=false, keeping every version. Nothing was written. " + keeps
		return r, nil
	}
	if sec.RotationEnabled {
		if _, err := o.sm.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(sec.ARN)}); err != nil {
			return nil, fmt.Errorf("cancel-rotate-secret %s: %w; fix: check that the rotator may call secretsmanager:CancelRotateSecret on it, then send unenroll again", sec.ARN, err)
		}
	}
	if _, err := o.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(sec.ARN), Tags: []types.Tag{
		{Key: aws.String(fleet.TagFleet), Value: aws.String(o.opts.Fleet.Name)},
		{Key: aws.String(fleet.TagEnrolled), Value: aws.String("false")},
	}}); err != nil {
		return nil, fmt.Errorf("tag %s unenrolled (its rotation is off already): %w; fix: send unenroll again", sec.ARN, err)
	}
	// A scheduled rotation that started between the read and the cancel
	// keeps its pending key; only rotate can finish it now.
	if after, err := o.state.Describe(ctx, sec.ARN); err == nil {
		if p, c := after.VersionWith(rotation.StagePending), after.VersionWith(rotation.StageCurrent); p != "" && p != c {
			r.Outcome = OutcomeRefused
			r.Message = fmt.Sprintf("rotation is off, but a rotation started just before (AWSPENDING on version %s): finish it with {\"command\":\"rotate\",\"tenant\":%q}, "+
				"which turns rotation back on, then send unenroll again. Never remove AWSPENDING by hand", p, tenant)
			log.Warn("unenroll raced a rotation", "pending_version", p)
			return r, nil
		}
	}
	log.Info("tenant unenrolled", "secret_arn", sec.ARN)
	r.OK, r.Outcome = true, OutcomeUnenrolled
	r.Message = "turned the rotation of " + sec.ARN + " off and tagged it " + fleet.TagEnrolled + "=false; every version is kept. " + strings.TrimSpace(keeps)
	return r, nil
}
