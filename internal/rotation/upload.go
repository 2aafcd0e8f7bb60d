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
		e.mode = noCurrentKey
		e.Note = "there is no AWSCURRENT key to put back (first rotation); the numbers keep the new key, whose private key stays in AWSPENDING version " + inv.ev.ClientRequestToken + ": do not remove that label"
	case len(numbers) == 0:
		e.Note = "no number was switched, so nothing was put back"
	default:
		// The rollback has the time the step kept back for it, and not
		// the report's.
		rctx, cancel := until(ctx, r.budget(ctx).rollback)
		defer cancel()
		e.mode = rolledBack
		// The current PEM was read back from AWSCURRENT by loadPair.
		for _, res := range r.upload(rctx, inv, auth, numbers, p.current.Key.PublicKeyPEM, "rollback") {
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

// definiteFailure reports whether err certainly changed nothing at Meta:
// nothing was sent (bad input, or no time left for a first attempt), or
// Graph refused the call and no earlier attempt may have landed (the
// client reports one that timed out or got a 5xx in Uncertain).
func definiteFailure(err error) bool {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return errors.Is(err, graph.ErrInvalidInput)
	}
	if ge.Attempts == 0 && ge.Failure == graph.FailureTransport {
		return true // the deadline or a cancellation came before any attempt
	}
	return ge.HTTPStatus >= 400 && ge.HTTPStatus < 500 && ge.Uncertain == ""
}

func (r *Rotator) logNumber(inv *invocation, action, id string, start time.Time, err error, extra ...any) {
	attrs := append([]any{"action", action, "phone_number_id", id, "duration_ms", r.opts.Now().Sub(start).Milliseconds()}, extra...)
	if err == nil {
		inv.log.Info("phone number done", attrs...)
		return
	}
	inv.log.Warn("phone number failed", append(append(attrs, graphAttrs(err)...), "error", err.Error())...)
}

// graphAttrs are the log attributes of a Graph failure: graph_code only
// when Meta sent one (0 is a real code), the transport cause when no
// answer came.
func graphAttrs(err error) []any {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return nil
	}
	attrs := []any{"failure", string(ge.Failure)}
	if code, ok := ge.GraphCode(); ok {
		attrs = append(attrs, "graph_code", code, "graph_subcode", ge.Subcode)
	}
	if ge.Transport != "" {
		attrs = append(attrs, "transport", ge.Transport)
	}
	if ge.HTTPStatus != 0 {
		attrs = append(attrs, "http_status", ge.HTTPStatus)
	}
	if ge.FBTraceID != "" {
		attrs = append(attrs, "fbtrace_id", ge.FBTraceID)
	}
	if ge.Uncertain != "" {
		attrs = append(attrs, "uncertain", ge.Uncertain)
	}
	return attrs
}
