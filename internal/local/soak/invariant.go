package soak

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// Labels.
const (
	stageCurrent  = "AWSCURRENT"
	stagePending  = "AWSPENDING"
	stagePrevious = "AWSPREVIOUS"
)

// Where AWSPENDING sits, as a check finds it. Only PendingElsewhere breaks
// the invariant.
const (
	PendingAbsent     = "absent"
	PendingOnCurrent  = "on AWSCURRENT"
	PendingKey        = "on the incomplete rotation, with its key"
	PendingNoValue    = "on the incomplete rotation, no value yet"
	PendingNoKey      = "on the incomplete rotation, configuration only"
	PendingCurrentKey = "on the incomplete rotation, with the AWSCURRENT key"
	PendingUnreadable = "on the incomplete rotation, unreadable"
	PendingElsewhere  = "on a version no rotation is finishing"
)

// version is one labelled version as the check reads it, on its own:
// the public half of the private key it stores, derived here, never the
// fingerprint the document claims.
type version struct {
	id      string
	stages  []string
	value   bool   // it has a value
	der     []byte // PKIX DER of its private key's public half; nil: no key
	problem string // why its key could not be read
}

func (v *version) describe() string {
	s := v.id + " [" + strings.Join(v.stages, " ") + "] "
	switch {
	case !v.value:
		return s + "no value"
	case v.problem != "":
		return s + "unreadable: " + v.problem
	case v.der == nil:
		return s + "configuration only"
	}
	return s + "key " + fingerprint(v.der)
}

// observation is one secret checked against what Meta really holds.
type observation struct {
	secret   *secret
	versions []*version // labelled, current first
	current  *version   // nil unless exactly one version is AWSCURRENT
	pending  *version
	place    string            // where AWSPENDING sits
	meta     map[string][]byte // the secret's numbers -> what Meta holds (absent: no key)
	problems []string          // invariant violations
}

// observe reads the secret's labelled versions and Meta's true keys (the
// simulator's own state, not a GET that may lag) and checks the
// invariant: exactly one version is AWSCURRENT, AWSPENDING is absent, on
// AWSCURRENT or on the version of the rotation that is incomplete, and
// every key Meta holds for the secret's numbers has its private key in
// AWSCURRENT or AWSPENDING, compared as DER.
func (e *engine) observe(ctx context.Context, sec *secret) (*observation, error) {
	desc, err := e.st.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(sec.arn)})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", sec.name, err)
	}
	o := &observation{secret: sec, meta: map[string][]byte{}}
	var currents []*version
	for id, stages := range desc.VersionIdsToStages {
		if !slices.Contains(stages, stageCurrent) && !slices.Contains(stages, stagePending) && !slices.Contains(stages, stagePrevious) {
			continue
		}
		v, err := e.readVersion(ctx, sec.arn, id)
		if err != nil {
			return nil, err
		}
		v.stages = slices.Sorted(slices.Values(stages))
		o.versions = append(o.versions, v)
		if slices.Contains(stages, stageCurrent) {
			currents = append(currents, v)
		}
		if slices.Contains(stages, stagePending) {
			o.pending = v
		}
	}
	sort.Slice(o.versions, func(i, j int) bool { return rank(o.versions[i]) < rank(o.versions[j]) })
	if len(currents) == 1 {
		o.current = currents[0]
	} else {
		o.problems = append(o.problems, fmt.Sprintf("%d versions are AWSCURRENT, want exactly 1", len(currents)))
	}
	o.place = o.pendingPlace(incompleteToken(e.st.Secrets.Events(sec.arn)))
	if o.place == PendingElsewhere {
		o.problems = append(o.problems, fmt.Sprintf("AWSPENDING is on version %s, which is neither AWSCURRENT nor the version of an incomplete rotation", o.pending.id))
	}
	keys := e.st.Graph.Keys()
	for _, n := range sec.numbers {
		der, ok := keys[n]
		if !ok {
			continue
		}
		o.meta[n] = der
		if !o.holds(der, stageCurrent) && !o.holds(der, stagePending) {
			o.problems = append(o.problems, fmt.Sprintf("Meta holds %s for %s, whose private key is in %s", fingerprint(der), n, o.whereHeld(der)))
		}
	}
	return o, nil
}

