// Package rotation rotates the WhatsApp Flows business key through the four
// Secrets Manager rotation steps.
//
// # The invariant
//
// Every key Meta holds for any phone number has its private key in the
// secret's AWSCURRENT or AWSPENDING version. Each step keeps it:
//
//   - createSecret stores the new pair as AWSPENDING before Meta sees it.
//   - setSecret and testSecret upload only a public key they have just read
//     back from AWSPENDING or AWSCURRENT, never one held only in memory, and a
//     failed attempt puts the AWSCURRENT key back where it can.
//   - finishSecret promotes AWSPENDING only after testSecret proved that every
//     number holds it (the VerifiedStage label); the old key then sits on
//     AWSPREVIOUS while no number uses it any more.
//
// A failed rotation leaves AWSPENDING in place, so a number that could not be
// rolled back still holds a key whose private half is stored. Removing that
// label from a version that holds a key is the one way to break the
// invariant: the operator's rotate never does it, and resumes the rotation
// instead.
//
// # A verification is true until the next change at Meta
//
// VerifiedStage says "every number held this version's key with status
// VALID, and nothing changed at Meta for this version since". Labels carry
// no time, so the order makes it true: any upload or rollback for a version
// (setSecret, testSecret's rollback, the operator's resync during a
// rotation) removes the label from it first and changes nothing if it
// cannot; testSecret labels the version only after a verification that ran
// in the same step, after every such change. Secrets Manager runs a
// rotation's steps one at a time, so this holds for every automatic attempt.
// The one interleaving left is a person invoking a step by hand while an
// automatic attempt runs (a hand-run setSecret whose uploads land while
// testSecret verifies): a label set then may be stale. Run steps by hand
// only when no attempt is running, as the operator's advice says.
//
// # AWSPENDING after a rotation
//
// AWS documents two end states of a successful rotation: AWSPENDING on the
// new AWSCURRENT version, or on no version. finishSecret chooses the
// second, removing AWSPENDING after it moved AWSCURRENT (a repeated
// finishSecret finishes the removal after a crash between the two). With
// AWSPENDING left on the current version, any version written later by
// hand (a put-secret-value of a new configuration) would leave it on what
// becomes AWSPREVIOUS, and Secrets Manager would then refuse every
// rotation: "A previous rotation isn't complete".
//
// # Key custody
//
// The configuration's key_custody picks where createSecret keeps the new
// private key: in the version as PEM (the default), or in a new AWS KMS key
// (internal/custody), of which the version records the ARN and public key.
// Switching is a set-config; the next rotation makes a key of the new
// custody, and the other steps work alike for both, with these additions
// for a KMS-held key: setSecret uploads nothing and testSecret verifies
// nothing until the key is checked (enabled, RSA_2048, ENCRYPT_DECRYPT, in
// the secret's account and region), testSecret's proof decrypts with
// kms:Decrypt, and finishSecret, after the promotion, retires the secret's
// custody keys that no labelled version names any more: the key that just
// left AWSPREVIOUS is two rotations old, every number was proven on the new
// key, and the endpoint only loads the three labels. A failed retirement is
// logged and retried by the next finishSecret; it never fails the rotation.
//
// # Time
//
// Each step plans its time from the invocation's real deadline (the
// context's): uploads or verification first, then RollbackReserve for
// putting the current key back, then ReportReserve for the report, so that
// Secrets Manager always receives flowkey's own error rather than a Lambda
// timeout. No request, backoff or wait runs into the next phase. The
// step's own AWS requests (a version or label written, a key generated)
// end where the report's share begins: the SDK retries a throttled
// request with backoff inside that time, and one still throttled fails the
// step with an error that says so. Nothing is lost: every step resumes
// from what is stored, and Secrets Manager reattempts the whole rotation.
//
// # Reports
//
// A failed setSecret or testSecret returns a *StepError that says what
// each number is left holding (back on the AWSCURRENT key, the new key,
// not changed, or unknown) and why, the first numbers in full and the rest
// counted by cause.
//
// # The deploy check
//
// A testSecret that fails without having rolled anything back (the
// RotateImmediately=false check CloudFormation runs at deploy, or a
// failure to read the secret, the token or the numbers) returns a
// *DeployCheckError instead: one line of at most 1024 bytes that starts
// with DeployCheckPrefix and names the cause and the fix before the
// details, because a CloudFormation event is all whoever deploys sees.
//
// # Reading and judging
//
// The steps read the secret, resolve the Graph token and the phone numbers,
// and judge what Meta holds through a *keystate.Reader, the same one the
// operator commands use; this package writes (versions, labels, uploads)
// and verifies. Verify is testSecret's check of a number, exported for the
// operator's resync, and Unverify takes a version's VerifiedStage back.
package rotation

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/wait"
)

