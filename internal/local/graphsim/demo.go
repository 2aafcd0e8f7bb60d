package graphsim

import (
	"fmt"
	"hash/fnv"
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

// fleetIDSpan is the range fleet phone number IDs are drawn from: 15
// digits, like Meta's, from 100000000000000 up.
const (
	fleetIDBase = 100_000_000_000_000
	fleetIDSpan = 800_000_000_000_000
)

// FleetNumbers are n (1..1000) phone numbers for WABA wabaID that differ
// from every other WABA's: their 15-digit IDs start at a point derived
// from a hash of the WABA ID, so a fleet of WABAs built with it has
// distinct numbers (DemoNumbers gives every WABA the same IDs). The IDs
// are the same on every call. Two WABAs whose ranges happen to meet (about
// one chance in 10^8 for a thousand WABAs) make AddDemoWABA fail rather
// than share a number.
func FleetNumbers(wabaID string, n int) []PhoneNumber {
	h := fnv.New64a()
	h.Write([]byte(wabaID))
	// Room for 1000 numbers 7919 apart above the start.
	first := fleetIDBase + int64(h.Sum64()%uint64(fleetIDSpan-1000*7919))
	out := make([]PhoneNumber, 0, max(n, 0))
	for i := range max(n, 0) {
		id := first + int64(i)*7919
		out = append(out, PhoneNumber{
			ID:                 strconv.FormatInt(id, 10),
			WABA:               wabaID,
			DisplayPhoneNumber: fmt.Sprintf("+1 %03d-555-%04d", 202+id%700, i),
			VerifiedName:       "Flowkey Demo " + wabaID,
		})
	}
	return out
}

// AddDemoWABA adds WABA wabaID with the n (1..1000) numbers FleetNumbers
// gives it, and returns them. An ID already in use (a number of another
// WABA, or the WABA itself) fails the call, with nothing added.
func (s *Sim) AddDemoWABA(wabaID string, n int) ([]PhoneNumber, error) {
	if n < 1 || n > 1000 {
		return nil, &InputError{Field: "n", Problem: fmt.Sprintf("is %d", n), Fix: "ask for 1 to 1000 phone numbers"}
	}
	if err := checkID("waba", wabaID); err != nil {
		return nil, err
	}
	nums := FleetNumbers(wabaID, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.wabas[wabaID]; ok {
		return nil, &InputError{Field: "waba", Problem: fmt.Sprintf("WABA %s already exists", wabaID), Fix: "add each WABA of a fleet once"}
	}
	if _, ok := s.numbers[wabaID]; ok {
		return nil, &InputError{Field: "waba", Problem: fmt.Sprintf("%s is already a phone number ID", wabaID), Fix: "use an ID no phone number has"}
	}
	for _, pn := range nums {
		if _, taken := s.numbers[pn.ID]; taken || s.wabas[pn.ID] != nil || pn.ID == wabaID {
			return nil, &InputError{Field: "waba", Problem: fmt.Sprintf("the numbers of WABA %s meet an ID in use (%s)", wabaID, pn.ID), Fix: "choose another WABA ID"}
		}
	}
	s.addWABALocked(wabaID)
	for _, pn := range nums {
		s.numbers[pn.ID] = &numberState{id: pn.ID, waba: wabaID, display: pn.DisplayPhoneNumber, verifiedName: pn.VerifiedName, seq: s.nextSeq()}
	}
	return nums, nil
}
