package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Verify checks each number as testSecret does: it polls until Meta holds
// want with status VALID (or the verification deadline passes) and proves
// that want's private key decrypts what is encrypted with the key Meta
// returned. Results are in the order of numbers. The operator's resync
// verifies the numbers it repaired with it.
func (r *Rotator) Verify(ctx context.Context, auth graph.Auth, numbers []string, want *secretdoc.Key) []NumberResult {
	inv := &invocation{log: r.opts.Logger.With("caller", "operator")}
	if want == nil || want.PublicKey() == nil {
		out := make([]NumberResult, len(numbers))
		for i, id := range numbers {
			out[i] = NumberResult{PhoneNumberID: id, Err: errors.New("no key to verify against")}
		}
		return out
	}
	return r.verify(ctx, inv, auth, numbers, want)
}

// verify checks every number against want, polling each one until it holds
// want with status VALID or the verification deadline passes. The reads
// end where the rollback's share of the invocation begins, and the last
// one starts early enough to finish by then.
func (r *Rotator) verify(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string, want *secretdoc.Key) []NumberResult {
	b := r.budget(ctx)
	deadline := r.opts.Now().Add(r.opts.VerifyTimeout)
	if last := b.work.Add(-r.opts.ReadTimeout); !b.work.IsZero() && last.Before(deadline) {
		deadline = last
	}
	ctx, cancel := until(ctx, b.work)
	defer cancel()
	p := r.newProver(want)
	return fanout.Each(ctx, r.opts.Concurrency, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		res := r.verifyNumber(ctx, auth, id, p, deadline)
		r.logNumber(inv, "verify", id, start, res.Err, "held", res.Held, "status", res.Status)
		return res
	})
}

// checkAccess reads every number once and fails only on Graph errors.
// Nothing is rolled back after it, so it may use all but the report's time.
func (r *Rotator) checkAccess(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string) []NumberResult {
	ctx, cancel := until(ctx, r.budget(ctx).rollback)
	defer cancel()
	return fanout.Each(ctx, r.opts.Concurrency, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		_, err := r.graph.GetPublicKey(ctx, auth, id)
		r.logNumber(inv, "check_access", id, start, err)
		return NumberResult{PhoneNumberID: id, Err: err}
	})
}

// verifyNumber polls one number with backoff until it holds want with
// status VALID. It always reads once more at the deadline: the key may
// become visible between the last backoff and the deadline. A read that
// fails for good, or is rate-limited, ends the polling: the Graph client
// has already spent what a rate limit allows.
func (r *Rotator) verifyNumber(ctx context.Context, auth graph.Auth, id string, p *prover, deadline time.Time) NumberResult {
	want := p.want
	wantFP := keypair.FingerprintOf(want.PublicDER()).Short()
	backoff := r.opts.VerifyBackoff
	res := NumberResult{PhoneNumberID: id}
	for {
		reg, err := r.graph.GetPublicKey(ctx, auth, id)
		switch {
		case err != nil:
			res.Err = err
			var ge *graph.Error
			if !errors.As(err, &ge) || !ge.Retryable || ge.RateLimited {
				return res
			}
		default:
			res.Status = reg.Status
			res.Held = ""
			if fp, ok := keystate.HeldFingerprint(reg); ok {
				res.Held = fp.Short()
			}
			if keystate.Holds(reg, want) && reg.Status == graph.StatusValid {
				// Encrypt with the key Meta returned, as a WhatsApp client
				// does, and decrypt with the private key: the stored one,
				// or kms:Decrypt for a KMS-held key.
				if err := p.prove(ctx, reg.PublicKey, reg.PublicDER); err != nil {
					res.Err = fmt.Errorf("the key Meta holds does not round-trip with the private key: %w", err)
					return res
				}
				res.Err = nil
				return res
			}
			res.Err = &MismatchError{Want: wantFP, Held: res.Held, Status: reg.Status,
				KeyOmitted: reg.KeyOmitted, KeyProblem: reg.KeyProblem}
		}
		now := r.opts.Now()
		if !now.Before(deadline) || ctx.Err() != nil {
			return res
		}
		if r.sleep(ctx, min(backoff, deadline.Sub(now))) != nil {
			return res
		}
		backoff = min(2*backoff, r.opts.VerifyMaxBackoff)
	}
}