func rank(v *version) int {
	for i, s := range []string{stageCurrent, stagePending, stagePrevious} {
		if slices.Contains(v.stages, s) {
			return i
		}
	}
	return 3
}

// holds reports whether the version labelled stage stores the private key
// of der.
func (o *observation) holds(der []byte, stage string) bool {
	for _, v := range o.versions {
		if slices.Contains(v.stages, stage) && v.der != nil && bytes.Equal(v.der, der) {
			return true
		}
	}
	return false
}

func (o *observation) whereHeld(der []byte) string {
	if o.holds(der, stagePrevious) {
		return "AWSPREVIOUS alone, which the next rotation drops"
	}
	return "no labelled version"
}

func (o *observation) pendingPlace(incomplete string) string {
	p := o.pending
	switch {
	case p == nil:
		return PendingAbsent
	case slices.Contains(p.stages, stageCurrent):
		return PendingOnCurrent
	case p.id != incomplete:
		return PendingElsewhere
	case !p.value:
		return PendingNoValue
	case p.problem != "":
		return PendingUnreadable
	case p.der == nil:
		return PendingNoKey
	case o.current != nil && bytes.Equal(o.current.der, p.der):
		return PendingCurrentKey
	}
	return PendingKey
}

// incompleteToken is the token of the secret's last full rotation if it
// has not succeeded, been abandoned or been cancelled: the one version
// besides AWSCURRENT that may hold AWSPENDING.
func incompleteToken(events []secretsemu.Event) string {
	token := ""
	for _, ev := range events {
		if ev.TestOnly {
			continue
		}
		switch ev.Type {
		case secretsemu.RotationStarted:
			token = ev.Token
		case secretsemu.RotationSucceeded, secretsemu.RotationAbandoned, secretsemu.RotationCancelled:
			if ev.Token == token {
				token = ""
			}
		}
	}
	return token
}

// readVersion reads one version's value and derives its public key from
// the private key it stores.
func (e *engine) readVersion(ctx context.Context, arn, id string) (*version, error) {
	v := &version{id: id}
	out, err := e.st.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return v, nil
	case err != nil:
		return nil, fmt.Errorf("read version %s: %w", id, err)
	}
	v.value = true
	var doc struct {
		Key *struct {
			PrivateKeyPEM string `json:"private_key_pem"`
		} `json:"key"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
		v.problem = "the value is not a JSON document"
		return v, nil
	}
	if doc.Key == nil {
		return v, nil
	}
	if v.der, err = publicOfPrivate(doc.Key.PrivateKeyPEM); err != nil {
		v.problem = err.Error()
	}
	return v, nil
}

// publicOfPrivate is the PKIX DER of a PEM private key's public half. Its
// errors never quote the key.
func publicOfPrivate(text string) ([]byte, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("key.private_key_pem is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("key.private_key_pem is a %q PEM block", block.Type)
	}
	if err != nil {
		return nil, errors.New("key.private_key_pem does not parse as a private key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("key.private_key_pem holds no signing key")
	}
	return x509.MarshalPKIXPublicKey(signer.Public())
}

// fingerprint is the short SHA-256 of a PKIX DER, as flowkey's reports
// show keys.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// labels lists the versions for a violation's report.
func (o *observation) labels() []string {
	out := make([]string, len(o.versions))
	for i, v := range o.versions {
		out[i] = v.describe()
	}
	return out
}

// held lists what Meta holds per number for a violation's report.
func (o *observation) held() []string {
	var out []string
	for _, n := range o.secret.numbers {
		if der, ok := o.meta[n]; ok {
			out = append(out, n+": "+fingerprint(der))
		} else {
			out = append(out, n+": no key")
		}
	}
	return out
}
