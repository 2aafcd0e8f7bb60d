package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

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
	return o.inspectSecret(ctx, log, sec)
}

// inspectSecret is inspect of a secret already described.
func (o *Operator) inspectSecret(ctx context.Context, log *slog.Logger, sec *keystate.Secret) (*inspection, error) {
	in, err := o.readVersions(ctx, sec)
	if err != nil {
		return nil, err
	}
	o.readNumbers(ctx, log, in)
	return in, nil
}

// readVersions reads the labelled versions of sec, as just described.
func (o *Operator) readVersions(ctx context.Context, sec *keystate.Secret) (*inspection, error) {
	arn := sec.ARN
	in := &inspection{secret: sec}
	curID, pendID, prevID := sec.VersionWith(rotation.StageCurrent), sec.VersionWith(rotation.StagePending), sec.VersionWith(rotation.StagePrevious)
	if curID == "" {
		return nil, fmt.Errorf("secret %s has no AWSCURRENT version; fix: store the flowkey document with `aws secretsmanager put-secret-value`", arn)
	}
	var err error
	in.current, err = o.state.Load(ctx, arn, curID, rotation.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	in.keys.Current = in.current.Key
	in.versions.Current = Version{VersionID: curID, Fingerprint: fingerprintOf(in.current.Key)}
	in.versions.Current.setCustody(in.current.Key)
	if in.current.Key == nil {
		in.reasons = append(in.reasons, fmt.Sprintf("AWSCURRENT version %s holds no key yet (configuration only): start the first rotation with {\"command\":\"rotate\"}", curID))
	}

	switch {
	case pendID == "":
	case pendID == curID:
		// An end state of a finished rotation: nothing in progress.
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
	return in, nil
}

// readNumbers resolves the numbers of the current configuration and reads
// what Meta holds for each.
func (o *Operator) readNumbers(ctx context.Context, log *slog.Logger, in *inspection) {
	cfg := in.current.Config
	in.auth, in.numbersErr = o.state.Auth(ctx, cfg)
	if in.numbersErr == nil {
		in.numbers, in.numbersErr = o.state.ResolveNumbers(ctx, in.auth, cfg)
	}
	if in.numbersErr != nil {
		log.Warn("phone numbers not resolved", "error", in.numbersErr.Error())
		return
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
	v.setCustody(doc.Key)
	return v, doc.Key
}

// setCustody records where a KMS-held key is.
func (v *Version) setCustody(k *secretdoc.Key) {
	if k.InKMS() {
		v.KeyCustody, v.KMSKeyARN = k.Custody, k.KMSKeyARN
	}
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
	return in.checkWith(ctx, o.graph, in.auth, id)
}

// checkWith reads one number with auth and judges it against the
// inspection's versions.
func (in *inspection) checkWith(ctx context.Context, g GraphAPI, auth graph.Auth, id string) NumberStatus {
	ns := NumberStatus{PhoneNumberID: id, Matches: MatchUnknown}
	reg, err := g.GetPublicKey(ctx, auth, id)
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
		ns.State = StateUnknown
		ns.Reason = "the GET of its key failed, so what Meta holds is unknown: " + err.Error()
		return ns
	}
	ns.SignatureStatus, ns.KeyProblem = reg.Status, reg.KeyProblem
	if fp, ok := keystate.HeldFingerprint(reg); ok {
		ns.Fingerprint = fp.String()
	}
	// The label whose key Meta's answer shows, preferring AWSCURRENT, then
	// AWSPENDING, then AWSPREVIOUS, judged as testSecret judges it.
	ns.Matches = in.keys.Holder(reg)
	if ns.Matches == "" {
		ns.Matches = MatchNone
	}
	// No key: a blank or missing business_public_key, whatever else the
	// answer says about it.
	noKey := strings.TrimSpace(reg.PublicKeyPEM) == ""
	ns.State, ns.Matches, ns.Reason = in.judge(ns, noKey, reg.KeyOmitted)
	return ns
}
