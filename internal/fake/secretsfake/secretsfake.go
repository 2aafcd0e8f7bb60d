// Package secretsfake is an in-memory Secrets Manager for the unit tests of
// the packages that consume Secrets Manager (internal/keystate,
// internal/rotation, internal/operator). It keeps the state those tests assert on — versions,
// values and staging labels — and behaves as the real service does where
// flowkey depends on it: moving AWSCURRENT makes the old holder AWSPREVIOUS,
// PutSecretValue is idempotent per ClientRequestToken, and RotateSecret
// refuses while another rotation is incomplete, unless it resumes that one.
// Tests script failures and inspect the calls made.
//
// It is a call-level fake, not a server: the emulator that speaks the AWS
// JSON 1.1 protocol and drives a rotation Lambda is internal/local/secretsemu,
// used by the end-to-end tests.
package secretsfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

// The staging labels are spelled out here rather than taken from
// internal/keystate: keystate's own tests import this package.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Operation names, as recorded by Ops and accepted by FailNext, FailAlways
// and Calls.
const (
	OpDescribeSecret           = "DescribeSecret"
	OpGetSecretValue           = "GetSecretValue"
	OpPutSecretValue           = "PutSecretValue"
	OpUpdateSecretVersionStage = "UpdateSecretVersionStage"
	OpRotateSecret             = "RotateSecret"
	OpTagResource              = "TagResource"
	OpCreateSecret             = "CreateSecret"
	OpListSecrets              = "ListSecrets"
	OpCancelRotateSecret       = "CancelRotateSecret"
)

const arnPrefix = "arn:aws:secretsmanager:us-east-1:111122223333:secret:"

// Secret is one secret's state. Its fields and methods take no lock: change
// them while setting a test up, before the code under test runs, or from
// OnDescribe, BeforeRotate and AfterStage, which run under the Fake's lock.
type Secret struct {
	ARN string
	// Name is the name it was added or created with.
	Name string
	// RotationEnabled is what DescribeSecret reports; nil means rotation
	// was never configured.
	RotationEnabled *bool
	// Values maps a version ID to its SecretString; nil is a version that
	// is staged but holds no value yet, as RotateSecret leaves it.
	Values map[string]*string
	// Stages maps a version ID to its staging labels.
	Stages map[string][]string
	// LastRotatedDate and CreatedDate are what DescribeSecret reports; nil
	// reports none, as for a secret never rotated.
	LastRotatedDate, CreatedDate *time.Time
	// Tags are the secret's tags, as DescribeSecret reports them and
	// TagResource sets them.
	Tags map[string]string
	// RotationLambdaARN and RotationRules are the rotation configuration
	// RotateSecret last set; DescribeSecret reports them.
	RotationLambdaARN string
	RotationRules     *types.RotationRulesType
	// KmsKeyID is CreateSecret's KmsKeyId.
	KmsKeyID string
	// DeletedDate set: the secret is scheduled for deletion. ListSecrets
	// leaves it out, and DescribeSecret reports the date.
	DeletedDate *time.Time
}

// Holder is the version that holds label, or "".
func (s *Secret) Holder(label string) string {
	for v, l := range s.Stages {
		if slices.Contains(l, label) {
			return v
		}
	}
	return ""
}

// Detach removes label from whichever version holds it.
func (s *Secret) Detach(label string) {
	for v, l := range s.Stages {
		s.Stages[v] = slices.DeleteFunc(l, func(x string) bool { return x == label })
	}
}

