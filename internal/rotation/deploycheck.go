package rotation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// The deploy check. Creating or changing the rotation schedule makes
// CloudFormation call RotateSecret(RotateImmediately=false): Secrets
// Manager runs testSecret alone, on a pending copy of the current value,
// and a failure fails the deploy. Whoever deploys sees only the function's
// error message inside a CloudFormation event (how CloudFormation wraps or
// cuts it is not documented), and the rollback deletes the rotator's log
// group. So every testSecret failure that rolled nothing back is a
// *DeployCheckError: one line of at most DeployCheckMaxBytes that starts
// with DeployCheckPrefix and says the cause and the fix before the step's
// own account. A real rotation's testSecret that rolled back keeps its
// *StepError text: that is no deploy, and the rollback is the news.
const (
	// DeployCheckPrefix starts every deploy check message; infra/README.md
	// ("When the first deploy fails") documents it.
	DeployCheckPrefix = "flowkey deploy check failed: "
	// DeployCheckMaxBytes bounds the message, details included.
	DeployCheckMaxBytes = 1024
)

// maxHeadPart bounds the cause and the fix each, so that two long ARNs
// still leave the details room within DeployCheckMaxBytes.
const maxHeadPart = 400

// DeployCheckError is a testSecret failure that rolled nothing back, worded
// for someone reading a CloudFormation event:
//
//	flowkey deploy check failed: <cause>. Fix: <fix>. Details: <Err's text, truncated>
//
// Neither part ever holds the token or key material: the cause and fix name
// secrets by ARN and numbers by ID, and Err's text is redacted where it is
// made.
type DeployCheckError struct {
	Cause, Fix string
	// Err is the failure as testSecret found it.
	Err error
}

func (e *DeployCheckError) Error() string {
	return deployCheckText(e.Cause, e.Fix, e.Err.Error())
}

func (e *DeployCheckError) Unwrap() error { return e.Err }

// deployClass is a row of the classification, in the order it is tried:
// with several failures (one per number) the first class in this order is
// the cause, because it explains the rest (a rejected token fails every
// number, whatever else is wrong with them).
type deployClass int

const (
	classTokenKMS       deployClass = iota + 1 // the token secret's key refuses the role
	classTokenDenied                           // the token secret refuses the role
	classTokenMissing                          // no token secret
	classTokenValue                            // the token secret holds no token
	classSecretKMS                             // the secret's own key refuses the role
	classNoDocument                            // no readable flowkey document
	classTokenRejected                         // Meta rejects the token
	classNoPermission                          // the token may not read a number
	classNoSuchNumber                          // a number or the WABA does not exist, or the WABA has none
	classMetaSilent                            // throttled, or no answer from Meta
	classAWSUnreachable                        // no answer from an AWS API
	classMismatch                              // verification only: a number holds something else
	classOther
)

// deployCheck words the failures of one testSecret.
type deployCheck struct {
	// secret is the ARN of the secret being rotated; tokenSecret the token
	// secret, when the step got as far as resolving it.
	secret, tokenSecret string
}

// finding is one failure: the step's own (id ""), or one number's.
type finding struct {
	id    string
	err   error
	class deployClass
}

// wrap turns err into a *DeployCheckError.
func (d deployCheck) wrap(err error) *DeployCheckError {
	var found []finding
	var se *StepError
	if errors.As(err, &se) && len(se.Failed) > 0 {
		for _, f := range se.Failed {
			found = append(found, finding{id: f.PhoneNumberID, err: f.Err, class: classify(f.Err)})
		}
	} else {
		found = []finding{{err: err, class: classify(err)}}
	}
	first := slices.MinFunc(found, func(a, b finding) int { return int(a.class) - int(b.class) }).class
	found = slices.DeleteFunc(found, func(f finding) bool { return f.class != first })
	cause, fix := d.words(first, found, err)
	return &DeployCheckError{Cause: cause, Fix: fix, Err: err}
}

// classify finds the class of one failure, trying each in order.
func classify(err error) deployClass {
	var (
		te *keystate.TokenSecretError
		le *loadError
		ge *graph.Error
		ie *InputError
		me *MismatchError
	)
	switch {
	case errors.As(err, &te):
		switch {
		case kmsRefused(err):
			return classTokenKMS
		case apiCode(err) == "AccessDeniedException":
			return classTokenDenied
		case isNotFound(err):
			return classTokenMissing
		case errors.As(err, &ie):
			return classTokenValue
		}
	case errors.As(err, &le):
		if kmsRefused(err) {
			return classSecretKMS
		}
		if isNotFound(err) || errors.As(err, new(*secretdoc.Error)) {
			return classNoDocument
		}
	case errors.As(err, &ge):
		return graphClass(ge)
	case errors.As(err, new(*noNumbersError)):
		return classNoSuchNumber
	}
	if _, ok := unreachable(err); ok {
		return classAWSUnreachable
	}
	if errors.As(err, &me) {
		return classMismatch
	}
	return classOther
}

