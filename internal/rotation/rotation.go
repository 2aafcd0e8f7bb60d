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
// rolled back still holds a key whose private half is stored. Clearing that
// label by hand is the one way to break the invariant; the README says so.
package rotation

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
)

// Secrets Manager staging labels.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
	// VerifiedStage marks the version whose key testSecret proved on every
	// phone number. finishSecret refuses to promote a version without it,
	// so a hand-run finishSecret cannot strand numbers on the old key.
	VerifiedStage = "FLOWKEY_VERIFIED"
)

// The rotation steps, as Secrets Manager names them.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// SecretsAPI is the part of the Secrets Manager client the rotation uses.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// KeyGenerator makes a new pair for the secret secretARN.
type KeyGenerator interface {
	Generate(ctx context.Context, secretARN string) (*keypair.Generated, error)
}

// GraphAPI is the part of the Graph client the rotation uses.
type GraphAPI interface {
	UploadPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID, publicKeyPEM string) error
	GetPublicKey(ctx context.Context, auth graph.Auth, phoneNumberID string) (*graph.Registration, error)
	PhoneNumbers(ctx context.Context, auth graph.Auth, wabaID string) ([]graph.PhoneNumber, error)
}

// Options tune a Rotator. Zero values take the defaults noted.
type Options struct {
	// AccessTokenSecretID is used when the document names no token secret.
	AccessTokenSecretID string
	// GraphVersion is used when the document names no version.
	GraphVersion string
	// Concurrency bounds the phone numbers handled at once (8).
	Concurrency int
	// VerifyTimeout bounds testSecret's polling of Meta (90s).
	VerifyTimeout time.Duration
	// VerifyBackoff and VerifyMaxBackoff pace that polling (1s, 10s).
	VerifyBackoff, VerifyMaxBackoff time.Duration
	// RollbackReserve is the part of the invocation's remaining time that
	// polling leaves for putting the current key back (20s).
	RollbackReserve time.Duration
	Now             func() time.Time
	Random          io.Reader
	Logger          *slog.Logger
	// Metrics receives counts and durations; nil for none.
	Metrics Metrics
}

// Metrics receives what a step did, for CloudWatch EMF.
type Metrics interface {
	Step(step string, d time.Duration, ok bool, uploaded, verified, failed int)
}

// Rotator runs the rotation steps.
type Rotator struct {
	sm    SecretsAPI
	keys  KeyGenerator
	graph GraphAPI
	opts  Options
}

// New returns a Rotator. All three dependencies are required.
func New(sm SecretsAPI, keys KeyGenerator, g GraphAPI, opts Options) (*Rotator, error) {
	if sm == nil || keys == nil || g == nil {
		return nil, errors.New("rotation: Secrets Manager client, key generator and Graph client are all required")
	}
	if opts.GraphVersion == "" {
		opts.GraphVersion = graph.DefaultVersion
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Random == nil {
		opts.Random = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Rotator{sm: sm, keys: keys, graph: g, opts: opts}, nil
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

// InputError is a bad event or command field.
type InputError struct {
	Field, Problem, Fix string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s %s; fix: %s", e.Field, e.Problem, e.Fix)
}

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

	sec, err := r.describe(ctx, ev.SecretID)
	if err != nil {
		log.Error("step failed", "secret_arn", ev.SecretID, "outcome", "describe_failed", "error", err.Error())
		return err
	}
	// The ARN from DescribeSecret, also when the event named the secret.
	log = log.With("secret_arn", sec.arn)
	inv := &invocation{ev: ev, secret: sec, log: log}

	var done bool
	if done, err = guard(sec, ev.ClientRequestToken); err == nil && !done {
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
func guard(sec *secretState, token string) (done bool, err error) {
	if !sec.rotationEnabled {
		return false, &GuardError{sec.arn, token, "rotation is not enabled on the secret",
			"enable it with `aws secretsmanager rotate-secret --secret-id <arn> --rotation-lambda-arn <function arn>`"}
	}
	stages, ok := sec.stages[token]
	if !ok {
		return false, &GuardError{sec.arn, token, "the secret has no version with this ID",
			"invoke the step with the ClientRequestToken of the rotation in progress (DescribeSecret shows it under VersionIdsToStages)"}
	}
	if has(stages, StageCurrent) {
		return true, nil
	}
	if !has(stages, StagePending) {
		return false, &GuardError{sec.arn, token, "the version is not staged AWSPENDING, so it is not the rotation in progress",
			"start a new rotation with `aws secretsmanager rotate-secret`, or invoke the step with the version that holds AWSPENDING"}
	}
	return false, nil
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// invocation carries what one step learned about the secret.
type invocation struct {
	ev     Event
	secret *secretState
	log    *slog.Logger
	// auth is fetched at most once per invocation.
	auth *graph.Auth
}

type stepStats struct{ uploaded, verified, failed int }
