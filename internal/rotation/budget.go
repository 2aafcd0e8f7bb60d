package rotation

import (
	"context"
	"time"
)

// budget is a step's time plan, read from the invocation's real deadline
// (Lambda's, carried by the context). Secrets Manager only sees flowkey's
// own error if the step returns before the function times out, so the
// remaining time is split:
//
//	now ... work: uploads (setSecret) or verification (testSecret)
//	work ... rollback: putting the AWSCURRENT key back (RollbackReserve)
//	rollback ... deadline: logging and returning the report (ReportReserve)
//
// Each phase runs under a context that ends with it, so no request, backoff
// or rate-limit wait of the Graph client can run into the next phase. The
// zero budget (no deadline) bounds nothing.
type budget struct{ work, rollback time.Time }

func (r *Rotator) budget(ctx context.Context) budget {
	d, ok := ctx.Deadline()
	if !ok {
		return budget{}
	}
	end := d.Add(-r.opts.ReportReserve)
	return budget{work: end.Add(-r.opts.RollbackReserve), rollback: end}
}

// awsCtx bounds one of the step's own AWS requests (a version written, a
// label moved, a key generated) by the end of the rollback's share: the SDK
// retries a throttled request with backoff (functions/rotator sets how
// many times), and no backoff may run into the time the step needs to
// return its error. A step whose request is still throttled then fails
// with that error (throttled), and Secrets Manager reattempts the whole
// rotation later from what is stored: nothing is lost.
func (r *Rotator) awsCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return until(ctx, r.budget(ctx).rollback)
}

// until bounds ctx by t; the zero t leaves it unbounded.
func until(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	if t.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, t)
}
