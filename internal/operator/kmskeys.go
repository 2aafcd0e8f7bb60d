package operator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// KMS key states in a status besides KMS's own (Enabled, Disabled,
// PendingDeletion, ...).
const (
	KMSKeyGone    = "gone"    // deleted after its waiting period
	KMSKeyUnknown = "unknown" // KMS could not be asked (see Problem)
)

// KMSKeyStatus is one of the secret's KMS custody keys.
type KMSKeyStatus struct {
	KeyARN string `json:"key_arn"`
	// Alias is the key's flowkey alias, when it was found through one.
	Alias string `json:"alias,omitempty"`
	// Labels are the labelled versions that name the key, in the order
	// AWSCURRENT, AWSPENDING, AWSPREVIOUS; empty for a key no version of
	// those names (retired, or left for the next finishSecret to retire).
	Labels []string `json:"labels"`
	// State is KMS's key state (Enabled, Disabled, PendingDeletion), or
	// "gone" or "unknown".
	State        string     `json:"state"`
	DeletionDate *time.Time `json:"deletion_date,omitempty"`
	// Problem says why a labelled version's key cannot decrypt, or why the
	// state is unknown.
	Problem string `json:"problem,omitempty"`
}

// kmsKeys reports every KMS custody key of the secret into in: the keys
// the labelled versions name (described one by one, and checked: a key
// that cannot decrypt is a reason the status is not healthy), then the
// secret's other keys found through its alias prefix (retired ones,
// orphans). A secret with no KMS-held version and no creation record is
// not looked at.
func (o *Operator) kmsKeys(ctx context.Context, in *inspection) []KMSKeyStatus {
	labelled := in.kmsLabelled()
	if len(labelled) == 0 && in.secret.Tags[custody.SecretTagCreation] == "" {
		return nil
	}
	if o.opts.Custody == nil {
		in.reasons = append(in.reasons, "the secret has KMS custody keys, but this function has no KMS client to report them")
		return nil
	}
	var out []KMSKeyStatus
	seen := map[string]bool{}
	for _, l := range labelled {
		ks := KMSKeyStatus{KeyARN: l.arn, Labels: l.labels}
		if home, ok := secretdoc.ParseKMSKeyARN(l.arn); ok {
			seen[home.KeyID] = true
		}
		k, err := o.opts.Custody.Check(ctx, l.arn, in.secret.ARN)
		ks.setKey(k)
		if err != nil {
			ks.Problem = err.Error()
			if k == nil {
				ks.State = KMSKeyUnknown
			}
			in.reasons = append(in.reasons, fmt.Sprintf("the KMS key of %s cannot decrypt, so the endpoint cannot use it: %s", strings.Join(l.labels, " and "), err))
		}
		out = append(out, ks)
	}
	listed, err := o.opts.Custody.List(ctx, in.secret.ARN)
	if err != nil {
		in.reasons = append(in.reasons, "the secret's other KMS custody keys cannot be listed: "+err.Error())
		return out
	}
	for _, a := range listed {
		ks := KMSKeyStatus{Alias: a.Alias, Labels: []string{}}
		switch {
		case a.Gone:
			ks.State = KMSKeyGone
		case a.Err != nil:
			ks.State, ks.Problem = KMSKeyUnknown, a.Err.Error()
		}
		if a.Key != nil {
			if seen[a.Key.ID] {
				out = setAlias(out, a.Key.ARN, a.Alias)
				continue
			}
			seen[a.Key.ID] = true
			ks.setKey(a.Key)
		}
		out = append(out, ks)
	}
	return out
}

func (ks *KMSKeyStatus) setKey(k *custody.Key) {
	if k == nil {
		return
	}
	ks.KeyARN, ks.State = k.ARN, string(k.State)
	if k.State == types.KeyStatePendingDeletion && !k.DeletionDate.IsZero() {
		d := k.DeletionDate.UTC()
		ks.DeletionDate = &d
	}
}

func setAlias(keys []KMSKeyStatus, arn, alias string) []KMSKeyStatus {
	for i := range keys {
		if keys[i].KeyARN == arn && keys[i].Alias == "" {
			keys[i].Alias = alias
		}
	}
	return keys
}

type labelledKey struct {
	arn    string
	labels []string
}

// kmsLabelled lists the KMS keys the labelled versions name, each once
// with its labels.
func (in *inspection) kmsLabelled() []labelledKey {
	var out []labelledKey
	add := func(label string, k *secretdoc.Key) {
		if !k.InKMS() {
			return
		}
		if i := slices.IndexFunc(out, func(l labelledKey) bool { return l.arn == k.KMSKeyARN }); i >= 0 {
			out[i].labels = append(out[i].labels, label)
			return
		}
		out = append(out, labelledKey{arn: k.KMSKeyARN, labels: []string{label}})
	}
	add(rotation.StageCurrent, in.keys.Current)
	add(rotation.StagePending, in.keys.Pending)
	add(rotation.StagePrevious, in.keys.Previous)
	return out
}
