package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
)

// Overall verdicts of a status. Only a healthy secret is ok.
const (
	Healthy = "healthy"
	Drifted = "drifted"
	// RotationIncomplete: AWSPENDING is on a version that is not
	// AWSCURRENT. Meta may hold the pending key on any number, whatever
	// its reads show (they lag behind uploads), so the secret is not
	// healthy until the rotation completes.
	RotationIncomplete = "rotation_incomplete"
)

// Number states.
const (
	StateOK      = "ok"      // Meta answered VALID with the AWSCURRENT (or the rotation's AWSPENDING) key
	StateDrifted = "drifted" // Meta answered VALID with another key, or one flowkey cannot use
	// StateUnknown: what Meta holds cannot be told from its answer. The GET
	// failed, or answered MISMATCH, another status than VALID, a blank key,
	// or VALID without a key.
	StateUnknown = "unknown"
	StateGone    = "gone" // deleted, or no longer in the WABA: never written to
)

// Values of NumberStatus.Matches besides the three labels.
const (
	MatchNone    = "none"    // Meta answered VALID with a key no version holds
	MatchUnknown = "unknown" // what Meta holds is unknown, or the number was not read
)

// StatusReport is the result of the status command.
type StatusReport struct {
	Command string `json:"command"` // "status"
	// OK is Overall == "healthy".
	OK bool `json:"ok"`
	// Overall is "healthy", "drifted" or "rotation_incomplete".
	Overall string `json:"overall"`
	// Reasons lists every problem, one line each; empty when healthy.
	Reasons            []string `json:"reasons"`
	SecretARN          string   `json:"secret_arn"`
	RotationInProgress bool     `json:"rotation_in_progress"`
	Versions           Versions `json:"versions"`
	// WABAID is set when the numbers come from the WABA.
	WABAID string `json:"waba_id,omitempty"`
	// Numbers lists the configured or discovered numbers in order, then
	// gone include_phone_number_ids entries.
	Numbers []NumberStatus `json:"numbers"`
	// Drifted counts the numbers whose state is not "ok" (the unknown and
	// gone ones included); it is the DriftedNumbers metric.
	Drifted int `json:"drifted"`
	// Unknown counts the numbers whose state is "unknown".
	Unknown int `json:"unknown"`
	// KMSKeys lists the secret's KMS custody keys with their states (see
	// KMSKeyStatus); absent for a secret never in KMS custody.
	KMSKeys []KMSKeyStatus `json:"kms_keys,omitempty"`
	// DaysSinceLastRotation is the age of the last successful rotation
	// (of the secret, when it never rotated), as the DaysSinceLastRotation
	// metric publishes it; absent when Secrets Manager reported no date.
	DaysSinceLastRotation *float64 `json:"days_since_last_rotation,omitempty"`
}

// Versions are the secret's labelled versions.
type Versions struct {
	Current  Version  `json:"AWSCURRENT"`
	Pending  *Version `json:"AWSPENDING,omitempty"`
	Previous *Version `json:"AWSPREVIOUS,omitempty"`
}

// Version is one labelled version of the secret.
type Version struct {
	VersionID string `json:"version_id"`
	// Fingerprint is the SHA-256 of the key's PKIX DER in hex, as the
	// document's fingerprint_sha256; "" when the version holds no key.
	Fingerprint string `json:"fingerprint_sha256"`
	// KeyCustody is "kms" for a key held by KMS (KMSKeyARN names it);
	// absent for a key held in the version.
	KeyCustody string `json:"key_custody,omitempty"`
	KMSKeyARN  string `json:"kms_key_arn,omitempty"`
	// Problem says why the version could not be read, if it could not.
	Problem string `json:"problem,omitempty"`
}

