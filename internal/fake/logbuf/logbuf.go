// Package logbuf collects what concurrent writers (child processes, slog
// handlers, servers) print, so that tests and the demo can read it back
// while the writers are still running.
package logbuf

import (
	"bytes"
	"context"
	"sync"
)

// Buffer is a bytes.Buffer that is safe for concurrent use. The zero value
// is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// grew is closed, and replaced, by every Write, so that Wait sleeps
	// until there is something new to look at.
	grew chan struct{}
}

// Write appends p; one call is never interleaved with another.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	if b.grew != nil {
		close(b.grew)
		b.grew = nil
	}
	return n, err
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Wait returns what was written once done reports true of it, or what was
// written so far and ctx's error when ctx ends first. Output copied from a
// child process arrives after the event that a test waits for; Wait lets
// the test wait for the output itself instead of sleeping.
func (b *Buffer) Wait(ctx context.Context, done func(string) bool) (string, error) {
	for {
		b.mu.Lock()
		s := b.b.String()
		if b.grew == nil {
			b.grew = make(chan struct{})
		}
		grew := b.grew
		b.mu.Unlock()
		if done(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-grew:
		}
	}
}
