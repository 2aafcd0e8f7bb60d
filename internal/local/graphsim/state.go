package graphsim

import "time"

// State is a snapshot of the simulator for humans and tools. It carries
// fingerprints, never keys or the token.
type State struct {
	Numbers        []NumberState `json:"numbers"`
	WABAs          []WABAState   `json:"wabas"`
	Lag            string        `json:"lag"` // for every number without its own
	MismatchForced bool          `json:"mismatch_forced"`
	Latency        string        `json:"latency"`
	Faults         []FaultSpec   `json:"faults"`
	Budgets        []BudgetSpec  `json:"budgets"`
	Calls          Calls         `json:"calls"`
	InFlight       int           `json:"in_flight"` // see Sim.InFlight
	// Tokens counts the tokens added with AddToken; the tokens themselves
	// are never shown.
	Tokens TokenScopes `json:"tokens"`
}

// NumberState is one phone number in State.
type NumberState struct {
	ID                 string    `json:"id"`
	WABA               string    `json:"waba,omitempty"`
	DisplayPhoneNumber string    `json:"display_phone_number"`
	VerifiedName       string    `json:"verified_name"`
	Key                *KeyState `json:"key"`          // what Meta holds; nil: none
	PreviousKey        *KeyState `json:"previous_key"` // the one before it
	// Served is what GET answers now, lag and forced MISMATCH applied.
	Served         ServedState `json:"served"`
	Lag            string      `json:"lag"`
	MismatchForced bool        `json:"mismatch_forced"`
}

// KeyState identifies a key by fingerprint (hex SHA-256 of its PKIX DER).
type KeyState struct {
	Fingerprint string    `json:"fingerprint"`
	Status      string    `json:"business_public_key_signature_status"`
	Since       time.Time `json:"since"`
}

// ServedState is a GET answer by fingerprint. Fingerprint is "" when the
// answer has no key or a blank one.
type ServedState struct {
	Keyed       bool   `json:"keyed"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Status      string `json:"business_public_key_signature_status,omitempty"`
}

// WABAState is one WABA in State with its numbers in list order.
type WABAState struct {
	ID      string   `json:"id"`
	Numbers []string `json:"numbers"`
}

// State returns a snapshot of the simulator.
func (s *Sim) State() State {
	faults := s.Faults()
	budgets := s.Budgets()
	calls := s.Calls()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := State{Lag: s.lagAll.String(), MismatchForced: s.mismatchAll, Latency: s.latency.String(), Calls: calls, InFlight: s.inFlight, Tokens: s.tokenScopesLocked(),
		Numbers: []NumberState{}, WABAs: []WABAState{}, Faults: []FaultSpec{}, Budgets: []BudgetSpec{}}
	wabaNumbers := map[string][]string{}
	for _, n := range s.sortedNumbersLocked() {
		ns := NumberState{ID: n.id, WABA: n.waba, DisplayPhoneNumber: n.display, VerifiedName: n.verifiedName, MismatchForced: n.mismatch}
		lag := s.lagAll
		if n.lag != nil {
			lag = *n.lag
		}
		ns.Lag = lag.String()
		if k := len(n.history); k > 0 {
			ns.Key = keyState(n.history[k-1])
			if k > 1 {
				ns.PreviousKey = keyState(n.history[k-2])
			}
		}
		i := s.servedIndexLocked(n, now)
		reg := s.viewLocked(n, i)
		ns.Served = ServedState{Keyed: reg.Keyed, Status: reg.Status}
		if reg.Keyed && reg.BusinessPublicKey != blankKey {
			ns.Served.Fingerprint = Fingerprint(n.history[i].der)
		}
		st.Numbers = append(st.Numbers, ns)
		if n.waba != "" {
			wabaNumbers[n.waba] = append(wabaNumbers[n.waba], n.id)
		}
	}
	for _, w := range s.sortedWABAsLocked() {
		nums := wabaNumbers[w.id]
		if nums == nil {
			nums = []string{}
		}
		st.WABAs = append(st.WABAs, WABAState{ID: w.id, Numbers: nums})
	}
	for _, f := range faults {
		st.Faults = append(st.Faults, toFaultJSON(f))
	}
	for _, b := range budgets {
		st.Budgets = append(st.Budgets, toBudgetJSON(b))
	}
	return st
}

func keyState(e keyEntry) *KeyState {
	return &KeyState{Fingerprint: Fingerprint(e.der), Status: e.status, Since: e.at}
}
