package rotation

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flowkey/flowkey/internal/graph"
)

// NumberResult is what one step did to one phone number.
type NumberResult struct {
	PhoneNumberID string
	Err           error
	// Held and Status are what Meta last reported (testSecret only).
	Held   string // fingerprint, short form; "" when blank or unreadable
	Status string
	// definite means the failure certainly changed nothing at Meta.
	definite bool
}

func (n NumberResult) describe() string {
	var ge *graph.Error
	if errors.As(n.Err, &ge) {
		s := fmt.Sprintf("%s (graph code %d", n.PhoneNumberID, ge.Code)
		if ge.Subcode != 0 {
			s += fmt.Sprintf(" subcode %d", ge.Subcode)
		}
		if ge.HTTPStatus != 0 {
			s += fmt.Sprintf(", HTTP %d", ge.HTTPStatus)
		}
		return s + "): " + n.Err.Error()
	}
	return n.PhoneNumberID + ": " + n.Err.Error()
}

// StepError reports, per phone number, why setSecret or testSecret failed
// and what the rollback did.
type StepError struct {
	Step, Secret, Token string
	Total               int
	Failed              []NumberResult
	RolledBack          []string
	RollbackFailed      []NumberResult
	Note                string
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d phone numbers failed: ", len(e.Failed), e.Total)
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.describe())
	}
	if len(e.RolledBack) > 0 {
		fmt.Fprintf(&b, ". Put the AWSCURRENT key back on %d numbers (%s)", len(e.RolledBack), strings.Join(e.RolledBack, ", "))
	}
	if len(e.RollbackFailed) > 0 {
		fmt.Fprintf(&b, ". Could not put the AWSCURRENT key back on %d numbers: ", len(e.RollbackFailed))
		for i, f := range e.RollbackFailed {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.describe())
		}
	}
	if e.Note != "" {
		b.WriteString(". " + e.Note)
	}
	return b.String()
}

// MismatchError is a number that does not hold the expected key with
// status VALID.
type MismatchError struct {
	Want, Held, Status string
}

func (e *MismatchError) Error() string {
	held := e.Held
	if held == "" {
		held = "no readable key"
	}
	return fmt.Sprintf("Meta holds %s with status %q, want %s with status VALID", held, e.Status, e.Want)
}
