package gateway

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Defaults of the replay cache.
const (
	DefaultReplayWindow  = 10 * time.Minute
	DefaultReplayEntries = 10000
)

// replayCache remembers the SHA-256 of the bodies this instance decrypted,
// for a window and up to a number of entries (the oldest go first). It is
// best effort: another instance of the function has its own, and a body
// older than the window or pushed out by newer ones is forgotten. A
// WhatsApp client never sends one body twice (every request has a fresh AES
// key and IV), so what it refuses is a copy.
type replayCache struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[[sha256.Size]byte]time.Time
	queue []replayEntry // insertion order, from head on
	head  int
}

type replayEntry struct {
	sum [sha256.Size]byte
	at  time.Time
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, seen: make(map[[sha256.Size]byte]time.Time)}
}

// seenRecently reports whether sum was added within the window.
func (c *replayCache) seenRecently(sum [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[sum]
	return ok && now.Sub(at) < c.window
}

// add records sum, and reports false if it was there already (within the
// window): check and insert are one step, so two copies sent at once cannot
// both pass.
func (c *replayCache) add(sum [sha256.Size]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.seen[sum]; ok && now.Sub(at) < c.window {
		return false
	}
	for c.head < len(c.queue) && now.Sub(c.queue[c.head].at) >= c.window {
		c.pop()
	}
	for len(c.seen) >= c.max {
		c.pop()
	}
	c.seen[sum] = now
	c.queue = append(c.queue, replayEntry{sum, now})
	return true
}

// pop drops the oldest queue entry, and its map entry unless the sum was
// added again since.
func (c *replayCache) pop() {
	e := c.queue[c.head]
	c.head++
	if at, ok := c.seen[e.sum]; ok && at.Equal(e.at) {
		delete(c.seen, e.sum)
	}
	if c.head > len(c.queue)/2 {
		c.queue = append(c.queue[:0], c.queue[c.head:]...)
		c.head = 0
	}
}
