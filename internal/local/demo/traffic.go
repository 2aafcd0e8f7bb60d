package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/traffic"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// The demo's client population: the figures the third part prints.
const (
	demoClients   = 24
	demoRate      = 200 // requests per second
	demoMinKeyTTL = 50 * time.Millisecond
	demoMaxKeyTTL = time.Hour
	demoGraphLag  = time.Second
	// demoVerifyTimeout is the rotator's VERIFY_TIMEOUT on the demo's
	// stack, so that the failing rotation gives up within seconds.
	demoVerifyTimeout = "3s"
	demoSteadyRounds  = 3
	// demoTailRounds follow each scenario: a round of 24 at 200/s lasts at
	// least 120 ms, so the clients whose cache is short fetch the key the
	// scenario left while the others still send with theirs.
	demoTailRounds = 8
)

// runTraffic is the demo's third part: traffic through the Flows endpoint
// across the four rotation scenarios, and its table. It fails when a
// scenario did not go as planned or when any user saw a failure.
func runTraffic(ctx context.Context, out io.Writer, lst *stack.Stack, arn string, clock *traffic.Clock) error {
	d, err := newDemoDriver(lst, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTraffic through the Flows endpoint %s (sample backend %s) while the key rotates:\n", lst.EndpointURL, lst.BackendURL)
	fmt.Fprintf(out, "%d simulated WhatsApp clients on %d numbers at a steady %d requests/s, each caching the key it fetched\n", demoClients, len(lst.PhoneNumberIDs()), demoRate)
	fmt.Fprintf(out, "from Meta for a random %s to %s. On HTTP 421 a client fetches the key again and retries once, as WhatsApp\n", human(demoMinKeyTTL), human(demoMaxKeyTTL))
	fmt.Fprintln(out, "does; what still fails is a user-visible failure, and every 200 must decrypt to the sample backend's answer.")
	fmt.Fprintln(out, "REFRESHES, RSA OPS/REQUEST and DECRYPTED WITH (the label of the key) come from the endpoint's log lines.")

	rotationsBefore := rotationsOf(lst, arn)
	var phases []traffic.Phase
	steady, err := d.Rounds(ctx, "steady state", demoSteadyRounds)
	phases = append(phases, steady)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	env := traffic.Env{Stack: lst, ARN: arn, Clock: clock}
	for _, sc := range traffic.All(demoGraphLag) {
		if len(errs) > 0 {
			break
		}
		p, err := d.During(ctx, sc.Name, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*rotationTimeout)
			defer cancel()
			return sc.Run(ctx, env)
		})
		phases = append(phases, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sc.Name, err))
		}
	}
	traffic.WriteTable(out, phases)
	var requests, failures int
	for _, p := range phases {
		requests += p.Clients.Requests
		failures += p.Clients.Failures
		if err := p.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "ok: %d requests through the endpoint across %d more rotations, one of them failed and rolled back; %d user-visible failures\n",
		requests, rotationsOf(lst, arn)-rotationsBefore, failures)
	return nil
}

// newDemoDriver is the demo's client population on lst's endpoint.
func newDemoDriver(lst *stack.Stack, seed uint64) (*traffic.Driver, error) {
	d, err := traffic.New(lst, waclient.Options{
		Clients: demoClients, Seed: seed, MinKeyTTL: demoMinKeyTTL, MaxKeyTTL: demoMaxKeyTTL, Rate: demoRate,
	})
	if err != nil {
		return nil, err
	}
	d.Tail = demoTailRounds
	return d, nil
}

// human drops a duration's zero units: "1h", not "1h0m0s".
func human(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		if t, ok := strings.CutSuffix(s, zero); ok && t != "" && strings.ContainsAny(t[len(t)-1:], "hm") {
			s = t
		}
	}
	return s
}

// rotationsOf counts the rotations started on arn, RotateImmediately=false
// checks aside.
func rotationsOf(lst *stack.Stack, arn string) int {
	// A failed rotation is reattempted with the same version: count
	// versions, not attempts.
	versions := map[string]bool{}
	for _, e := range lst.Secrets.Events(arn) {
		if e.Type == secretsemu.RotationStarted && !e.TestOnly {
			versions[e.Token] = true
		}
	}
	return len(versions)
}
