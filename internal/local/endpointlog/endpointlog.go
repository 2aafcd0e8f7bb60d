// Package endpointlog reads the Flows endpoint's JSON log lines out of its
// process output, so that the local stack's tests and demo can report what
// the endpoint did: requests by status and by key label, RSA operations,
// key-ring refreshes.
//
// The endpoint logs one slog JSON event per request (functions/endpoint):
// action, screen, outcome, status, key_label, rsa_ops, duration_ms,
// backend_ms, refreshed, signature_check. A Recorder counts every line that
// is a JSON object with numeric "status" and "rsa_ops" members; other
// lines (EMF metrics, the RIE's START/END/REPORT, other log events) only
// count in Lines, and those at level ERROR in Errors.
package endpointlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
)

// Totals are the counts of the lines read so far.
type Totals struct {
	// Requests is the number of per-request lines.
	Requests int
	// ByStatus counts requests by HTTP status, ByLabel by the label of the
	// key that decrypted ("" when none did), ByOutcome by outcome.
	ByStatus  map[int]int
	ByLabel   map[string]int
	ByOutcome map[string]int
	// RSAOps is the sum of rsa_ops; Refreshes counts requests that ran a
	// key-ring refresh.
	RSAOps, Refreshes int
	// SignatureOff counts requests served with the signature check off.
	SignatureOff int
	// Lines is every line read; Errors those at level ERROR.
	Lines, Errors int
}

func newTotals() Totals {
	return Totals{ByStatus: map[int]int{}, ByLabel: map[string]int{}, ByOutcome: map[string]int{}}
}

// RSAOpsPerRequest is RSAOps / Requests (0 without requests).
func (t Totals) RSAOpsPerRequest() float64 {
	if t.Requests == 0 {
		return 0
	}
	return float64(t.RSAOps) / float64(t.Requests)
}

// Sub is what was logged since earlier, Totals of the same Recorder.
func (t Totals) Sub(earlier Totals) Totals {
	d := Totals{
		Requests: t.Requests - earlier.Requests, RSAOps: t.RSAOps - earlier.RSAOps,
		Refreshes: t.Refreshes - earlier.Refreshes, SignatureOff: t.SignatureOff - earlier.SignatureOff,
		Lines: t.Lines - earlier.Lines, Errors: t.Errors - earlier.Errors,
		ByStatus: sub(t.ByStatus, earlier.ByStatus), ByLabel: sub(t.ByLabel, earlier.ByLabel), ByOutcome: sub(t.ByOutcome, earlier.ByOutcome),
	}
	return d
}

func sub[K comparable](now, before map[K]int) map[K]int {
	out := map[K]int{}
	for k, v := range now {
		if n := v - before[k]; n != 0 {
			out[k] = n
		}
	}
	return out
}

func (t Totals) clone() Totals {
	t.ByStatus, t.ByLabel, t.ByOutcome = maps.Clone(t.ByStatus), maps.Clone(t.ByLabel), maps.Clone(t.ByOutcome)
	return t
}

// Recorder is an io.Writer for the endpoint's output, safe for concurrent
// use. Lines may arrive in any chunks; a line may carry a prefix before its
// JSON object, such as the "[endpoint] " the local stack puts there.
type Recorder struct {
	mu      sync.Mutex
	partial []byte
	totals  Totals
	inited  bool
	// changed is closed, and replaced, whenever a request line is counted.
	changed chan struct{}
}

func (r *Recorder) initLocked() {
	if !r.inited {
		r.totals, r.changed, r.inited = newTotals(), make(chan struct{}), true
	}
}

// Write reads whole lines out of p; the rest waits for the next Write.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	r.partial = append(r.partial, p...)
	counted := false
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		if r.readLineLocked(r.partial[:i]) {
			counted = true
		}
		r.partial = r.partial[i+1:]
	}
	if counted {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return len(p), nil
}

// requestLine is the part of a per-request line the Recorder counts.
type requestLine struct {
	Level          string   `json:"level"`
	Status         *int     `json:"status"`
	RSAOps         *float64 `json:"rsa_ops"`
	KeyLabel       string   `json:"key_label"`
	Outcome        string   `json:"outcome"`
	Refreshed      bool     `json:"refreshed"`
	SignatureCheck string   `json:"signature_check"`
}

// readLineLocked counts one line and reports whether it was a request.
func (r *Recorder) readLineLocked(line []byte) bool {
	r.totals.Lines++
	i := bytes.IndexByte(line, '{')
	if i < 0 {
		return false
	}
	var l requestLine
	if json.Unmarshal(line[i:], &l) != nil {
		return false
	}
	if l.Level == "ERROR" {
		r.totals.Errors++
	}
	if l.Status == nil || l.RSAOps == nil {
		return false
	}
	t := &r.totals
	t.Requests++
	t.ByStatus[*l.Status]++
	t.ByLabel[l.KeyLabel]++
	t.ByOutcome[l.Outcome]++
	t.RSAOps += int(*l.RSAOps)
	if l.Refreshed {
		t.Refreshes++
	}
	if l.SignatureCheck == "off" {
		t.SignatureOff++
	}
	return true
}

// Totals returns the counts so far.
func (r *Recorder) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initLocked()
	return r.totals.clone()
}

// WaitRequests blocks until at least n request lines have been read, or
// ctx ends: the endpoint's output reaches the Recorder through pipes, a
// little after the HTTP answer that the line describes.
func (r *Recorder) WaitRequests(ctx context.Context, n int) (Totals, error) {
	t, err := r.Wait(ctx, func(t Totals) bool { return t.Requests >= n })
	if err != nil {
		return t, fmt.Errorf("endpointlog: %d request lines read, waiting for %d: %w", t.Requests, n, err)
	}
	return t, nil
}

// Wait blocks until cond holds for the totals, checked after every request
// line, or ctx ends; it returns the totals cond last saw.
func (r *Recorder) Wait(ctx context.Context, cond func(Totals) bool) (Totals, error) {
	for {
		r.mu.Lock()
		r.initLocked()
		t, changed := r.totals.clone(), r.changed
		r.mu.Unlock()
		if cond(t) {
			return t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return t, ctx.Err()
		}
	}
}
