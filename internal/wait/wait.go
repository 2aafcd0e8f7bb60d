// Package wait is the one timed wait of flowkey's product code: a backoff,
// a rate-limit estimate or a key ring's floor waits through Sleep, which
// ends early when the caller's context does, so that no wait outlives the
// step, command or request that asked for it.
//
// Packages keep a sleep function of this signature in their options (or a
// field) so that tests can replace it with one that advances their clock.
package wait

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends, whichever is first, and returns ctx's
// error if it ended first (or had ended already). A d of zero or less
// returns at once, with ctx's error if any.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
