package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Overall verdicts of a status.
const (
	Healthy = "healthy"
	Drifted = "drifted"
)

// Number states.
const (
	StateOK         = "ok"         // holds AWSCURRENT (or the rotation's AWSPENDING) key, VALID
	StateDrifted    = "drifted"    // holds another key, no key, or a key whose signature is not VALID
	StateUnreadable = "unreadable" // the GET failed: what Meta holds is unknown
	StateGone       = "gone"       // deleted, or no longer in the WABA: never written to
)

// Values of NumberStatus.Matches besides the three labels.
const (
	MatchNone    = "none"    // Meta holds no key, or one no version holds
	MatchUnknown = "unknown" // the number was not read
)

// StatusReport is the result of the status command.
type StatusReport struct {
	Command string `json:"command"` // "status"
	// OK is Overall == "healthy".
	OK bool `json:"ok"`
	// Overall is "healthy" or "drifted".
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
	// Drifted counts the numbers whose state is not "ok".
	Drifted int `json:"drifted"`
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
	// Problem says why the version could not be read, if it could not.
	Problem string `json:"problem,omitempty"`
}

// NumberStatus is what Meta holds for one phone number.
type NumberStatus struct {
	PhoneNumberID string `json:"phone_number_id"`
	State         string `json:"state"`
	// Matches is the label of the version whose key Meta holds:
	// AWSCURRENT, AWSPENDING, AWSPREVIOUS, "none" or "unknown".
	Matches string `json:"matches"`
	// Fingerprint of the key Meta holds (SHA-256 of its PKIX DER, hex);
	// "" when Meta holds none or one that cannot be read.
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
		if ge.Code != 0 || ge.Type != "" {
			c := ge.Code
			out.Code = &c
		}
	}
	return out
}

// isGone reports a Graph error that means the number no longer exists for
// this business: code 33, or code 100 with subcode 33 ("object does not
// exist").
func isGone(err error) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && (ge.Code == 33 || ge.Subcode == 33)
}

// inspection is one read of the secret and of every number.
type inspection struct {
	secret     *keystate.Secret
	inProgress bool
	current    *secretdoc.Document
	// keys.Current is current.Key. keys.Pending and keys.Previous are nil
	// when the label is absent or on the current version, the version holds
	// no key, or it cannot be read (versions says which).
	keys     keystate.Keys
	versions Versions
	auth     graph.Auth
	numbers  keystate.Numbers
	// numbersErr is why the numbers could not be resolved or read at all.
	numbersErr error
	results    []NumberStatus
	reasons    []string // secret-level problems
}

// describe reads the labels, and says where to look when the secret does
// not exist: it is named by the command or the function's configuration.
// The ARN it returns is used from here on, so every later call names the
// same secret.
func (o *Operator) describe(ctx context.Context, secretID string) (*keystate.Secret, error) {
	sec, err := o.state.Describe(ctx, secretID)
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("%w; fix: check secret_id in the command or the function's SECRET_ID", err)
	}
	return sec, err
}

// inspect reads the labelled versions and what Meta holds for every
// number. A failure to read AWSCURRENT is an error; a failure to resolve
// the numbers (token, WABA listing) is left in numbersErr for the caller to
// judge.
func (o *Operator) inspect(ctx context.Context, log *slog.Logger, secretID string) (*inspection, error) {
	sec, err := o.describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	arn := sec.ARN
	in := &inspection{secret: sec}
	curID, pendID, prevID := sec.VersionWith(rotation.StageCurrent), sec.VersionWith(rotation.StagePending), sec.VersionWith(rotation.StagePrevious)
	if curID == "" {
		return nil, fmt.Errorf("secret %s has no AWSCURRENT version; fix: store the flowkey document with `aws secretsmanager put-secret-value`", arn)
	}
	in.current, err = o.state.Load(ctx, arn, curID, rotation.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	in.keys.Current = in.current.Key
	in.versions.Current = Version{VersionID: curID, Fingerprint: fingerprintOf(in.current.Key)}
	if in.current.Key == nil {
		in.reasons = append(in.reasons, fmt.Sprintf("AWSCURRENT version %s holds no key yet (configuration only): start the first rotation with {\"command\":\"rotate\"}", curID))
	}

	switch {
	case pendID == "":
	case pendID == curID:
		// The valid end state of a finished rotation: nothing in progress.
		v := in.versions.Current
		in.versions.Pending = &v
	default:
		in.inProgress = true
		v, key := o.loadVersion(ctx, arn, pendID, rotation.StagePending)
		in.versions.Pending, in.keys.Pending = &v, key
		if v.Problem != "" && !strings.HasPrefix(v.Problem, problemNoValue) {
			in.reasons = append(in.reasons, fmt.Sprintf("AWSPENDING version %s cannot be read: %s", pendID, v.Problem))
		}
	}
	if prevID != "" && prevID != curID {
		v, key := o.loadVersion(ctx, arn, prevID, rotation.StagePrevious)
		in.versions.Previous, in.keys.Previous = &v, key
	}

	cfg := in.current.Config
	in.auth, in.numbersErr = o.state.Auth(ctx, cfg)
	if in.numbersErr == nil {
		in.numbers, in.numbersErr = o.state.ResolveNumbers(ctx, in.auth, cfg)
	}
	if in.numbersErr != nil {
		log.Warn("phone numbers not resolved", "error", in.numbersErr.Error())
		return in, nil
	}
	if len(in.numbers.IDs) == 0 {
		in.reasons = append(in.reasons, fmt.Sprintf("WABA %s has no phone numbers left after the include and exclude lists; fix: check config.waba_id and the lists", cfg.WABAID))
	}
	in.results = fanout.Each(ctx, o.opts.Concurrency, in.numbers.IDs, func(ctx context.Context, id string) NumberStatus {
		return o.check(ctx, in, id)
	})
	for _, id := range in.numbers.Gone {
		in.results = append(in.results, NumberStatus{PhoneNumberID: id, State: StateGone, Matches: MatchUnknown,
			Reason: fmt.Sprintf("listed in config.include_phone_number_ids but no longer in WABA %s; flowkey never writes to it; fix: remove it from the list", cfg.WABAID)})
	}
	return in, nil
}

// problemNoValue starts the Problem of a pending version that Secrets
// Manager staged but createSecret has not filled: a normal early state.
const problemNoValue = "no value yet"

func (o *Operator) loadVersion(ctx context.Context, arn, id, stage string) (Version, *secretdoc.Key) {
	v := Version{VersionID: id}
	doc, err := o.state.Load(ctx, arn, id, stage)
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		v.Problem = problemNoValue + " (createSecret has not stored a key in it)"
		return v, nil
	case err != nil:
		v.Problem = err.Error()
		return v, nil
	}
	v.Fingerprint = fingerprintOf(doc.Key)
	return v, doc.Key
}

