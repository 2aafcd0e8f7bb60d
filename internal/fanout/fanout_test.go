package fanout

import (
	"context"
	"strconv"
	"sync"
	"testing"
)

func TestEachKeepsOrderAndTheBound(t *testing.T) {
	const limit = 3
	items := make([]string, 20)
	for i := range items {
		items[i] = strconv.Itoa(i)
	}
	var mu sync.Mutex
	running, peak := 0, 0
	// Every call waits until limit calls run together (or all that remain),
	// so the test sees the bound reached without timing.
	gate := make(chan struct{})
	var once sync.Once
	out := Each(context.Background(), limit, items, func(_ context.Context, s string) string {
		mu.Lock()
		running++
		peak = max(peak, running)
		if running == limit {
			once.Do(func() { close(gate) })
		}
		mu.Unlock()
		<-gate
		mu.Lock()
		running--
		mu.Unlock()
		return "r" + s
	})
	for i, r := range out {
		if r != "r"+items[i] {
			t.Fatalf("result %d = %q, want %q", i, r, "r"+items[i])
		}
	}
	if peak != limit {
		t.Errorf("peak concurrency %d, want %d", peak, limit)
	}
}

func TestEachWithAZeroLimitStillRuns(t *testing.T) {
	out := Each(context.Background(), 0, []string{"a", "b"}, func(_ context.Context, s string) string { return s })
	if len(out) != 2 || out[0] != "a" || out[1] != "b" {
		t.Fatalf("got %v", out)
	}
}
