package tenants

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

// BenchmarkRingMemory measures the heap one loaded ring of three PEM-held
// RSA-2048 keys (AWSCURRENT, AWSPENDING, AWSPREVIOUS) keeps, the figure
// the package documentation and ENDPOINT_RING_CACHE's sizing use: each
// ring parses its own copy of the keys, as it does in the endpoint.
func BenchmarkRingMemory(b *testing.B) {
	const rings = 200
	sm := secretsfake.New(b)
	for i := range rings {
		addTenant(b, sm, fmt.Sprintf("t%03d", i), 3)
	}
	var perRing float64
	for b.Loop() {
		c := newCache(b, sm, rings, &testClock{now: time.Now()})
		before := heap()
		for i := range rings {
			if _, err := c.Tenant(context.Background(), fmt.Sprintf("t%03d", i)); err != nil {
				b.Fatal(err)
			}
		}
		perRing = float64(heap()-before) / rings
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perRing, "bytes/ring")
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
