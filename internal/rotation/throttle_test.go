package rotation

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
)

// throttle is the error AWS answers a request over its quota with, after
// the SDK's retries.
var throttle = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}

const throttleNote = "throttled by AWS past the retries that fit in the step's time: nothing is lost"

// A write throttled past its retries fails the step with an error that
// says so; the rotation, tried again, completes with its stored state, and
// the invariant holds throughout.
func TestThrottledWritesFailTheStepAndTheRotationCompletesOnItsNextAttempt(t *testing.T) {
	for _, tc := range []struct {
		op, step, want string
	}{
		{secretsfake.OpPutSecretValue, StepCreate, "createSecret: store pending version: "},
		{secretsfake.OpUpdateSecretVersionStage, StepTest, "label version v1 FLOWKEY_VERIFIED: "},
		{secretsfake.OpUpdateSecretVersionStage, StepFinish, "finishSecret: move AWSCURRENT to version v1: "},
	} {
		t.Run(tc.op+" in "+tc.step, func(t *testing.T) {
			h := newHarness(t, configOnly(phones...), phones...)
			h.sm.StagePending(h.arn, "v1", nil)
			for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
				if s == tc.step {
					h.sm.FailNext(tc.op, throttle)
					err := h.step(s, "v1")
					if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), throttleNote) || !strings.Contains(err.Error(), "ThrottlingException") {
						t.Fatalf("got %v", err)
					}
					h.assertInvariant(t)
					// Secrets Manager reattempts the whole rotation.
					for _, again := range []string{StepCreate, StepSet, StepTest, StepFinish} {
						if err := h.step(again, "v1"); err != nil {
							t.Fatalf("reattempt %s: %v", again, err)
						}
					}
					break
				}
				if err := h.step(s, "v1"); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			h.assertInvariant(t)
			if cur := h.sm.Secret(h.arn).Holder(StageCurrent); cur != "v1" {
				t.Errorf("AWSCURRENT on %q after the reattempt", cur)
			}
		})
	}
}

// A key generation throttled past its retries (GenerateDataKeyPair allows
// about one a second) is the same kind of failure.
func TestThrottledKeyGenerationSaysSo(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.keys.fail = &keypair.Error{Field: "kms:GenerateDataKeyPair", Problem: "failed", Fix: "retry later", Err: throttle}
	h.sm.StagePending(h.arn, "v1", nil)
	err := h.step(StepCreate, "v1")
	if err == nil || !strings.Contains(err.Error(), "generate key pair: ") || !strings.Contains(err.Error(), throttleNote) {
		t.Fatalf("got %v", err)
	}
	if IsThrottled(&smithy.GenericAPIError{Code: "AccessDeniedException"}) || !IsThrottled(throttle) {
		t.Error("IsThrottled")
	}
}

// deadlines records the deadline of every write's context.
type deadlines struct {
	SecretsAPI
	mu   sync.Mutex
	seen []time.Time
}

func (d *deadlines) record(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl, _ := ctx.Deadline()
	d.seen = append(d.seen, dl)
}

func (d *deadlines) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	d.record(ctx)
	return d.SecretsAPI.PutSecretValue(ctx, in, o...)
}

func (d *deadlines) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	d.record(ctx)
	return d.SecretsAPI.UpdateSecretVersionStage(ctx, in, o...)
}

// The SDK retries a throttled request inside its context, so every write
// of a step ends before the report's share of the invocation: a step that
// is throttled to the end still returns its own error, never a timeout.
func TestEveryWriteEndsBeforeTheReportsShare(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	rec := &deadlines{SecretsAPI: h.sm}
	const report = 2 * time.Second
	r, err := New(h.state, rec, h.keys, h.g, Options{Concurrency: 4, VerifyTimeout: 200 * time.Millisecond, VerifyBackoff: time.Millisecond,
		VerifyMaxBackoff: 5 * time.Millisecond, RollbackReserve: time.Second, ReportReserve: report, Logger: slog.New(slog.NewJSONHandler(h.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "v1", nil)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		d, _ := ctx.Deadline()
		rec.mu.Lock()
		rec.seen = nil
		rec.mu.Unlock()
		err := r.Handle(ctx, Event{Step: s, SecretID: h.arn, ClientRequestToken: "v1"})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for _, got := range rec.seen {
			if got.IsZero() || got.After(d.Add(-report)) {
				t.Errorf("%s: a write's deadline %s is not before the report's share (%s)", s, got, d.Add(-report))
			}
		}
	}
	if len(rec.seen) == 0 {
		t.Error("finishSecret wrote nothing")
	}
}
