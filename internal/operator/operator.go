// Package operator runs the commands an on-call engineer sends to the
// rotator function: rotate, status, resync and set-config, and with the
// fleet on enroll, unenroll and the fleet status (see "Fleet mode").
//
// # rotate does not wait
//
// rotate calls RotateSecret and returns the new version ID at once. Secrets
// Manager then invokes this same function for createSecret, setSecret,
// testSecret and finishSecret. Waiting for those steps inside the rotate
// invocation would wait on ourselves: the local stack's Lambda emulator runs
// one invocation at a time, so the steps could not start until rotate
// returned (a deadlock until the timeout), and in AWS it would hold a
// concurrent execution, and the caller's terminal, for minutes for nothing.
// Progress is watched with the status command or describe-secret instead.
//
// # rotate finishes an incomplete rotation, never abandons one
//
// If a rotation is already incomplete (AWSPENDING on a version that is not
// AWSCURRENT), what that version holds decides, never a read of Meta: a
// GET cannot prove that a number does not hold a key (reads lag behind
// uploads, and MISMATCH answers with a blank key).
//
//   - It holds a key: the key may be at Meta. rotate never removes
//     AWSPENDING from it and never advises it; it resumes that rotation
//     (RotateSecret with the version's ID as ClientRequestToken), and
//     reports a fresh read of every number and where the rotator logged
//     why it failed. If Secrets Manager refuses to resume it, the report
//     gives the steps to run by hand with that token.
//   - It holds no usable key (no value yet, a configuration without a key,
//     or the AWSCURRENT key): flowkey never uploads from such a version, so
//     rotate removes its AWSPENDING itself and starts a new rotation.
//   - It cannot be read (a schema a newer build wrote, among others): it is
//     reported and left alone.
//
// # Results are payloads, not errors
//
// Each command returns a JSON object with "ok" and "outcome". A blocked
// rotate, a status that is not healthy, a resync that could not repair
// everything and a refused set-config are answers, not failures of the
// function: they come back as payloads with "ok": false. `aws lambda
// invoke` exits 0 even for a function error, so an error would not make a
// script fail either; it would only bury the report in an "errorMessage"
// string and count as a rotation failure on the function's Errors alarm.
// Function errors are kept for commands that could not run: a malformed
// command (an invalid set-config configuration among them), an unreadable
// secret, a Graph token that cannot be read, a WABA that cannot be listed.
//
// # Read-only and write rules
//
// status never writes. A number is "ok" only when Meta answered VALID with
// the AWSCURRENT key (or the rotation's AWSPENDING key); a failed,
// MISMATCH, blank or keyless answer is "unknown", never a version's key,
// and a status is never healthy during an incomplete rotation. For a secret
// in KMS custody it reports every custody key with its state: the keys the
// labelled versions name (a labelled version whose key cannot decrypt,
// being disabled, pending deletion or elsewhere, makes it not healthy) and
// the secret's other keys found through its alias prefix.
//
// resync writes only the public key read back from AWSCURRENT, only to
// numbers that status judges drifted or unknown, and never to a number
// whose GET failed, that holds the key of the rotation in progress, that
// is unknown while a rotation is incomplete, or that is gone. During a
// rotation it first takes the pending version's FLOWKEY_VERIFIED back,
// since its upload makes that verification untrue. Every key it uploads
// has its private key in AWSCURRENT, which keeps the rotation package's
// invariant.
//
// set-config writes a new AWSCURRENT version with the same key and a new
// configuration, validated by the secret document's parser. It refuses
// during an incomplete rotation (a version written then makes Secrets
// Manager abandon the rotation, whose key may be at Meta), keeps AWSPREVIOUS
// on the version with the previous key, and leaves AWSPENDING on no version,
// so the next rotation starts cleanly. Its version ID is derived from the
// current version and the new configuration, so a retry writes nothing new,
// and a set-config that stopped half way is finished by the next one.
//
// # Fleet mode
//
// With the fleet on (Options.Fleet, FLEET_NAME) one function rotates the
// key of every tenant, one WABA each, whose secret is <prefix><tenant>,
// tagged flowkey:fleet and flowkey:tenant (internal/fleet, which also
// spreads the schedules). Every command takes "tenant" instead of
// "secret_id"; a command about a tenant refuses a secret that is missing
// or tagged for another fleet, and the configuration of a tenant (enroll,
// set-config) may name a token secret only under the fleet's token prefix
// (or the function's own ACCESS_TOKEN_SECRET_ID) and an app secret only
// under its app secret prefix, the only secrets the fleet's IAM reaches.
// Without the fleet nothing of this exists and every command behaves as
// before.
//
// enroll validates the configuration as set-config does, reads the token
// and resolves the numbers, then creates the configuration-only secret
// (CreateSecret: the first version's ID is a UUIDv5 of the fleet, the
// tenant and the canonical configuration; the fleet's KMS key; the tags),
// and turns its rotation on: RotateSecret with this function's ARN (the
// invocation's, without a qualifier), the tenant's schedule and window,
// and RotateImmediately false, with which Secrets Manager runs testSecret
// alone, the deploy check of the token and of every number. The tenant has
// no key until its first rotation: the report says to rotate it now. A
// repeated enroll changes nothing: the same configuration with rotation
// on is already enrolled; with rotation off (unenrolled, or an enroll that
// stopped after CreateSecret) it is turned on again; another configuration
// is refused (set-config changes it); a secret scheduled for deletion is
// an error whose fix is restore-secret.
//
// unenroll turns rotation off (CancelRotateSecret), tags the secret
// flowkey:enrolled=false and deletes nothing. What happens to the key Meta
// holds: nothing. Meta keeps the tenant's AWSCURRENT key, whose private
// half stays in the secret with every other version; the endpoint keeps
// decrypting for the tenant for as long as the secret exists; a fleet
// status counts the tenant not enrolled and reads nothing of it; enroll
// with the same configuration resumes rotation. To retire a tenant,
// unenroll it, point its Flows elsewhere, then delete the secret by hand
// (the endpoint then answers 404 for it). unenroll refuses during an
// incomplete rotation: turned off then, rotation would leave the pending
// key, which Meta may hold, without Secrets Manager's retries.
//
// # Fleet status
//
// A status that names no secret, with the fleet on, reads the stack's own
// secret (SECRET_ID, if set) and every enrolled tenant: ListSecrets
// filtered on the fleet's tag and name prefix (every entry checked again,
// since a filter value is a prefix), FleetOptions.Concurrency tenants at
// once, each within TenantTimeout, and no tenant started that could not
// finish before the invocation's deadline. A tenant is healthy, drifted,
// rotation_incomplete, rotation_overdue (older than fleet.OverdueAfter),
// unreadable, no_key_yet (before its first rotation: not unhealthy, and
// its numbers are not counted as drifted, until it is overdue) or
// not_enrolled; the report lists the first unhealthy ones in full and
// counts the rest. Where one invocation is not enough it returns
// next_token and invokes this function asynchronously (InvocationType
// Event) with {"command":"status","fleet_cursor":"<token>"}: the cursor
// holds the ListSecrets page, the entries of it done and the run's
// totals, so it only moves forward; the run ends on the last page, and an
// invocation that read no tenant does not continue. A status sent with
// "next_token" pages by hand and never continues. Each invocation
// publishes what it read as aggregates, never a dimension per tenant:
// DriftedNumbers (the sum over tenants), DaysSinceLastRotation (the
// maximum), and TenantsChecked, TenantsUnhealthy, TenantsIncomplete and
// TenantsOverdue; the drift and overdue alarms work on them unchanged.
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
)

