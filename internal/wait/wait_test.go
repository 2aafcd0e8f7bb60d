package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(canceled, 1h) = %v, want context.Canceled at once", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(canceled, 0) = %v, want the context's error", err)
	}
}

func TestSleepWaitsWhenTheContextLives(t *testing.T) {
	if err := Sleep(t.Context(), time.Microsecond); err != nil {
		t.Errorf("Sleep(1µs) = %v", err)
	}
	if err := Sleep(t.Context(), -time.Second); err != nil {
		t.Errorf("Sleep(negative) = %v", err)
	}
}
