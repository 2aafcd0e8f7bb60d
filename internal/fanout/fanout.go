// Package fanout runs one call per phone number, a bounded number at once.
// Both the rotation steps and the operator commands use it, so every path
// that talks to Meta respects the same GRAPH_CONCURRENCY.
package fanout

import (
	"context"
	"sync"
)

// Each runs fn for every item, at most limit at once (limit < 1 means 1),
// and returns the results in the order of items.
func Each[T any](ctx context.Context, limit int, items []string, fn func(context.Context, string) T) []T {
	out := make([]T, len(items))
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = fn(ctx, item)
		}()
	}
	wg.Wait()
	return out
}
