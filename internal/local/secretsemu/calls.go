package secretsemu

import (
	"maps"
	"strings"
)

// Call is one kind of request the emulator counted: the access key ID it
// was signed with (from the SigV4 Authorization header's Credential; "" if
// the header names none) and its operation.
type Call struct {
	Caller string `json:"caller"`
	Op     string `json:"op"`
}

// Calls counts requests by Call: every request that named an operation,
// whatever its outcome.
type Calls map[Call]int

// Count sums the calls matching c, where an empty field matches any.
func (cs Calls) Count(c Call) int {
	n := 0
	for k, v := range cs {
		if (c.Caller == "" || c.Caller == k.Caller) && (c.Op == "" || c.Op == k.Op) {
			n += v
		}
	}
	return n
}

// Calls returns a snapshot of the request counters, so that a benchmark can
// say how many Secrets Manager calls each function made.
func (s *Server) Calls() Calls {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return maps.Clone(s.calls)
}

// ResetCalls zeroes the request counters.
func (s *Server) ResetCalls() {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.calls = Calls{}
}

func (s *Server) countCall(auth, op string) {
	caller := ""
	if _, rest, ok := strings.Cut(auth, "Credential="); ok {
		caller, _, _ = strings.Cut(rest, "/")
	}
	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.calls[Call{Caller: caller, Op: op}]++
}
