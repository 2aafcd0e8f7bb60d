package graphsim

import (
	"maps"
	"slices"
	"time"
)

// Op is what a Graph call does, for counters and fault matching.
type Op string

const (
	OpUpload Op = "upload" // POST /{number}/whatsapp_business_encryption
	OpGet    Op = "get"    // GET /{number}/whatsapp_business_encryption
	OpList   Op = "list"   // GET /{waba}/phone_numbers
	OpOther  Op = "other"  // anything else that reached the Graph handler
	OpAny    Op = "any"    // faults only: every op
)

// OpCounts counts calls by op.
type OpCounts struct {
	Upload int `json:"upload"`
	Get    int `json:"get"`
	List   int `json:"list"`
	Other  int `json:"other"`
}

func (c *OpCounts) add(op Op) {
	switch op {
	case OpUpload:
		c.Upload++
	case OpGet:
		c.Get++
	case OpList:
		c.List++
	default:
		c.Other++
	}
}

// Total is the sum over ops.
func (c OpCounts) Total() int { return c.Upload + c.Get + c.List + c.Other }

// Calls counts every request that reached the Graph handler, including
// those answered by a fault, refused for auth or the budget, or abandoned
// by the client.
type Calls struct {
	OpCounts
	// ByObject is keyed by the ID in the path: a phone number or WABA ID
	// (also IDs the simulator does not know).
	ByObject map[string]OpCounts `json:"by_object"`
}

// Of returns the counts for one phone number or WABA ID.
func (c Calls) Of(object string) OpCounts { return c.ByObject[object] }

func (s *Sim) countLocked(op Op, object string) {
	s.calls.add(op)
	if object != "" {
		oc := s.calls.ByObject[object]
		oc.add(op)
		s.calls.ByObject[object] = oc
	}
}

// Calls returns a snapshot of the counters.
func (s *Sim) Calls() Calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Calls{OpCounts: s.calls.OpCounts, ByObject: maps.Clone(s.calls.ByObject)}
}

// InFlight is the number of Graph calls that have reached the handler and
// are not on record yet: held by latency or a delay, or being answered.
// Zero means that no call can still change what Meta holds, which a check
// of Keys against the secret needs after a client was killed mid-call (its
// abandoned call ends when the handler sees the connection go).
func (s *Sim) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// ResetCounters zeroes the call counters (not the budgets).
func (s *Sim) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = Calls{ByObject: map[string]OpCounts{}}
}

// Request is one Graph call as the simulator answered it. Path carries no
// query string, so never the access_token; Fields is the one query
// parameter kept, so tests can see what a client asked for.
type Request struct {
	At       time.Time     `json:"at"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Fields   string        `json:"fields,omitempty"` // the "fields" query parameter, as sent
	Op       Op            `json:"op"`
	Object   string        `json:"object,omitempty"`
	Status   int           `json:"status"`         // 0: no response (dropped or client gone)
	Code     int           `json:"code,omitempty"` // Graph error code, if one was sent
	Outcome  string        `json:"outcome"`        // "ok", "graph error", "fault: drop", ...
	Duration time.Duration `json:"duration_ns"`
}

func (s *Sim) recordLocked(r Request) {
	if len(s.requests) < requestLogLen {
		s.requests = append(s.requests, r)
		return
	}
	s.requests[s.reqNext] = r
	s.reqNext = (s.reqNext + 1) % requestLogLen
}

// Requests returns the last 512 Graph calls, oldest first.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) < requestLogLen {
		return slices.Clone(s.requests)
	}
	return append(slices.Clone(s.requests[s.reqNext:]), s.requests[:s.reqNext]...)
}