// NumberStatus is what Meta holds for one phone number.
type NumberStatus struct {
	PhoneNumberID string `json:"phone_number_id"`
	State         string `json:"state"`
	// Matches is the label of the version whose key Meta holds:
	// AWSCURRENT, AWSPENDING, AWSPREVIOUS, "none" or "unknown". It is
	// "unknown" whenever State is: a MISMATCH, blank or failed read never
	// counts as holding a version's key.
	Matches string `json:"matches"`
	// Fingerprint of the key Meta's answer showed (SHA-256 of its PKIX
	// DER, hex); "" when it showed none or one that cannot be read.
	Fingerprint     string `json:"fingerprint_sha256"`
	SignatureStatus string `json:"signature_status"`
	// KeyProblem says why a key Meta returned could not be read.
	KeyProblem string `json:"key_problem,omitempty"`
	// Reason says why the state is not "ok".
	Reason     string      `json:"reason,omitempty"`
	GraphError *GraphError `json:"graph_error,omitempty"`
}

// GraphError is a failed Graph call, as reported by internal/graph.
type GraphError struct {
	// Message is the whole error line (never contains the token).
	Message    string `json:"message"`
	HTTPStatus int    `json:"http_status,omitempty"`
	// Code is Graph's error code; absent when the response had none.
	Code      *int   `json:"code,omitempty"`
	Subcode   int    `json:"subcode,omitempty"`
	FBTraceID string `json:"fbtrace_id,omitempty"`
	Retryable bool   `json:"retryable"`
}

func graphErrorOf(err error) *GraphError {
	out := &GraphError{Message: err.Error()}
	var ge *graph.Error
	if errors.As(err, &ge) {
		out.HTTPStatus, out.Subcode, out.FBTraceID, out.Retryable = ge.HTTPStatus, ge.Subcode, ge.FBTraceID, ge.Retryable
		// Only a Graph error object carries a code, and 0 is one of them
		// (Meta cannot authenticate the token's app user); a transport,
		// HTTP or malformed failure has none, whatever its Code field.
		if code, ok := ge.GraphCode(); ok {
			out.Code = &code
		}
	}
	return out
}

// isGone reports a Graph error that means the number no longer exists for
// this business: code 33, or code 100 with subcode 33 ("object does not
// exist").
func isGone(err error) bool {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return false
	}
	code, ok := ge.GraphCode()
	return ok && (code == 33 || ge.Subcode == 33)
}

// judge applies the drift rules to a number Meta answered for. Only an
// answer of VALID with a readable key says which key Meta holds: a
// MISMATCH comes with a blank key (or a stale one), and a blank or missing
// key may be a read lagging behind an upload. Such a number is unknown,
// never "on AWSCURRENT". A known number is fine when it holds the
// AWSCURRENT key, or the key of the rotation in progress; everything else
// is drift, including AWSPREVIOUS during a rotation: its private key
// leaves the secret at the next rotation.
func (in *inspection) judge(ns NumberStatus, noKey, keyOmitted bool) (state, matches, reason string) {
	status := ns.SignatureStatus
	if status == "" {
		status = "(none)"
	}
	switch {
	case ns.SignatureStatus != graph.StatusValid && noKey:
		return StateUnknown, MatchUnknown, fmt.Sprintf("Meta answers signature status %s with no key, so the key it holds is unknown "+
			"(a number that never got a key, one re-registered since the upload, a forced MISMATCH, or a read that lags behind an upload)", status)
	case ns.SignatureStatus != graph.StatusValid:
		what := "key " + short(ns.Fingerprint)
		if l := ns.Matches; l != MatchNone && l != "" {
			what = "the " + l + " key"
		} else if ns.Fingerprint == "" {
			what = "a key flowkey cannot read"
		}
		return StateUnknown, MatchUnknown, fmt.Sprintf("Meta shows %s, but with signature status %s, not VALID, so the key it uses is unknown (a number re-registered since the upload?)", what, status)
	case keyOmitted:
		// graph.Registration.KeyOmitted: Meta's v23 example has this shape.
		// VALID says a key is registered, so the number is not keyless: it
		// holds a key flowkey cannot see.
		return StateUnknown, MatchUnknown, "Meta answers VALID but omits the key from its answer, so it holds a key flowkey cannot see and which one is unknown"
	case noKey:
		return StateUnknown, MatchUnknown, "Meta answers VALID but returns no key, so the key it holds is unknown"
	}
	switch ns.Matches {
	case rotation.StageCurrent, rotation.StagePending:
		return StateOK, ns.Matches, ""
	case rotation.StagePrevious:
		r := "Meta holds the AWSPREVIOUS key " + short(ns.Fingerprint) + ", whose private key leaves the secret at the next rotation"
		if in.inProgress {
			r += "; a rotation is in progress and its setSecret uploads the new key to this number"
		}
		return StateDrifted, ns.Matches, r
	}
	if ns.KeyProblem != "" {
		return StateDrifted, MatchNone, "Meta holds a key flowkey cannot use: " + ns.KeyProblem
	}
	return StateDrifted, MatchNone, "Meta holds key " + short(ns.Fingerprint) + ", which matches no version of the secret (uploaded behind flowkey's back?)"
}

