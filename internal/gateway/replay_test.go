package gateway

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestReplayCacheWindowAndBound(t *testing.T) {
	c := newReplayCache(time.Minute, 3)
	sum := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i)}) }
	at := testNow
	if !c.add(sum(1), at) || c.add(sum(1), at.Add(59*time.Second)) {
		t.Fatal("a copy within the window was accepted")
	}
	if !c.seenRecently(sum(1), at) || c.seenRecently(sum(2), at) {
		t.Fatal("seenRecently is wrong")
	}
	// After the window the body is new again.
	if !c.add(sum(1), at.Add(time.Minute)) {
		t.Fatal("a body past the window was refused")
	}
	// The bound: a fourth body pushes the oldest out.
	at = at.Add(time.Minute)
	for i := 2; i <= 4; i++ {
		if !c.add(sum(i), at) {
			t.Fatalf("body %d refused", i)
		}
	}
	if len(c.seen) != 3 || c.seenRecently(sum(1), at) || !c.seenRecently(sum(4), at) {
		t.Fatalf("bound not kept: %d entries", len(c.seen))
	}
	// Many bodies: memory stays bounded.
	for i := range 1000 {
		c.add(sha256.Sum256([]byte{byte(i), byte(i >> 8), 9}), at)
	}
	if len(c.seen) != 3 || len(c.queue) > 2*3+1 {
		t.Fatalf("%d entries, queue %d", len(c.seen), len(c.queue))
	}
}