// Secrets Manager staging labels.
const (
	StageCurrent  = keystate.StageCurrent
	StagePending  = keystate.StagePending
	StagePrevious = keystate.StagePrevious
	// VerifiedStage marks the version whose key testSecret proved on every
	// phone number since the last upload or rollback for it. finishSecret
	// refuses to promote a version without it, so a hand-run finishSecret
	// cannot strand numbers on the old key.
	VerifiedStage = "FLOWKEY_VERIFIED"
)

// The rotation steps, as Secrets Manager names them.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// SecretsAPI is the part of the Secrets Manager client the rotation writes
// with. It reads through a *keystate.Reader.
type SecretsAPI interface {
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	// TagResource records a KMS custody key's creation on the secret
	// before the key exists (tag custody.SecretTagCreation only).
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// KeyGenerator makes a new pair for the secret secretARN.
type KeyGenerator interface {
	Generate(ctx context.Context, secretARN string) (*keypair.Generated, error)
}

// GraphAPI is the part of the Graph client the rotation calls itself. A
// WABA's numbers are listed through a *keystate.Reader.
type GraphAPI interface {
	UploadPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID, publicKeyPEM string) error
	GetPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID string) (*graph.Registration, error)
}

// Options tune a Rotator. Zero values take the defaults noted. The token
// secret and Graph version a document leaves out are the keystate.Reader's
// options.
type Options struct {
	// Concurrency bounds the phone numbers handled at once (8).
	Concurrency int
	// VerifyTimeout bounds testSecret's polling of Meta (90s).
	VerifyTimeout time.Duration
	// VerifyBackoff and VerifyMaxBackoff pace that polling (1s, 10s).
	VerifyBackoff, VerifyMaxBackoff time.Duration
	// RollbackReserve is the part of the invocation's remaining time that
	// setSecret's uploads and testSecret's polling leave for putting the
	// current key back (20s).
	RollbackReserve time.Duration
	// ReportReserve is the last part of the invocation, kept for logging
	// and returning the step's report (2s).
	ReportReserve time.Duration
	// ReadTimeout is the Graph client's per-attempt timeout (10s): the
	// verification's last read starts early enough to finish before the
	// rollback reserve.
	ReadTimeout time.Duration
	Now         func() time.Time
	Random      io.Reader
	Logger      *slog.Logger
	// Metrics receives counts and durations; nil for none.
	Metrics Metrics
	// Custody creates, checks, proves and retires KMS custody keys; nil
	// when the function has no KMS client (then a secret in KMS custody
	// fails with an error that says so, and nothing is retired).
	Custody *custody.Manager
}

// Metrics receives what a step did, for CloudWatch EMF.
type Metrics interface {
	Step(step string, d time.Duration, ok bool, uploaded, verified, failed int)
}

