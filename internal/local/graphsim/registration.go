package graphsim

import (
	"fmt"
	"slices"
	"time"
)

// Signature statuses Meta reports for a stored key.
const (
	StatusValid    = "VALID"
	StatusMismatch = "MISMATCH"
)

// blankKey is what Meta's own sample returns as business_public_key next to
// MISMATCH.
const blankKey = " "

// keyEntry is one key Meta held from time at on.
type keyEntry struct {
	pem    string
	der    []byte
	status string
	at     time.Time
}

// SetKey makes Meta hold pemKey for a number as if someone uploaded it
// behind flowkey's back: it is validated like an upload, is subject to the
// same lag, and counts no call. status "" means VALID.
func (s *Sim) SetKey(id, pemKey, status string) error {
	switch status {
	case "":
		status = StatusValid
	case StatusValid, StatusMismatch:
	default:
		return &InputError{Field: "status", Problem: fmt.Sprintf("%q is not a signature status", status), Fix: `use "VALID", "MISMATCH" or "" for VALID`}
	}
	der, problem := parsePublicKeyPEM(pemKey)
	if problem != "" {
		return &InputError{Field: "business_public_key", Problem: problem, Fix: "give a 2048-bit RSA public key as a PEM PUBLIC KEY block"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.numbers[id]
	if !ok {
		return s.unknownNumber("number", id)
	}
	n.store(keyEntry{pem: pemKey, der: der, status: status, at: s.now()})
	s.log.Info("graphsim: key set behind the back", "number", id, "fingerprint", Fingerprint(der), "status", status)
	return nil
}

func (n *numberState) store(e keyEntry) {
	n.history = append(n.history, e)
	if len(n.history) > historyLen {
		n.history = slices.Delete(n.history, 0, len(n.history)-historyLen)
	}
}

// Reregister does to a number what a re-registration does at Meta: every
// signature it holds goes stale, so GET reports MISMATCH until the next
// upload.
func (s *Sim) Reregister(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.numbers[id]
	if !ok {
		return s.unknownNumber("number", id)
	}
	for i := range n.history {
		n.history[i].status = StatusMismatch
	}
	return nil
}

// SetLag makes GET keep answering with the key Meta held before an upload
// for d after it. number "" sets the lag of every number and clears
// per-number lags; d 0 removes the lag.
func (s *Sim) SetLag(number string, d time.Duration) error {
	if d < 0 {
		return &InputError{Field: "lag", Problem: fmt.Sprintf("%s is negative", d), Fix: "use 0 for no lag or a positive duration"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if number == "" {
		s.lagAll = d
		for _, n := range s.numbers {
			n.lag = nil
		}
		return nil
	}
	n, ok := s.numbers[number]
	if !ok {
		return s.unknownNumber("number", number)
	}
	n.lag = &d
	return nil
}

// SetMismatch forces GET to answer MISMATCH with a blank key, whatever is
// uploaded, until turned off. number "" applies to every number; turning it
// off for "" also clears every per-number flag.
func (s *Sim) SetMismatch(number string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if number == "" {
		s.mismatchAll = on
		if !on {
			for _, n := range s.numbers {
				n.mismatch = false
			}
		}
		return nil
	}
	n, ok := s.numbers[number]
	if !ok {
		return s.unknownNumber("number", number)
	}
	n.mismatch = on
	return nil
}

// Registration is what GET /{number}/whatsapp_business_encryption answers.
type Registration struct {
	Keyed bool `json:"keyed"` // false: data is empty, Meta holds no key
	// BusinessPublicKey is the PEM as uploaded, or " " with MISMATCH.
	BusinessPublicKey string `json:"business_public_key"`
	Status            string `json:"business_public_key_signature_status"`
}

// Registration returns what GET would answer for a number now, ignoring lag
// (but not forced MISMATCH).
func (s *Sim) Registration(id string) (Registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.numbers[id]
	if !ok {
		return Registration{}, s.unknownNumber("number", id)
	}
	return s.viewLocked(n, len(n.history)-1), nil
}

// viewLocked renders history entry i (-1: none) as GET shows it.
func (s *Sim) viewLocked(n *numberState, i int) Registration {
	if i < 0 {
		return Registration{}
	}
	e := n.history[i]
	if s.mismatchAll || n.mismatch || e.status == StatusMismatch {
		return Registration{Keyed: true, BusinessPublicKey: blankKey, Status: StatusMismatch}
	}
	return Registration{Keyed: true, BusinessPublicKey: e.pem, Status: e.status}
}

// servedIndexLocked is the history entry GET shows at now: the newest one
// that is older than the lag.
func (s *Sim) servedIndexLocked(n *numberState, now time.Time) int {
	lag := s.lagAll
	if n.lag != nil {
		lag = *n.lag
	}
	if lag == 0 {
		return len(n.history) - 1
	}
	cut := now.Add(-lag)
	for i := len(n.history) - 1; i >= 0; i-- {
		if !n.history[i].at.After(cut) {
			return i
		}
	}
	return -1
}

// Keys returns, per phone number, the PKIX DER of the key Meta holds now:
// the truth, regardless of lag or signature status. Numbers without a key
// are absent.
func (s *Sim) Keys() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.numbers))
	for id, n := range s.numbers {
		if len(n.history) > 0 {
			out[id] = slices.Clone(n.history[len(n.history)-1].der)
		}
	}
	return out
}