// Fake is the in-memory Secrets Manager. The exported fields are set while
// setting a test up, before the code under test runs.
type Fake struct {
	// ReadOnly makes PutSecretValue and UpdateSecretVersionStage refuse
	// (after recording the call), for code that must never write.
	ReadOnly bool
	// OnDescribe runs inside DescribeSecret after the secret is found; n
	// counts the DescribeSecret calls so far. It can change the secret
	// between two reads.
	OnDescribe func(n int, s *Secret)
	// BeforeRotate runs at the start of RotateSecret, as if another caller
	// had started a rotation just before.
	BeforeRotate func(s *Secret)
	// AfterStage runs at the end of a successful UpdateSecretVersionStage,
	// as if another caller acted right after it.
	AfterStage func(s *Secret)
	// RefuseResume makes RotateSecret refuse the incomplete rotation's own
	// ClientRequestToken too, as AWS may. Without it that token resumes the
	// rotation, as internal/local/secretsemu does: RotateSecret returns the
	// pending version and changes nothing (this fake runs no steps).
	RefuseResume bool

	t            testing.TB
	mu           sync.Mutex
	secrets      map[string]*Secret // by ARN
	byName       map[string]string  // name → ARN
	ops          []string           // every call, in order
	calls        map[string]int
	failNext     map[string][]error // op → errors returned once each, in order
	failAlways   map[string]error   // op → error returned on every call
	rotateInputs []*secretsmanager.RotateSecretInput
	rotations    int
}

// New returns an empty Fake. t receives the errors of a knob given a secret
// that was never added.
func New(t testing.TB) *Fake {
	return &Fake{t: t, secrets: map[string]*Secret{}, byName: map[string]string{}, calls: map[string]int{},
		failNext: map[string][]error{}, failAlways: map[string]error{}}
}

// Add creates (or replaces) the secret name with no versions and rotation
// enabled, and returns it. Its ARN is
// arn:aws:secretsmanager:us-east-1:111122223333:secret:<name>-AbCdEf.
func (f *Fake) Add(name string) *Secret {
	f.mu.Lock()
	defer f.mu.Unlock()
	arn := arnPrefix + name + "-AbCdEf"
	s := &Secret{ARN: arn, Name: name, RotationEnabled: aws.Bool(true), Values: map[string]*string{}, Stages: map[string][]string{}, Tags: map[string]string{}}
	f.secrets[arn] = s
	f.byName[name] = arn
	return s
}

// Secret is the secret with this name or ARN, or nil.
func (f *Fake) Secret(id string) *Secret {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, _ := f.find(aws.String(id))
	return s
}

// Delete forgets the secret with this name or ARN, so that every later call
// naming it gets ResourceNotFoundException.
func (f *Fake) Delete(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.String(id))
	if err != nil {
		f.t.Helper()
		f.t.Errorf("secretsfake: Delete(%q): no such secret; add it with Add first", id)
		return
	}
	delete(f.secrets, s.ARN)
	for name, arn := range f.byName {
		if arn == s.ARN {
			delete(f.byName, name)
		}
	}
}

// Put stores value as version of s and moves each label to it from its
// holder. Unlike PutSecretValue it is not recorded, and moving AWSCURRENT
// does not make the old holder AWSPREVIOUS: the test states every label.
func (f *Fake) Put(s *Secret, version string, value *string, labels ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.Values[version] = value
	for _, l := range labels {
		s.Detach(l)
		s.Stages[version] = append(s.Stages[version], l)
	}
}

// StagePending does what RotateSecret does before the first rotation step:
// version (holding value, nil for none) becomes AWSPENDING.
func (f *Fake) StagePending(id, version string, value *string) {
	s := f.Secret(id)
	if s == nil {
		f.t.Helper()
		f.t.Errorf("secretsfake: StagePending(%q): no such secret; add it with Add first", id)
		return
	}
	f.Put(s, version, value, StagePending)
}

// FailNext makes the next call of op return err, once. Queued errors are
// returned in order, before any FailAlways error.
func (f *Fake) FailNext(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[op] = append(f.failNext[op], err)
}

// FailAlways makes every call of op return err; nil stops it.
func (f *Fake) FailAlways(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failAlways, op)
		return
	}
	f.failAlways[op] = err
}

// Calls is the number of calls of op, failed ones included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// TotalCalls is the number of calls of every operation.
func (f *Fake) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ops)
}

// Ops is every call's operation name, in order.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// Writes is, in order, the calls that change (or under ReadOnly, tried to
// change) a secret.
func (f *Fake) Writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []string
	for _, o := range f.ops {
		switch o {
		case OpPutSecretValue, OpUpdateSecretVersionStage, OpRotateSecret, OpTagResource, OpCreateSecret, OpCancelRotateSecret:
			w = append(w, o)
		}
	}
	return w
}

// RotateInputs is the input of every RotateSecret call, in order.
func (f *Fake) RotateInputs() []*secretsmanager.RotateSecretInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rotateInputs)
}