func fingerprintOf(k *secretdoc.Key) string {
	if k == nil {
		return ""
	}
	return k.FingerprintSHA256
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// check reads one number and judges it.
func (o *Operator) check(ctx context.Context, in *inspection, id string) NumberStatus {
	ns := NumberStatus{PhoneNumberID: id, Matches: MatchUnknown}
	reg, err := o.graph.GetPublicKey(ctx, in.auth, id)
	if err != nil {
		ns.GraphError = graphErrorOf(err)
		if isGone(err) {
			ns.State = StateGone
			ns.Reason = "Graph says the number does not exist for this business (deleted or moved); flowkey never writes to it; fix: remove it from config.phone_number_ids"
			if in.current.Config.WABAID != "" {
				ns.Reason = "Graph says the number does not exist for this business although WABA " + in.current.Config.WABAID + " lists it; flowkey does not write to it"
			}
			return ns
		}
		ns.State = StateUnreadable
		ns.Reason = "the GET of its key failed, so what Meta holds is unknown: " + err.Error()
		return ns
	}
	ns.SignatureStatus, ns.KeyProblem = reg.Status, reg.KeyProblem
	if fp, ok := keystate.HeldFingerprint(reg); ok {
		ns.Fingerprint = fp.String()
	}
	// The label whose key Meta holds, preferring AWSCURRENT, then
	// AWSPENDING, then AWSPREVIOUS, judged as testSecret judges it.
	ns.Matches = in.keys.Holder(reg)
	if ns.Matches == "" {
		ns.Matches = MatchNone
	}
	ns.State, ns.Reason = in.judge(ns)
	return ns
}

// judge applies the drift rules: a number is fine when it holds the
// AWSCURRENT key, or the key of the rotation in progress, with status
// VALID. Everything else is drift, including AWSPREVIOUS during a
// rotation: its private key leaves the secret at the next rotation.
func (in *inspection) judge(ns NumberStatus) (state, reason string) {
	notValid := func(what string) string {
		s := ns.SignatureStatus
		if s == "" {
			s = "(none)"
		}
		return fmt.Sprintf("Meta holds %s, but its signature status is %s, not VALID (a number re-registered since the upload?)", what, s)
	}
	switch ns.Matches {
	case rotation.StageCurrent:
		if ns.SignatureStatus != graph.StatusValid {
			return StateDrifted, notValid("the AWSCURRENT key")
		}
		return StateOK, ""
	case rotation.StagePending:
		if ns.SignatureStatus != graph.StatusValid {
			return StateDrifted, notValid("the key of the rotation in progress (AWSPENDING)")
		}
		return StateOK, ""
	case rotation.StagePrevious:
		r := "Meta holds the AWSPREVIOUS key " + short(ns.Fingerprint) + ", whose private key leaves the secret at the next rotation"
		if in.inProgress {
			r += "; a rotation is in progress and its setSecret uploads the new key to this number"
		}
		return StateDrifted, r
	}
	switch {
	case ns.KeyProblem != "":
		return StateDrifted, "Meta holds a key flowkey cannot use: " + ns.KeyProblem
	case ns.Fingerprint == "":
		return StateDrifted, "Meta holds no key for this number"
	default:
		return StateDrifted, "Meta holds key " + short(ns.Fingerprint) + ", which matches no version of the secret (uploaded behind flowkey's back?)"
	}
}

func (o *Operator) status(ctx context.Context, log *slog.Logger, secretID string) (*StatusReport, error) {
	in, err := o.inspect(ctx, log, secretID)
	if err != nil {
		return nil, err
	}
	if in.numbersErr != nil {
		return nil, in.numbersErr
	}
	r := in.statusReport()
	log.Info("status", "overall", r.Overall, "numbers", len(r.Numbers), "drifted", r.Drifted, "rotation_in_progress", r.RotationInProgress)
	return r, nil
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
	for _, n := range r.Numbers {
		if n.State != StateOK {
			r.Drifted++
			r.Reasons = append(r.Reasons, n.PhoneNumberID+": "+n.Reason)
		}
	}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	r.OK = len(r.Reasons) == 0
	r.Overall = Healthy
	if !r.OK {
		r.Overall = Drifted
	}
	return r
}
