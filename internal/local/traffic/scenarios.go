package traffic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flowkey/flowkey/internal/local/endpointlog"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// Env is what a scenario acts on.
type Env struct {
	Stack *stack.Stack
	// ARN is the key secret's.
	ARN string
	// Clock is the Graph simulator's clock (stack.Options.GraphNow): the
	// scenarios with lag move it on first, so that the key Meta holds is
	// as old as in production (a rotation is weeks after the last) and a
	// lag window never reaches back to before Meta had a key.
	Clock *Clock
}

// Clock is a clock that can be moved forward; the zero value is the time.
type Clock struct {
	mu      sync.Mutex
	skipped time.Duration
}

// Now is the time, plus every Skip so far.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skipped)
}

// Skip moves the clock d forward.
func (c *Clock) Skip(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipped += d
}

// rotationGap is how far the Graph clock moves before a lag scenario: the
// time between two scheduled rotations.
const rotationGap = 30 * 24 * time.Hour

// Scenario is a rotation story to run with traffic flowing.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, e Env) error
}

// CleanRotation is one rotation that succeeds.
func CleanRotation() Scenario {
	return Scenario{Name: "clean rotation", Run: func(ctx context.Context, e Env) error {
		_, err := e.rotate(ctx, secretsemu.RotationSucceeded, "")
		return err
	}}
}

// FailedTestSecret is a rotation that testSecret fails, so it rolls back:
// Meta never shows the new key on the last number within the rotator's
// VERIFY_TIMEOUT (a lag far longer than it), while the other numbers serve
// it at once, so clients there encrypt with the pending key until the
// rollback puts the current one back, and beyond, from their cache.
func FailedTestSecret() Scenario {
	return Scenario{Name: "rotation failing in testSecret, rolled back", Run: func(ctx context.Context, e Env) error {
		phones := e.Stack.PhoneNumberIDs()
		slow := phones[len(phones)-1]
		if err := e.lag(slow, time.Hour); err != nil {
			return err
		}
		defer e.Stack.Graph.SetLag(slow, 0)
		_, err := e.rotate(ctx, secretsemu.RotationFailed, "testSecret")
		return err
	}}
}

// QuickSuccession is two rotations back to back: clients that cached the
// key from before the first now hold one in no label. The scenario ends
// once the endpoint's key ring has refreshed after the second rotation, so
// that it no longer knows that key either.
func QuickSuccession() Scenario {
	return Scenario{Name: "two rotations in quick succession", Run: func(ctx context.Context, e Env) error {
		for range 2 {
			if _, err := e.rotate(ctx, secretsemu.RotationSucceeded, ""); err != nil {
				return err
			}
		}
		return e.awaitRefresh(ctx)
	}}
}

// GraphLag is a rotation while Meta's GET lags behind uploads by lag
// (shorter than VERIFY_TIMEOUT): testSecret polls through it, and clients
// that fetch meanwhile still get the old key.
func GraphLag(lag time.Duration) Scenario {
	return Scenario{Name: fmt.Sprintf("rotation while Graph lags %s", lag), Run: func(ctx context.Context, e Env) error {
		if err := e.lag("", lag); err != nil {
			return err
		}
		defer e.Stack.Graph.SetLag("", 0)
		_, err := e.rotate(ctx, secretsemu.RotationSucceeded, "")
		return err
	}}
}

// All are the four scenarios of issue 11, the failing one last: it leaves
// its rotation incomplete, so the secret takes no further RotateSecret.
func All(graphLag time.Duration) []Scenario {
	return []Scenario{CleanRotation(), QuickSuccession(), GraphLag(graphLag), FailedTestSecret()}
}

func (e Env) lag(number string, d time.Duration) error {
	if e.Clock == nil {
		return errors.New("traffic: a lag scenario needs Env.Clock, the Graph simulator's clock")
	}
	e.Clock.Skip(rotationGap)
	return e.Stack.Graph.SetLag(number, d)
}

// rotate runs one rotation and checks how it ended.
func (e Env) rotate(ctx context.Context, want secretsemu.EventType, mention string) (secretsemu.Event, error) {
	token, err := e.Stack.Rotate(ctx, e.ARN, true)
	if err != nil {
		return secretsemu.Event{}, fmt.Errorf("RotateSecret: %w", err)
	}
	ev, err := e.Stack.WaitRotation(ctx, e.ARN, token)
	if err != nil {
		return ev, fmt.Errorf("waiting for rotation %s: %w", token, err)
	}
	if ev.Type != want || !strings.Contains(ev.Error, mention) {
		return ev, fmt.Errorf("rotation %s ended with %s %q, want %s mentioning %q", token, ev.Type, ev.Error, want, mention)
	}
	return ev, nil
}

// awaitRefresh waits, while the traffic flows, for the endpoint's key ring
// to refresh (its TTL or a miss), so that it has seen the labels as they
// are now.
func (e Env) awaitRefresh(ctx context.Context) error {
	before := e.Stack.EndpointLog.Totals().Refreshes
	ctx, cancel := context.WithTimeout(ctx, logWait)
	defer cancel()
	_, err := e.Stack.EndpointLog.Wait(ctx, func(t endpointlog.Totals) bool { return t.Refreshes > before })
	if err != nil {
		return fmt.Errorf("waiting for the endpoint's key ring to refresh: %w", err)
	}
	return nil
}
