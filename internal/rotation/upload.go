package rotation

import (
	"context"
	"errors"
	"time"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
)

// upload sends pem to every number, at most Concurrency at once, and notes
// for each failure whether it certainly changed nothing at Meta.
func (r *Rotator) upload(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string, pem, action string) []NumberResult {
	return fanout.Each(ctx, r.opts.Concurrency, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		err := r.graph.UploadPublicKey(ctx, auth, id, pem)
		r.logNumber(inv, action, id, start, err)
		return NumberResult{PhoneNumberID: id, Err: err, definite: err != nil && definiteFailure(err)}
	})
}

// rollback puts the AWSCURRENT key back on numbers and returns the step's
// error, which reports failed out of total numbers. Without a current key
// (the first rotation) there is nothing to put back; the numbers keep the
// pending key, which AWSPENDING still holds.
func (r *Rotator) rollback(ctx context.Context, inv *invocation, auth graph.Auth, p pair, step string, total int, failed []NumberResult, numbers []string) error {
	e := &StepError{Step: step, Secret: inv.secret.ARN, Token: inv.ev.ClientRequestToken, Total: total, Failed: failed}
	switch {
	case p.current.Key == nil:
		e.Note = "there is no AWSCURRENT key to put back (first rotation); the numbers keep the new key, whose private key stays in AWSPENDING version " + inv.ev.ClientRequestToken + ": do not remove that label"
	case len(numbers) == 0:
		e.Note = "no number was switched, so nothing was put back"
	default:
		// The current PEM was read back from AWSCURRENT by loadPair.
		for _, res := range r.upload(ctx, inv, auth, numbers, p.current.Key.PublicKeyPEM, "rollback") {
			if res.Err != nil {
				e.RollbackFailed = append(e.RollbackFailed, res)
			} else {
				e.RolledBack = append(e.RolledBack, res.PhoneNumberID)
			}
		}
		e.Note = "AWSPENDING version " + inv.ev.ClientRequestToken + " keeps the new private key; Secrets Manager will retry the rotation"
	}
	return e
}

func failures(results []NumberResult) []NumberResult {
	var out []NumberResult
	for _, r := range results {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// switchedOrUnknown lists the numbers an upload attempt may have switched:
// those that succeeded, and those whose failure leaves Meta's state unknown
// (a timeout or a 5xx may have landed).
func switchedOrUnknown(results []NumberResult) []string {
	var ids []string
	for _, r := range results {
		if r.Err == nil || !r.definite {
			ids = append(ids, r.PhoneNumberID)
		}
	}
	return ids
}

// definiteFailure reports whether err is Graph refusing the call, which
// changes nothing at Meta. Only a refusal of the one and only attempt is
// definite: when an earlier attempt timed out or got a 5xx, it may have
// landed even though the last one was refused.
func definiteFailure(err error) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && ge.HTTPStatus >= 400 && ge.HTTPStatus < 500 && ge.Attempts <= 1
}

func (r *Rotator) logNumber(inv *invocation, action, id string, start time.Time, err error, extra ...any) {
	attrs := append([]any{"action", action, "phone_number_id", id, "duration_ms", r.opts.Now().Sub(start).Milliseconds()}, extra...)
	if err == nil {
		inv.log.Info("phone number done", attrs...)
		return
	}
	var ge *graph.Error
	if errors.As(err, &ge) {
		attrs = append(attrs, "graph_code", ge.Code, "graph_subcode", ge.Subcode, "http_status", ge.HTTPStatus, "fbtrace_id", ge.FBTraceID)
	}
	inv.log.Warn("phone number failed", append(attrs, "error", err.Error())...)
}
