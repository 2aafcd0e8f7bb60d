package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// The speed of the two custodies on the local stack (`make bench-custody`):
// how long a clean rotation takes, and how many Flows requests per second
// the endpoint serves in a steady state. Everything runs on this machine,
// local-kms included, so KMS costs a loopback HTTP call where AWS costs a
// network round trip: the "+10ms" variants hold every KMS call of the
// function measured for 10 ms at the proxy, to show how the figures scale
// with the latency of KMS.

// benchCustodies are the custodies the benchmarks compare.
var benchCustodies = []struct {
	name  string
	setup setup
	// kmsLatency holds each KMS call of the function measured.
	kmsLatency time.Duration
}{
	{name: "pem", setup: setup{}},
	{name: "kms", setup: kmsSetup()},
	{name: "kms+10ms", setup: kmsSetup(), kmsLatency: 10 * time.Millisecond},
}

// slowKMS holds each of caller's KMS calls for d, from now on.
func (e *env) slowKMS(b *testing.B, caller string, d time.Duration) {
	b.Helper()
	if d == 0 {
		return
	}
	if _, err := e.KMSProxy.AddFault(kmsproxy.Fault{Caller: caller, Latency: d, Times: kmsproxy.Forever}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCustodyRotation is one clean rotation of three numbers per op,
// from RotateSecret to the end of finishSecret.
func BenchmarkCustodyRotation(b *testing.B) {
	for _, c := range benchCustodies {
		b.Run(c.name, func(b *testing.B) {
			e := start(b, c.setup)
			e.rotateOK(b) // the first key: the benchmark measures a rotation from one key to the next
			e.slowKMS(b, stack.RotatorAccessKeyID, c.kmsLatency)
			e.KMSProxy.ResetCounters()
			for b.Loop() {
				e.rotateOK(b)
			}
			calls := e.KMSProxy.Calls()
			b.ReportMetric(float64(calls.Count(kmsproxy.Call{Caller: stack.RotatorAccessKeyID}))/float64(b.N), "kms-calls/rotation")
			reportKMS(b, calls, stack.RotatorAccessKeyID, b.N, "rotation")
		})
	}
}

// BenchmarkCustodyEndpoint is one round of 8 Flows requests per op (8
// clients, 4 requests in flight) through the endpoint in a steady state:
// every client holds the current key. The RIE, as one Lambda instance,
// serves them one at a time, so req/s is one instance's throughput.
func BenchmarkCustodyEndpoint(b *testing.B) {
	for _, c := range benchCustodies {
		b.Run(c.name, func(b *testing.B) {
			e := start(b, c.setup)
			e.rotateOK(b)
			pop, err := waclient.New(waclient.Options{
				EndpointURL: e.EndpointURL, GraphURL: e.GraphURL, GraphToken: stack.DefaultGraphToken,
				AppSecret: []byte(e.AppSecret), Phones: e.PhoneNumberIDs(), Clients: 8, Seed: 3,
				MinKeyTTL: time.Hour, MaxKeyTTL: 2 * time.Hour, Concurrency: 4,
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// Warm: every client fetches the key, the ring loads it.
			if err := pop.Round(ctx); err != nil {
				b.Fatal(err)
			}
			e.slowKMS(b, stack.EndpointAccessKeyID, c.kmsLatency)
			e.KMSProxy.ResetCounters()
			before := pop.Stats()
			began := time.Now()
			for b.Loop() {
				if err := pop.Round(ctx); err != nil {
					b.Fatal(err)
				}
			}
			took := time.Since(began)
			st := pop.Stats().Sub(before)
			if st.Failures > 0 {
				b.Fatalf("%d user-visible failures: %v", st.Failures, st.Examples)
			}
			b.ReportMetric(float64(st.Sent)/took.Seconds(), "req/s")
			reportKMS(b, e.KMSProxy.Calls(), stack.EndpointAccessKeyID, st.Sent, "req")
		})
	}
}

// reportKMS reports caller's kms:Decrypt calls per unit.
func reportKMS(b *testing.B, calls kmsproxy.Calls, caller string, n int, unit string) {
	b.Helper()
	if n > 0 {
		b.ReportMetric(float64(calls.Count(kmsproxy.Call{Caller: caller, Op: "Decrypt"}))/float64(n), "kms-decrypts/"+unit)
	}
}