// SecretsAPI is the part of the Secrets Manager client the commands call
// directly. The secret is read through a *keystate.Reader.
type SecretsAPI interface {
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	// The fleet's: enroll creates and tags a tenant's secret, unenroll
	// turns its rotation off and tags it, a fleet status lists the fleet.
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	CancelRotateSecret(ctx context.Context, in *secretsmanager.CancelRotateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CancelRotateSecretOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

// GraphAPI is the part of the Graph client the commands use.
type GraphAPI interface {
	UploadPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID, publicKeyPEM string) error
	GetPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID string) (*graph.Registration, error)
}

// Metrics receives what a command did, for CloudWatch EMF.
type Metrics interface {
	Command(command string, d time.Duration, ok bool, uploaded, verified, failed int)
	Drift(numbers, drifted int)
	// RotationAge is how long ago the secret last rotated, for the
	// rotation-overdue alarm; status publishes it once per run.
	RotationAge(age time.Duration)
}

// Options tune an Operator. Zero values take the defaults noted.
type Options struct {
	// SecretID is the secret of commands without "secret_id" (SECRET_ID).
	SecretID string
	// FunctionName goes into the commands the reports advise
	// ("<RotatorFunctionName>").
	FunctionName string
	// Concurrency bounds the phone numbers read or written at once (8).
	Concurrency int
	Now         func() time.Time
	Logger      *slog.Logger
	// Metrics receives counts and durations; nil for none.
	Metrics Metrics
	// Custody describes and lists the secret's KMS custody keys for status;
	// nil when the function has no KMS client.
	Custody *custody.Manager
	// Fleet configures the fleet's commands; its zero value is the fleet
	// off, and then the commands behave exactly as without it.
	Fleet FleetOptions
	// Lambda invokes this function asynchronously to continue a fleet
	// status; nil: a fleet status that does not finish only returns
	// next_token.
	Lambda LambdaAPI
	// FunctionARN is this function's ARN when the invocation's context
	// carries none (tests); in Lambda, and under the RIE, the context's
	// InvokedFunctionArn is used, without its qualifier.
	FunctionARN string
	// FleetMetrics receives a fleet status's tenant counts; nil for none.
	FleetMetrics FleetMetrics
}

