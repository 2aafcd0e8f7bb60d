package secretsemu

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Staging labels Secrets Manager manages itself.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

type secret struct {
	arn, name, description, kmsKeyID string

	created, lastChanged, lastAccessed time.Time
	lastRotated, nextRotation          time.Time
	deletion                           time.Time // zero: not scheduled for deletion

	// rotationSet is true once RotateSecret or CancelRotateSecret ran:
	// DescribeSecret omits RotationEnabled before that, as AWS does.
	rotationSet     bool
	rotationEnabled bool
	lambdaARN       string
	rules           *rotationRules
	sched           schedule

	tags     []tag      // in the order first added
	versions []*version // in creation order
	rot      *rotation  // the rotation the driver is running, if any
}

// tag is Tag: a key and a value, both case-sensitive.
type tag struct {
	Key   string
	Value string
}

type version struct {
	id      string
	value   *secretValue // nil: the placeholder RotateSecret creates before createSecret
	stages  []string
	created time.Time
}

type secretValue struct {
	str *string
	bin []byte
}

func (v *secretValue) equal(o *secretValue) bool {
	if v == nil || o == nil {
		return v == o
	}
	if (v.str == nil) != (o.str == nil) || (v.str != nil && *v.str != *o.str) {
		return false
	}
	return (v.bin == nil) == (o.bin == nil) && bytes.Equal(v.bin, o.bin)
}

func (s *secret) version(id string) *version {
	for _, v := range s.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// holder returns the version a staging label is attached to.
func (s *secret) holder(stage string) *version {
	for _, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

func (v *version) has(stage string) bool { return slices.Contains(v.stages, stage) }

func (v *version) remove(stage string) {
	v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
}

func (v *version) add(stage string) {
	if !v.has(stage) {
		v.stages = append(v.stages, stage)
	}
}

// attach moves a label to v. Moving AWSCURRENT also moves AWSPREVIOUS to
// the version AWSCURRENT left.
func (s *secret) attach(stage string, v *version) {
	old := s.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.remove(stage)
	}
	v.add(stage)
	if stage == stageCurrent && old != nil {
		if prev := s.holder(stagePrevious); prev != nil {
			prev.remove(stagePrevious)
		}
		old.add(stagePrevious)
		v.remove(stagePrevious)
	}
}

// pendingIncomplete returns the version holding AWSPENDING when it is not
// also AWSCURRENT: a rotation that has not finished.
func (s *secret) pendingIncomplete() *version {
	p := s.holder(stagePending)
	if p == nil || p.has(stageCurrent) {
		return nil
	}
	return p
}

// versionIDsToStages lists labelled versions; AWS treats unlabelled ones as
// deprecated and leaves them out.
func (s *secret) versionIDsToStages() map[string][]string {
	m := map[string][]string{}
	for _, v := range s.versions {
		if len(v.stages) > 0 {
			m[v.id] = slices.Clone(v.stages)
		}
	}
	return m
}

// lookup finds a secret by name, full ARN, or ARN without the random suffix.
// The caller holds s.mu.
func (s *Server) lookup(id string) (*secret, error) {
	if id == "" {
		return nil, errInvalidParameter("SecretId is required: the secret's name or ARN.")
	}
	if sec, ok := s.secrets[id]; ok {
		return sec, nil
	}
	if strings.HasPrefix(id, "arn:") {
		for _, sec := range s.secrets {
			if sec.arn == id || s.arnPrefix(sec.name) == id {
				return sec, nil
			}
		}
	}
	return nil, errNotFound(msgSecretNotFound)
}

// lookupLive is lookup that also refuses a secret scheduled for deletion.
func (s *Server) lookupLive(id string) (*secret, error) {
	sec, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if !sec.deletion.IsZero() {
		return nil, errInvalidRequest(msgMarkedForDeletion)
	}
	return sec, nil
}

func (s *Server) arnPrefix(name string) string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s", s.region, s.account, name)
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newARN appends the 6 random characters AWS adds. The caller holds s.mu.
func (s *Server) newARN(name string) (string, error) {
	var b [6]byte
	if _, err := s.rand.Read(b[:]); err != nil {
		return "", errInternal("reading Options.Rand: " + err.Error())
	}
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return s.arnPrefix(name) + "-" + string(b[:]), nil
}

// newID returns a random UUID. The caller holds s.mu.
func (s *Server) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", errInternal("reading Options.Rand: " + err.Error())
	}
	return u.String(), nil
}

// epoch is a timestamp in AWS JSON: epoch seconds, milliseconds as fraction.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// timePtr omits zero times from responses.
func timePtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// Validation limits from the Secrets Manager API reference.
const (
	maxNameLen      = 512
	minTokenLen     = 32
	maxTokenLen     = 64
	maxValueBytes   = 65536
	maxStageLen     = 256
	maxStages       = 20
	maxLambdaARNLen = 2048
	maxDescription  = 2048
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9/_+=.@!-]+$`)

func validateName(name string) error {
	if name == "" || len(name) > maxNameLen || !nameRe.MatchString(name) {
		return errInvalidParameter(fmt.Sprintf(
			"Invalid name %q. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@! (1 to %d characters).", name, maxNameLen))
	}
	return nil
}

func validateToken(tok string) error {
	if n := len(tok); n < minTokenLen || n > maxTokenLen {
		return errInvalidParameter(fmt.Sprintf(
			"ClientRequestToken is %d characters; it must be %d to %d characters long. Use a UUID.", n, minTokenLen, maxTokenLen))
	}
	return nil
}

// valueOf checks SecretString/SecretBinary; nil, nil when neither is set.
func valueOf(str *string, bin []byte) (*secretValue, error) {
	switch {
	case str != nil && bin != nil:
		return nil, errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	case str != nil && len(*str) > maxValueBytes:
		return nil, errInvalidParameter(fmt.Sprintf("SecretString is %d bytes; the maximum is %d.", len(*str), maxValueBytes))
	case len(bin) > maxValueBytes:
		return nil, errInvalidParameter(fmt.Sprintf("SecretBinary is %d bytes; the maximum is %d.", len(bin), maxValueBytes))
	case str == nil && bin == nil:
		return nil, nil
	}
	return &secretValue{str: str, bin: bin}, nil
}

func validateStage(stage string) error {
	if stage == "" || len(stage) > maxStageLen {
		return errInvalidParameter(fmt.Sprintf("The staging label %q must be 1 to %d characters long.", stage, maxStageLen))
	}
	return nil
}
