// Package traffic proves on the local stack that rotating the key never
// breaks a Flow: it drives simulated WhatsApp clients (internal/local/
// waclient) through the Flows endpoint while rotation scenarios run, and
// measures each phase from both sides: what the users saw (requests, 421s,
// retries, user-visible failures) and what the endpoint logged (key-ring
// refreshes, RSA operations per request, the labels of the keys that
// decrypted), and what KMS did for it (the endpoint's kms:Decrypt calls,
// counted by the stack's KMS proxy).
//
// Phases are driven in rounds (every client sends one request per round):
// During runs rounds until its event (a scenario) returns, then one more
// round wholly after it, so that every client meets the end state. Nothing
// waits on a timer: a phase ends on the scenario's rotation events and on
// the endpoint's own log lines. Phase.Check fails a phase that saw no
// traffic, whose requests the endpoint did not all log, or in which any
// user saw a failure.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/local/endpointlog"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// logWait bounds the wait for the endpoint's log lines after a phase: they
// come through two pipes, milliseconds after the answers.
const logWait = 30 * time.Second

// Phase is one measured stretch of traffic.
type Phase struct {
	Name     string
	Rounds   int
	Clients  waclient.Stats
	Endpoint endpointlog.Totals
	// Invocations is how many requests reached the endpoint function.
	Invocations int
	// KMS is the endpoint's KMS calls during the phase (the rotator's are
	// its own and not counted), every attempt of the SDK's retries
	// included: each one is a request KMS bills and counts against the
	// account's quota.
	KMS kmsproxy.Calls
}

// KMSDecrypts is the endpoint's kms:Decrypt calls, whatever their result.
func (p Phase) KMSDecrypts() int {
	return p.KMS.Count(kmsproxy.Call{Caller: stack.EndpointAccessKeyID, Op: "Decrypt"})
}

// KMSDecryptsPerRequest is KMSDecrypts over the requests the endpoint
// logged (0 without requests): in KMS custody the cost of a Flows request
// in KMS requests, as RSAOpsPerRequest is in PEM custody.
func (p Phase) KMSDecryptsPerRequest() float64 {
	if p.Endpoint.Requests == 0 {
		return 0
	}
	return float64(p.KMSDecrypts()) / float64(p.Endpoint.Requests)
}

// Check is nil when the phase proves something and nobody saw a failure:
// requests were sent, each one reached the function and was logged, and
// there was no user-visible failure.
func (p Phase) Check() error {
	var errs []error
	if p.Clients.Requests == 0 {
		errs = append(errs, errors.New("no request was sent"))
	}
	if p.Endpoint.Requests == 0 {
		errs = append(errs, errors.New("no endpoint log line was read"))
	}
	if p.Endpoint.Requests != p.Clients.Sent || p.Invocations != p.Clients.Sent {
		errs = append(errs, fmt.Errorf("the clients sent %d requests, the function got %d and logged %d", p.Clients.Sent, p.Invocations, p.Endpoint.Requests))
	}
	if p.Clients.Failures > 0 {
		errs = append(errs, fmt.Errorf("%d user-visible failures %v:\n  %s", p.Clients.Failures, p.Clients.Causes, strings.Join(p.Clients.Examples, "\n  ")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("phase %q: %w", p.Name, err)
	}
	return nil
}

// Driver runs a client population against a stack's endpoint.
type Driver struct {
	// Tail is how many rounds During runs once its event has returned (1):
	// a round lasts at least Clients/Rate, so Tail rounds give the clients
	// with short key caches the time to fetch the key the event left.
	Tail int

	lst *stack.Stack
	pop *waclient.Population
}

// New builds a population for lst's endpoint: opts' endpoint, Graph and app
// secret fields are filled from lst, and Phones defaults to the WABA's.
func New(lst *stack.Stack, opts waclient.Options) (*Driver, error) {
	opts.EndpointURL, opts.GraphURL, opts.AppSecret = lst.EndpointURL, lst.GraphURL, []byte(lst.AppSecret)
	if opts.GraphToken == "" {
		opts.GraphToken = stack.DefaultGraphToken
	}
	if opts.Phones == nil {
		opts.Phones = lst.PhoneNumberIDs()
	}
	pop, err := waclient.New(opts)
	if err != nil {
		return nil, err
	}
	return &Driver{Tail: 1, lst: lst, pop: pop}, nil
}

// Population is the driver's clients.
func (d *Driver) Population() *waclient.Population { return d.pop }

// Rounds runs n rounds and measures them.
func (d *Driver) Rounds(ctx context.Context, name string, n int) (Phase, error) {
	return d.measure(ctx, name, func(ctx context.Context) (int, error) {
		for i := range n {
			if err := d.pop.Round(ctx); err != nil {
				return i, err
			}
		}
		return n, nil
	})
}

// During runs rounds while event runs, then Tail rounds that start after
// it returned, and measures them all. event's error is returned with the
// phase.
func (d *Driver) During(ctx context.Context, name string, event func(context.Context) error) (Phase, error) {
	var evErr error
	p, err := d.measure(ctx, name, func(ctx context.Context) (int, error) {
		stop := make(chan struct{})
		go func() {
			defer close(stop)
			evErr = event(ctx)
		}()
		n, err := d.pop.RunUntil(ctx, stop)
		// RunUntil may stop on ctx before the event does.
		<-stop
		for i := 0; err == nil && i < max(d.Tail, 1); i++ {
			if err = d.pop.Round(ctx); err == nil {
				n++
			}
		}
		return n, err
	})
	return p, errors.Join(evErr, err)
}

func (d *Driver) measure(ctx context.Context, name string, run func(context.Context) (int, error)) (Phase, error) {
	invBefore := d.lst.Endpoint.Invocations()
	logBefore, err := d.flushed(ctx, invBefore)
	if err != nil {
		return Phase{Name: name}, err
	}
	before, kmsBefore := d.pop.Stats(), d.endpointKMS()
	rounds, runErr := run(ctx)
	inv := d.lst.Endpoint.Invocations()
	logAfter, err := d.flushed(ctx, inv)
	p := Phase{
		Name: name, Rounds: rounds, Clients: d.pop.Stats().Sub(before),
		Endpoint: logAfter.Sub(logBefore), Invocations: int(inv - invBefore),
		KMS: d.endpointKMS().Sub(kmsBefore),
	}
	return p, errors.Join(runErr, err)
}

// endpointKMS is the endpoint's KMS calls so far. Every KMS call of a
// request is made before its answer, so the count taken after the phase's
// answers holds all of them.
func (d *Driver) endpointKMS() kmsproxy.Calls {
	all := d.lst.KMSProxy.Calls()
	for c := range all {
		if c.Caller != stack.EndpointAccessKeyID {
			delete(all, c)
		}
	}
	return all
}

// flushed waits until the endpoint has logged as many requests as it got.
func (d *Driver) flushed(ctx context.Context, invocations int64) (endpointlog.Totals, error) {
	ctx, cancel := context.WithTimeout(ctx, logWait)
	defer cancel()
	return d.lst.EndpointLog.WaitRequests(ctx, int(invocations))
}
