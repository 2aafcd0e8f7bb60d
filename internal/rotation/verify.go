package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
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
	if want == nil || want.Pair() == nil {
		out := make([]NumberResult, len(numbers))
		for i, id := range numbers {
			out[i] = NumberResult{PhoneNumberID: id, Err: errors.New("no key to verify against")}
		}
		return out
	}
	return r.verify(ctx, inv, auth, numbers, want)
}

// verify checks every number against want, polling each one until it holds
// want with status VALID or the verification deadline passes.
func (r *Rotator) verify(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string, want *secretdoc.Key) []NumberResult {
	deadline := r.opts.Now().Add(r.opts.VerifyTimeout)
	if d, ok := ctx.Deadline(); ok {
		// Keep time back to roll back if verification fails.
		if limit := d.Add(-r.opts.RollbackReserve); limit.Before(deadline) {
			deadline = limit
		}
	}
	return fanout.Each(ctx, r.opts.Concurrency, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		res := r.verifyNumber(ctx, auth, id, want, deadline)
		r.logNumber(inv, "verify", id, start, res.Err, "held", res.Held, "status", res.Status)
		return res
	})
}

// checkAccess reads every number once and fails only on Graph errors.
func (r *Rotator) checkAccess(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string) []NumberResult {
	return fanout.Each(ctx, r.opts.Concurrency, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		_, err := r.graph.GetPublicKey(ctx, auth, id)
		r.logNumber(inv, "check_access", id, start, err)
		return NumberResult{PhoneNumberID: id, Err: err}
	})
}

func (r *Rotator) verifyNumber(ctx context.Context, auth graph.Auth, id string, want *secretdoc.Key, deadline time.Time) NumberResult {
	wantPair := want.Pair()
	backoff := r.opts.VerifyBackoff
	res := NumberResult{PhoneNumberID: id}
	for {
		reg, err := r.graph.GetPublicKey(ctx, auth, id)
		switch {
		case err != nil:
			res.Err = err
			var ge *graph.Error
			if !errors.As(err, &ge) || !ge.Retryable {
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
				// does, and decrypt with the stored private key.
				if err := wantPair.ProveDecrypt(r.opts.Random, reg.PublicKey); err != nil {
					res.Err = fmt.Errorf("the key Meta holds does not round-trip with the stored private key: %w", err)
					return res
				}
				res.Err = nil
				return res
			}
			res.Err = &MismatchError{Want: wantPair.Fingerprint().Short(), Held: res.Held, Status: reg.Status}
		}
		if r.opts.Now().Add(backoff).After(deadline) {
			return res
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		backoff = min(2*backoff, r.opts.VerifyMaxBackoff)
	}
}
