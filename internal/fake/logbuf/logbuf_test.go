package logbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAreNeitherLostNorInterleaved(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := strings.Repeat(string(rune('a'+i)), 64) + "\n"
			for range 100 {
				_, _ = b.Write([]byte(line))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if len(l) != 64 || strings.Count(l, l[:1]) != 64 {
			t.Fatalf("interleaved line %q", l)
		}
	}
}