// status reads one secret's state. publish sends its age to the metrics: a
// fleet status does not, and publishes the fleet's aggregates instead.
func (o *Operator) status(ctx context.Context, log *slog.Logger, secretID string, publish bool) (*StatusReport, error) {
	sec, err := o.describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	// Published before anything can fail on Meta's side, so that the
	// rotation-overdue alarm sees the age even when the token or Graph is
	// what keeps the rotations from succeeding.
	days := o.rotationAge(log, sec, publish)
	in, err := o.inspectSecret(ctx, log, sec)
	if err != nil {
		return nil, err
	}
	if in.numbersErr != nil {
		return nil, in.numbersErr
	}
	kmsKeys := o.kmsKeys(ctx, in)
	r := in.statusReport()
	r.KMSKeys = kmsKeys
	r.DaysSinceLastRotation = days
	log.Info("status", "overall", r.Overall, "numbers", len(r.Numbers), "drifted", r.Drifted, "unknown", r.Unknown, "rotation_in_progress", r.RotationInProgress)
	return r, nil
}

// rotationAge publishes how long ago sec last rotated (since it was
// created, when it never was) and returns it in days, rounded to a
// thousandth; nil when DescribeSecret reported neither date.
func (o *Operator) rotationAge(log *slog.Logger, sec *keystate.Secret, publish bool) *float64 {
	since := sec.LastRotated
	if since.IsZero() {
		since = sec.Created
	}
	if since.IsZero() {
		log.Warn("rotation age unknown", "reason", "DescribeSecret reported neither LastRotatedDate nor CreatedDate")
		return nil
	}
	age := max(o.opts.Now().Sub(since), 0)
	if o.opts.Metrics != nil && publish {
		o.opts.Metrics.RotationAge(age)
	}
	days := math.Round(age.Hours()/24*1000) / 1000
	return &days
}

func (in *inspection) statusReport() *StatusReport {
	r := &StatusReport{
		Command:            CommandStatus,
		Reasons:            slices.Clone(in.reasons),
		SecretARN:          in.secret.ARN,
		RotationInProgress: in.inProgress,
		Versions:           in.versions,
		WABAID:             in.current.Config.WABAID,
		Numbers:            in.results,
	}
	if r.Numbers == nil {
		r.Numbers = []NumberStatus{}
	}
	if in.inProgress {
		r.Reasons = append([]string{in.incompleteReason()}, r.Reasons...)
	}
	for _, n := range r.Numbers {
		if n.State != StateOK {
			r.Drifted++
			r.Reasons = append(r.Reasons, n.PhoneNumberID+": "+n.Reason)
		}
		if n.State == StateUnknown {
			r.Unknown++
		}
	}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	switch {
	case in.inProgress:
		r.Overall = RotationIncomplete
	case len(r.Reasons) > 0:
		r.Overall = Drifted
	default:
		r.Overall = Healthy
	}
	r.OK = r.Overall == Healthy
	return r
}

// incompleteReason is the first reason of a status during an incomplete
// rotation.
func (in *inspection) incompleteReason() string {
	p := in.versions.Pending.VersionID
	return fmt.Sprintf("a rotation is incomplete: AWSPENDING is on version %s, not on AWSCURRENT %s. Meta may hold its key on any number, "+
		"whatever the reads below show (a read can lag behind an upload, and MISMATCH hides the key), and its private key is stored only in that version: "+
		"never remove AWSPENDING from it. Finish it with {\"command\":\"rotate\"}, which resumes it", p, in.versions.Current.VersionID)
}
