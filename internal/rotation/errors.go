package rotation

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
)

// throttleCodes are the AWS error codes of a throttled request that
// Secrets Manager and KMS answer (the SDK's standard retryer retries the
// same codes).
var throttleCodes = map[string]bool{"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true, "RequestLimitExceeded": true}

// IsThrottled reports whether err is, or wraps, an AWS throttling error.
func IsThrottled(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && throttleCodes[apiErr.ErrorCode()]
}

// awsError is a failed request of a step, "<what>: <err>"; a throttled one
// also says that nothing is lost and what to change.
func awsError(what string, err error) error {
	if !IsThrottled(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w; throttled by AWS past the retries that fit in the step's time: nothing is lost, "+
		"the step changed nothing it cannot resume and Secrets Manager reattempts the whole rotation later; fix: if it persists, "+
		"start fewer rotations at once (a fleet's are spread by its schedules; see internal/fleet) or ask for a higher quota in Service Quotas", what, err)
}

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

// StepError reports, per phone number, why setSecret or testSecret failed,
// what the rollback did, and so what each number is left holding. Its text
// names the first few numbers in full and counts the rest by cause, so that
// a failure of thousands of numbers stays one readable log event.
type StepError struct {
	Step, Secret, Token string
	Total               int
	Failed              []NumberResult
	RolledBack          []string
	RollbackFailed      []NumberResult
	Note                string

	mode stepMode
}

// stepMode is what the step could do about its failures.
type stepMode int

const (
	// nothingSwitched: verification only, or no number was switched, so
	// nothing was put back.
	nothingSwitched stepMode = iota
	// rolledBack: the AWSCURRENT key was put back where the step may have
	// switched a number.
	rolledBack
	// noCurrentKey: the first rotation, with no AWSCURRENT key to put back.
	noCurrentKey
)

// MismatchError is a number that does not hold the expected key with
// status VALID.
type MismatchError struct {
	Want, Held, Status string
	// KeyOmitted is a VALID answer without a key (Meta's v23 reference
	// example has that shape): Meta holds a key it did not show.
	KeyOmitted bool
	// KeyProblem says why the key Meta returned could not be read.
	KeyProblem string
}

func (e *MismatchError) Error() string {
	switch {
	case e.KeyOmitted:
		return fmt.Sprintf("Meta answered VALID but returned no key, so it holds a key flowkey cannot see; want %s with status VALID", e.Want)
	case e.Held == "" && e.KeyProblem != "":
		return fmt.Sprintf("Meta holds a key flowkey cannot read (%s) with status %q, want %s with status VALID", e.KeyProblem, e.Status, e.Want)
	}
	held := e.Held
	if held == "" {
		held = "no readable key"
	}
	return fmt.Sprintf("Meta holds %s with status %q, want %s with status VALID", held, e.Status, e.Want)
}

// cause is a MismatchError's kind, for counting failures by cause.
func (e *MismatchError) cause() string {
	switch {
	case e.KeyOmitted:
		return "VALID without a key"
	case e.Held == "" && e.KeyProblem != "":
		return "an unreadable key"
	case e.Held == "":
		return fmt.Sprintf("no key, status %s", e.Status)
	case e.Held != e.Want:
		return "another key"
	}
	return fmt.Sprintf("status %s", e.Status)
}
