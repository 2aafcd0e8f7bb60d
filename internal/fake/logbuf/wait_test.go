package logbuf

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitReturnsOnceTheOutputArrives(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("starting\n"))
	go func() {
		for _, line := range []string{"one\n", "two\n", "ready\n"} {
			_, _ = b.Write([]byte(line))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := b.Wait(ctx, func(s string) bool { return strings.Contains(s, "ready") })
	if err != nil || !strings.HasPrefix(got, "starting\n") || !strings.HasSuffix(got, "ready\n") {
		t.Fatalf("Wait = %q, %v", got, err)
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("nothing useful\n"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := b.Wait(ctx, func(s string) bool { return strings.Contains(s, "ready") })
	if !errors.Is(err, context.Canceled) || got != "nothing useful\n" {
		t.Fatalf("Wait = %q, %v; want what was written and the context's error", got, err)
	}
}
