package kmsproxy

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// Results a Call records besides an exception's __type.
const (
	ResultOK      = "OK"
	ResultDropped = "dropped" // local-kms unreachable, or the client gave up
)

// Call is one kind of KMS call the proxy answered.
type Call struct {
	// Caller is the access key ID that signed the call ("" unsigned).
	Caller string `json:"caller"`
	// Op is the operation, e.g. "Decrypt".
	Op string `json:"op"`
	// Key is the key the call named, as a key ID or alias name ("" none).
	Key string `json:"key,omitempty"`
	// Result is ResultOK, ResultDropped, the exception's __type (from a
	// fault, a correction or local-kms), or "HTTP <status>".
	Result string `json:"result"`
}

// Calls counts calls by kind.
type Calls map[Call]int

func (p *Proxy) count(c Call) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[c]++
	p.wakeLocked()
}

// wakeLocked wakes the waiters of Wait and WaitFault.
func (p *Proxy) wakeLocked() {
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// changedLocked is the channel the next change closes.
func (p *Proxy) changedLocked() chan struct{} {
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

// Wait blocks until cond holds for the counts, checked after every call
// counted, or ctx ends; it returns the counts cond last saw.
func (p *Proxy) Wait(ctx context.Context, cond func(Calls) bool) (Calls, error) {
	for {
		p.mu.Lock()
		c, changed := maps.Clone(p.calls), p.changedLocked()
		p.mu.Unlock()
		if cond(c) {
			return c, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

// Calls returns the counts so far.
func (p *Proxy) Calls() Calls {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls)
}

// ResetCounters forgets every call counted.
func (p *Proxy) ResetCounters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = Calls{}
}

// Count sums the calls that match: an empty field of match matches every
// value, and Key matches by key ID whichever way either names the key.
func (c Calls) Count(match Call) int {
	key := keyRef(match.Key)
	n := 0
	for k, v := range c {
		if (match.Caller == "" || match.Caller == k.Caller) && (match.Op == "" || match.Op == k.Op) &&
			(key == "" || key == k.Key) && (match.Result == "" || match.Result == k.Result) {
			n += v
		}
	}
	return n
}

// Sub is what was counted since earlier, Calls of the same proxy.
func (c Calls) Sub(earlier Calls) Calls {
	out := Calls{}
	for k, v := range c {
		if n := v - earlier[k]; n != 0 {
			out[k] = n
		}
	}
	return out
}

// CallCount is a Call and how many there were, for listings.
type CallCount struct {
	Call
	Count int `json:"count"`
}

// List is the counts in a stable order: by caller, op, key, result.
func (c Calls) List() []CallCount {
	out := make([]CallCount, 0, len(c))
	for k, v := range c {
		out = append(out, CallCount{Call: k, Count: v})
	}
	slices.SortFunc(out, func(a, b CallCount) int {
		for _, d := range [][2]string{{a.Caller, b.Caller}, {a.Op, b.Op}, {a.Key, b.Key}, {a.Result, b.Result}} {
			if c := strings.Compare(d[0], d[1]); c != 0 {
				return c
			}
		}
		return 0
	})
	return out
}
