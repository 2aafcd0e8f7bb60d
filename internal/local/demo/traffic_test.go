package demo

import (
	"testing"
	"time"
)

func TestHumanDurationsDropZeroUnits(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 50 * time.Millisecond: "50ms", 90 * time.Minute: "1h30m", 2 * time.Second: "2s", time.Hour + time.Second: "1h0m1s"} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
