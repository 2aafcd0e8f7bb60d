package graphsim

import (
	"fmt"
	"strconv"
)

// demoFirstID is where demo phone number IDs start: 15 digits, like
// Meta's (the ID of Meta's own sample number).
const demoFirstID = 106540352242922

// NewDemo returns a simulator whose WABA wabaID holds n phone numbers
// (1..1000) with realistic 15-digit IDs, display numbers in the fictional
// 555-01xx range and the verified name "Flowkey Demo". IDs are the same on
// every call, so scripts and docs can name them.
func NewDemo(token, wabaID string, n int) (*Sim, error) {
	return NewDemoOptions(Options{Token: token}, wabaID, n)
}

// NewDemoOptions is NewDemo for a simulator with opts, for example with
// its own clock.
func NewDemoOptions(opts Options, wabaID string, n int) (*Sim, error) {
	if n < 1 || n > 1000 {
		return nil, &InputError{Field: "n", Problem: fmt.Sprintf("is %d", n), Fix: "ask for 1 to 1000 phone numbers"}
	}
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := s.AddWABA(wabaID); err != nil {
		return nil, err
	}
	for _, pn := range DemoNumbers(wabaID, n) {
		if err := s.AddPhoneNumber(wabaID, pn.ID, pn.DisplayPhoneNumber, pn.VerifiedName); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// DemoNumbers are the numbers NewDemo creates.
func DemoNumbers(wabaID string, n int) []PhoneNumber {
	out := make([]PhoneNumber, 0, max(n, 0))
	for i := range max(n, 0) {
		out = append(out, PhoneNumber{
			ID:                 strconv.FormatInt(demoFirstID+int64(i)*7919, 10),
			WABA:               wabaID,
			DisplayPhoneNumber: fmt.Sprintf("+1 %03d-555-01%02d", 202+i/100, i%100),
			VerifiedName:       "Flowkey Demo",
		})
	}
	return out
}