// Snapshot is the versions, labels and values of a secret, one version per
// line in a stable order, for comparing states. A value that is a secret
// document with a key shows as the key's fingerprint prefix, anything else
// as its length: never the value itself.
func (f *Fake) Snapshot(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.String(id))
	if err != nil {
		f.t.Helper()
		f.t.Errorf("secretsfake: Snapshot(%q): no such secret; add it with Add first", id)
		return ""
	}
	var lines []string
	for v, l := range s.Stages {
		ls := slices.Clone(l)
		sort.Strings(ls)
		val := "<none>"
		if p := s.Values[v]; p != nil {
			val = fmt.Sprintf("%d bytes", len(*p))
			if d, err := secretdoc.Parse([]byte(*p)); err == nil && d.Key != nil {
				val = d.Key.FingerprintSHA256[:16]
			}
		}
		lines = append(lines, fmt.Sprintf("%s %v %s", v, ls, val))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (f *Fake) find(id *string) (*Secret, error) {
	key := aws.ToString(id)
	if arn, ok := f.byName[key]; ok {
		key = arn
	}
	s, ok := f.secrets[key]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return s, nil
}

// enter records a call of op and returns the failure scripted for it.
func (f *Fake) enter(op string) error {
	f.ops = append(f.ops, op)
	f.calls[op]++
	if errs := f.failNext[op]; len(errs) > 0 {
		f.failNext[op] = errs[1:]
		return errs[0]
	}
	return f.failAlways[op]
}

// DescribeSecret reports the versions that hold at least one label.
func (f *Fake) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpDescribeSecret); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if f.OnDescribe != nil {
		f.OnDescribe(f.calls[OpDescribeSecret], s)
	}
	stages := map[string][]string{}
	for v, l := range s.Stages {
		if len(l) > 0 {
			stages[v] = slices.Clone(l)
		}
	}
	var tags []types.Tag
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(s.Tags[k])})
	}
	out := &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.ARN), RotationEnabled: s.RotationEnabled, VersionIdsToStages: stages,
		LastRotatedDate: s.LastRotatedDate, CreatedDate: s.CreatedDate, Tags: tags, RotationRules: s.RotationRules, DeletedDate: s.DeletedDate}
	if s.Name != "" {
		out.Name = aws.String(s.Name)
	}
	if s.RotationLambdaARN != "" {
		out.RotationLambdaARN = aws.String(s.RotationLambdaARN)
	}
	if s.KmsKeyID != "" {
		out.KmsKeyId = aws.String(s.KmsKeyID)
	}
	return out, nil
}

// GetSecretValue reads by VersionId, VersionStage or both (AWSCURRENT when
// neither is set); a version without a value is not found.
func (f *Fake) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpGetSecretValue); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if in.VersionStage != nil && *in.VersionStage == "" {
		// AWS validates VersionStage as 1 to 256 characters.
		return nil, &types.InvalidParameterException{Message: aws.String("test fake: VersionStage is empty; leave it out instead")}
	}
	stage, version := aws.ToString(in.VersionStage), aws.ToString(in.VersionId)
	if version == "" {
		if stage == "" {
			stage = StageCurrent
		}
		version = s.Holder(stage)
	}
	val, ok := s.Values[version]
	if !ok || val == nil || (stage != "" && !slices.Contains(s.Stages[version], stage)) {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret value for VersionId: " + version)}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.ARN), VersionId: aws.String(version), SecretString: val, VersionStages: slices.Clone(s.Stages[version])}, nil
}

// PutSecretValue stores a new version under its ClientRequestToken. A
// repeat with the same token and value succeeds without change; with
// another value it is ResourceExistsException, as in the real service.
func (f *Fake) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpPutSecretValue); err != nil {
		return nil, err
	}
	if f.ReadOnly {
		return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never write the secret")}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	token := aws.ToString(in.ClientRequestToken)
	if token == "" {
		return nil, &types.InvalidParameterException{Message: aws.String("test fake: ClientRequestToken must be set")}
	}
	if old, ok := s.Values[token]; ok && old != nil {
		if *old == aws.ToString(in.SecretString) {
			return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.ARN), VersionId: aws.String(token)}, nil
		}
		return nil, &types.ResourceExistsException{Message: aws.String("You can't modify an existing version, you can only create a new version.")}
	}
	s.Values[token] = aws.String(aws.ToString(in.SecretString))
	labels := in.VersionStages
	if len(labels) == 0 {
		labels = []string{StageCurrent}
	}
	for _, l := range labels {
		attach(s, l, token)
	}
	return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.ARN), VersionId: aws.String(token), VersionStages: labels}, nil
}