// graphClass applies the Graph rows: auth codes (and any 401) first, then
// permissions, then objects that do not exist, then everything that says
// Meta did not answer in time. Graph's throttling codes are RateLimited.
func graphClass(ge *graph.Error) deployClass {
	code, ok := ge.GraphCode()
	switch {
	case ok && (code == 190 || code == 0 || code == 102 || code == 104), ge.HTTPStatus == 401:
		return classTokenRejected
	case ok && (code == 3 || code == 10 || (code >= 200 && code <= 299)):
		return classNoPermission
	case ok && (code == 100 || code == 33 || ge.Subcode == 33):
		return classNoSuchNumber
	case ge.RateLimited, ge.Retryable, ge.HTTPStatus >= 500, ge.Failure == graph.FailureTransport:
		return classMetaSilent
	}
	return classOther
}

// apiCode is the AWS error code in err's chain, or "". Secrets Manager's
// AccessDeniedException has no type of its own in the SDK: it arrives as a
// *smithy.GenericAPIError with that code.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// kmsRefused reports Secrets Manager's two ways of saying that the key of
// a secret would not decrypt it for the caller: DecryptionFailure, or
// AccessDeniedException "Access to KMS is not allowed" (or one naming a
// kms: action).
func kmsRefused(err error) bool {
	if errors.As(err, new(*types.DecryptionFailure)) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException" &&
		(strings.Contains(ae.ErrorMessage(), "KMS") || strings.Contains(ae.ErrorMessage(), "kms:"))
}

// unreachable reports an AWS call that got no answer: the request could
// not be sent, or it timed out. service is the SDK's name for the API.
// An AWS API that answered with an error, and any Graph failure, is not.
func unreachable(err error) (service string, ok bool) {
	if apiCode(err) != "" || errors.As(err, new(*graph.Error)) {
		return "", false
	}
	var ne net.Error
	if !errors.As(err, new(*smithyhttp.RequestSendError)) && !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		return "", false
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) && oe.Service() != "" {
		return oe.Service(), true
	}
	return "Secrets Manager", true
}

// deployCheckText renders the message: the head whole, then as much of the
// details as fits, cut at a character boundary with a count of the rest.
func deployCheckText(cause, fix, details string) string {
	head := DeployCheckPrefix + clipBytes(endSentence(cause), maxHeadPart) + ". Fix: " + clipBytes(endSentence(fix), maxHeadPart) + ". Details: "
	details = oneLine(details)
	room := DeployCheckMaxBytes - len(head)
	if len(details) <= room {
		return head + details
	}
	marker := func(n int) string { return fmt.Sprintf("... (%d more bytes; see the rotator's log)", n) }
	// The marker for the whole length is at least as long as the one
	// finally written, so the result stays within the bound.
	keep := max(room-len(marker(len(details))), 0)
	for keep > 0 && !utf8.RuneStart(details[keep]) {
		keep--
	}
	return head + details[:keep] + marker(len(details)-keep)
}

func endSentence(s string) string {
	return strings.TrimRight(oneLine(s), ". ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// clipBytes shortens s to at most n bytes, at a character boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// firstSentence is s up to its first ". " or "; ", at most 300 bytes.
func firstSentence(s string) string {
	s = oneLine(s)
	for _, sep := range []string{". ", "; "} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	return clipBytes(s, 300)
}

// listIDs names at most listedInFull IDs, then how many more.
func listIDs(ids []string) string {
	if len(ids) <= listedInFull {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:listedInFull], ", "), len(ids)-listedInFull)
}

// loadError is a failure to read one labelled version of the secret
// itself. Its text is the read's: it only tells the deploy check which
// secret and label a GetSecretValue failure was about.
type loadError struct {
	stage string
	err   error
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// noNumbersError is a WABA with no number left to write to; errors.As
// finds the *InputError it carries.
type noNumbersError struct {
	wabaID string
	err    *InputError
}

func (e *noNumbersError) Error() string { return e.err.Error() }
func (e *noNumbersError) Unwrap() error { return e.err }