// Rotator runs the rotation steps.
type Rotator struct {
	state *keystate.Reader
	sm    SecretsAPI
	keys  KeyGenerator
	graph GraphAPI
	opts  Options
	// sleep waits between reads of Meta; tests may replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Rotator. All four dependencies are required. state reads
// the secret and resolves its configuration; the operator commands read
// through the same Reader.
func New(state *keystate.Reader, sm SecretsAPI, keys KeyGenerator, g GraphAPI, opts Options) (*Rotator, error) {
	if state == nil || sm == nil || keys == nil || g == nil {
		return nil, errors.New("rotation: secret state reader, Secrets Manager client, key generator and Graph client are all required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.VerifyTimeout <= 0 {
		opts.VerifyTimeout = 90 * time.Second
	}
	if opts.VerifyBackoff <= 0 {
		opts.VerifyBackoff = time.Second
	}
	if opts.VerifyMaxBackoff <= 0 {
		opts.VerifyMaxBackoff = 10 * time.Second
	}
	if opts.RollbackReserve <= 0 {
		opts.RollbackReserve = 20 * time.Second
	}
	if opts.ReportReserve <= 0 {
		opts.ReportReserve = 2 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Rotator{state: state, sm: sm, keys: keys, graph: g, opts: opts, sleep: wait.Sleep}, nil
}

// Event is what Secrets Manager sends for each step.
type Event struct {
	Step               string
	SecretID           string
	ClientRequestToken string
	RotationToken      string
}

// Validate checks the fields every step needs before anything is called.
func (e Event) Validate() error {
	var errs []error
	switch e.Step {
	case StepCreate, StepSet, StepTest, StepFinish:
	case "":
		errs = append(errs, &InputError{Field: "Step", Problem: "is missing", Fix: "send one of createSecret, setSecret, testSecret, finishSecret"})
	default:
		errs = append(errs, &InputError{Field: "Step", Problem: fmt.Sprintf("%q is not a rotation step", e.Step), Fix: "send one of createSecret, setSecret, testSecret, finishSecret"})
	}
	if e.SecretID == "" {
		errs = append(errs, &InputError{Field: "SecretId", Problem: "is missing", Fix: "send the ARN of the secret being rotated"})
	}
	if e.ClientRequestToken == "" {
		errs = append(errs, &InputError{Field: "ClientRequestToken", Problem: "is missing", Fix: "send the version ID of the rotation (Secrets Manager's ClientRequestToken)"})
	}
	return errors.Join(errs...)
}

// InputError is a bad event or command field, or a configuration value
// that cannot be used. It is keystate's type under this package's name, so
// that errors.As finds it whichever package made it: the token and
// configuration errors come from keystate.
type InputError = keystate.InputError

// GuardError is a rotation that must not proceed: rotation disabled, or the
// token not staged as Secrets Manager stages it.
type GuardError struct {
	SecretARN, Token, Problem, Fix string
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("secret %s, version %s: %s; fix: %s", e.SecretARN, e.Token, e.Problem, e.Fix)
}

// Handle runs one step: the guards of AWS's rotation template first, then
// the step. Every step is idempotent and resumes from any partial state,
// because Secrets Manager repeats steps and retries whole rotations.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	if err := ev.Validate(); err != nil {
		return fmt.Errorf("rotation event: %w", err)
	}
	start := r.opts.Now()
	log := r.opts.Logger.With("step", ev.Step, "token", ev.ClientRequestToken)

	sec, err := r.state.Describe(ctx, ev.SecretID)
	if err != nil {
		if ev.Step == StepTest {
			// At deploy this is the first call, the one a VPC without a
			// route to Secrets Manager fails.
			err = deployCheck{secret: ev.SecretID}.wrap(err)
		}
		log.Error("step failed", "secret_arn", ev.SecretID, "outcome", "describe_failed", "error", err.Error())
		return err
	}
	// The ARN from DescribeSecret, also when the event named the secret.
	log = log.With("secret_arn", sec.ARN)
	inv := &invocation{ev: ev, secret: sec, log: log}

	var done bool
	done, err = guard(sec, ev.ClientRequestToken)
	if err == nil && done && ev.Step == StepFinish && slices.Contains(sec.Stages[ev.ClientRequestToken], StagePending) {
		// A finishSecret that promoted the version and crashed before
		// removing AWSPENDING from it: finish that.
		err = r.afterPromotion(ctx, inv)
	}
	if err == nil && !done {
		var s stepStats
		switch ev.Step {
		case StepCreate:
			err = r.createSecret(ctx, inv)
		case StepSet:
			s, err = r.setSecret(ctx, inv)
		case StepTest:
			s, err = r.testSecret(ctx, inv)
		case StepFinish:
			err = r.finishSecret(ctx, inv)
		}
		if r.opts.Metrics != nil {
			r.opts.Metrics.Step(ev.Step, r.opts.Now().Sub(start), err == nil, s.uploaded, s.verified, s.failed)
		}
	}
	d := r.opts.Now().Sub(start)
	switch {
	case err != nil:
		log.Error("step failed", "duration_ms", d.Milliseconds(), "error", err.Error())
		var dc *DeployCheckError
		if errors.As(err, &dc) {
			// Its text stands alone: CloudFormation shows it as it is.
			return err
		}
		return fmt.Errorf("%s: %w", ev.Step, err)
	case done:
		log.Info("step skipped", "reason", "version is already AWSCURRENT", "duration_ms", d.Milliseconds())
	default:
		log.Info("step succeeded", "duration_ms", d.Milliseconds())
	}
	return nil
}

// guard applies AWS's checks. done means the version is already current
// and the step must succeed without doing anything.
func guard(sec *keystate.Secret, token string) (done bool, err error) {
	if !sec.RotationEnabled {
		return false, &GuardError{sec.ARN, token, "rotation is not enabled on the secret",
			"enable it with `aws secretsmanager rotate-secret --secret-id <arn> --rotation-lambda-arn <function arn>`"}
	}
	stages, ok := sec.Stages[token]
	if !ok {
		return false, &GuardError{sec.ARN, token, "the secret has no version with this ID",
			"invoke the step with the ClientRequestToken of the rotation in progress (DescribeSecret shows it under VersionIdsToStages)"}
	}
	if slices.Contains(stages, StageCurrent) {
		return true, nil
	}
	if !slices.Contains(stages, StagePending) {
		return false, &GuardError{sec.ARN, token, "the version is not staged AWSPENDING, so it is not the rotation in progress",
			"start a new rotation with `aws secretsmanager rotate-secret`, or invoke the step with the version that holds AWSPENDING"}
	}
	return false, nil
}

// invocation carries what one step learned about the secret.
type invocation struct {
	ev     Event
	secret *keystate.Secret
	log    *slog.Logger
}

type stepStats struct{ uploaded, verified, failed int }