// UpdateSecretVersionStage moves or removes a label. As in the real
// service, a label held elsewhere must be named in RemoveFromVersionId.
func (f *Fake) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpUpdateSecretVersionStage); err != nil {
		return nil, err
	}
	if f.ReadOnly {
		return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never move labels")}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	label, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	holder := s.Holder(label)
	if holder != "" && holder != to && holder != from {
		return nil, &types.InvalidParameterException{Message: aws.String(fmt.Sprintf("The staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder))}
	}
	if from != "" && holder != from {
		return nil, &types.InvalidParameterException{Message: aws.String("RemoveFromVersionId does not hold the label")}
	}
	if to != "" {
		if _, ok := s.Values[to]; !ok {
			return nil, &types.ResourceNotFoundException{Message: aws.String("no version " + to)}
		}
		attach(s, label, to)
	} else {
		s.Detach(label)
	}
	if f.AfterStage != nil {
		f.AfterStage(s)
	}
	return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.ARN)}, nil
}

// RotateSecret stages AWSPENDING on a new version without a value and
// returns, as Secrets Manager does before it invokes the rotation function
// (which this fake does not). While AWSPENDING is on a version other than
// AWSCURRENT's it refuses, unless the request resumes that rotation (see
// RefuseResume). Otherwise it first records RotationLambdaARN and
// RotationRules and turns rotation on; with RotateImmediately false it
// stages nothing, as after a passed configuration test.
func (f *Fake) RotateSecret(_ context.Context, in *secretsmanager.RotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpRotateSecret); err != nil {
		return nil, err
	}
	f.rotateInputs = append(f.rotateInputs, in)
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if f.BeforeRotate != nil {
		f.BeforeRotate(s)
	}
	if p := s.Holder(StagePending); p != "" && p != s.Holder(StageCurrent) {
		if aws.ToString(in.ClientRequestToken) == p && !f.RefuseResume && aws.ToBool(in.RotateImmediately) {
			return &secretsmanager.RotateSecretOutput{ARN: aws.String(s.ARN), VersionId: aws.String(p)}, nil
		}
		return nil, &types.InvalidRequestException{Message: aws.String("A previous rotation isn't complete. That rotation will be reattempted.")}
	}
	f.configureRotation(s, in)
	if in.RotateImmediately != nil && !*in.RotateImmediately {
		// Only the configuration test (testSecret on a copy of AWSCURRENT),
		// which this fake does not run: its end state is no new label.
		return &secretsmanager.RotateSecretOutput{ARN: aws.String(s.ARN)}, nil
	}
	f.rotations++
	tok := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.rotations)
	s.Values[tok] = nil
	s.Detach(StagePending)
	s.Stages[tok] = []string{StagePending}
	return &secretsmanager.RotateSecretOutput{ARN: aws.String(s.ARN), VersionId: aws.String(tok)}, nil
}

// TagResource adds tags to the secret, replacing the value of a key it
// already has.
func (f *Fake) TagResource(_ context.Context, in *secretsmanager.TagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpTagResource); err != nil {
		return nil, err
	}
	if f.ReadOnly {
		return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never tag the secret")}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Tags {
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		s.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &secretsmanager.TagResourceOutput{}, nil
}

// attach moves label to version; moving AWSCURRENT makes the old holder
// AWSPREVIOUS, as the real service does.
func attach(s *Secret, label, version string) {
	old := s.Holder(label)
	if old == version {
		return
	}
	s.Detach(label)
	s.Stages[version] = append(s.Stages[version], label)
	if label == StageCurrent && old != "" {
		s.Detach(StagePrevious)
		s.Stages[old] = append(s.Stages[old], StagePrevious)
	}
}