// Operator runs commands.
type Operator struct {
	sm    SecretsAPI
	graph GraphAPI
	state *keystate.Reader
	rot   *rotation.Rotator
	opts  Options
}

// New returns an Operator. All four dependencies are required. state must
// be the Reader the Rotator reads with, so that the commands resolve and
// judge a number exactly as the rotation steps do; rot verifies the numbers
// resync repairs, as testSecret verifies them.
func New(sm SecretsAPI, g GraphAPI, state *keystate.Reader, rot *rotation.Rotator, opts Options) (*Operator, error) {
	if sm == nil || g == nil || state == nil || rot == nil {
		return nil, errors.New("operator: Secrets Manager client, Graph client, secret state reader and rotation are all required")
	}
	if opts.FunctionName == "" {
		opts.FunctionName = "<RotatorFunctionName>"
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Fleet.defaults()
	return &Operator{sm: sm, graph: g, state: state, rot: rot, opts: opts}, nil
}

// Run executes cmd and returns its report (*RotateReport, *StatusReport,
// *ResyncReport, *SetConfigReport, and with the fleet *EnrollReport,
// *UnenrollReport or *FleetStatusReport), or an error when the command
// could not run.
func (o *Operator) Run(ctx context.Context, cmd Command) (any, error) {
	start := o.opts.Now()
	secretID, err := o.secretOf(cmd)
	log := o.opts.Logger.With("command", cmd.Name, "secret_id", secretID)
	if cmd.Tenant != "" {
		log = log.With("tenant", cmd.Tenant)
	}
	var (
		report any
		ok     bool
		st     counts
	)
	switch {
	case err != nil:
	case o.isFleetRun(cmd):
		report, ok, err = o.runFleet(ctx, log, cmd)
	case secretID == "":
		return nil, fmt.Errorf("%s: %w", cmd.Name, &rotation.InputError{Field: "secret_id", Problem: "is not in the command and the function has no SECRET_ID",
			Fix: `add "secret_id":"<secret ARN or name>" to the command, or set SECRET_ID on the function`})
	default:
		if cmd.Tenant != "" {
			err = o.checkTenant(ctx, cmd.Tenant, secretID)
		}
		if err == nil {
			report, ok, st, err = o.runSecret(ctx, log, cmd, secretID)
		}
	}
	d := o.opts.Now().Sub(start)
	if o.opts.Metrics != nil {
		o.opts.Metrics.Command(cmd.Name, d, err == nil && ok, st.uploaded, st.verified, st.failed)
	}
	if err != nil {
		log.Error("command failed", "duration_ms", d.Milliseconds(), "error", err.Error())
		return nil, fmt.Errorf("%s: %w", cmd.Name, err)
	}
	log.Info("command done", "ok", ok, "duration_ms", d.Milliseconds())
	return report, nil
}

// runSecret runs one of the commands about one secret.
func (o *Operator) runSecret(ctx context.Context, log *slog.Logger, cmd Command, secretID string) (report any, ok bool, st counts, err error) {
	switch cmd.Name {
	case CommandRotate:
		var r *RotateReport
		if r, err = o.rotate(ctx, log, secretID); r != nil {
			report, ok = r, r.OK
		}
	case CommandStatus:
		var r *StatusReport
		if r, err = o.status(ctx, log, secretID, true); r != nil {
			report, ok = r, r.OK
			if o.opts.Metrics != nil {
				o.opts.Metrics.Drift(len(r.Numbers), r.Drifted)
			}
		}
	case CommandResync:
		var r *ResyncReport
		if r, st, err = o.resync(ctx, log, secretID, cmd.DryRun); r != nil {
			report, ok = r, r.OK
		}
	case CommandSetConfig:
		if cmd.Tenant != "" {
			// A tenant's secrets must stay where the fleet's IAM reaches.
			if err = o.checkTenantConfigRaw(cmd.Config); err != nil {
				break
			}
		}
		var r *SetConfigReport
		if r, err = o.setConfig(ctx, log, secretID, cmd.Config, cmd.DryRun); r != nil {
			report, ok = r, r.OK
		}
	default:
		err = &rotation.InputError{Field: "command", Problem: describe(cmd.Name) + " is not a command", Fix: fixCommand}
	}
	return report, ok, st, err
}

type counts struct{ uploaded, verified, failed int }
