package operator

// Stateful fakes, adapted from internal/rotation's: a Secrets Manager that
// really moves staging labels and refuses RotateSecret during an incomplete
// rotation, and Meta's per-number key store with scripted faults.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/rotation"
)

type fakeSecrets struct {
	mu      sync.Mutex
	secrets map[string]*fakeSecret // by ARN
	byName  map[string]string
	ops     []string         // every call, in order
	fail    map[string]error // op → error returned every time
	// onDescribe runs inside DescribeSecret (n counts the calls), to
	// change the secret between two reads.
	onDescribe func(n int, s *fakeSecret)
	// beforeRotate runs at the start of RotateSecret, as if another
	// caller started a rotation just before.
	beforeRotate func(s *fakeSecret)
	rotateInputs []*secretsmanager.RotateSecretInput
	nextToken    int
}

type fakeSecret struct {
	arn    string
	values map[string]*string  // version → value (nil: staged, no value)
	stages map[string][]string // version → labels
}

func newFakeSecrets() *fakeSecrets {
	return &fakeSecrets{secrets: map[string]*fakeSecret{}, byName: map[string]string{}, fail: map[string]error{}}
}

func (f *fakeSecrets) add(name string) *fakeSecret {
	f.mu.Lock()
	defer f.mu.Unlock()
	arn := "arn:aws:secretsmanager:us-east-1:111122223333:secret:" + name + "-AbCdEf"
	s := &fakeSecret{arn: arn, values: map[string]*string{}, stages: map[string][]string{}}
	f.secrets[arn] = s
	f.byName[name] = arn
	return s
}

// put stores a version with labels, moving each label from its holder.
func (f *fakeSecrets) put(s *fakeSecret, version string, value *string, labels ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.values[version] = value
	for _, l := range labels {
		s.detach(l)
		s.stages[version] = append(s.stages[version], l)
	}
}

func (s *fakeSecret) detach(label string) {
	for v, l := range s.stages {
		s.stages[v] = slices.DeleteFunc(l, func(x string) bool { return x == label })
	}
}

func (s *fakeSecret) holder(label string) string {
	for v, l := range s.stages {
		if slices.Contains(l, label) {
			return v
		}
	}
	return ""
}

func (f *fakeSecrets) find(id *string) (*fakeSecret, error) {
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

func (f *fakeSecrets) enter(op string) error {
	f.ops = append(f.ops, op)
	return f.fail[op]
}

func (f *fakeSecrets) calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.ops {
		if o == op {
			n++
		}
	}
	return n
}

func (f *fakeSecrets) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []string
	for _, o := range f.ops {
		if o == "PutSecretValue" || o == "UpdateSecretVersionStage" || o == "RotateSecret" {
			w = append(w, o)
		}
	}
	return w
}

func (f *fakeSecrets) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DescribeSecret"); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if f.onDescribe != nil {
		n := 0
		for _, o := range f.ops {
			if o == "DescribeSecret" {
				n++
			}
		}
		f.onDescribe(n, s)
	}
	stages := map[string][]string{}
	for v, l := range s.stages {
		if len(l) > 0 {
			stages[v] = slices.Clone(l)
		}
	}
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.arn), RotationEnabled: aws.Bool(true), VersionIdsToStages: stages}, nil
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("GetSecretValue"); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	stage, version := aws.ToString(in.VersionStage), aws.ToString(in.VersionId)
	if version == "" {
		if stage == "" {
			stage = rotation.StageCurrent
		}
		version = s.holder(stage)
	}
	val, ok := s.values[version]
	if !ok || val == nil || (stage != "" && !slices.Contains(s.stages[version], stage)) {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret value for VersionId: " + version)}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(version), SecretString: val, VersionStages: slices.Clone(s.stages[version])}, nil
}

// PutSecretValue and UpdateSecretVersionStage only exist for the rotation
// package's interface: no command may call them.
func (f *fakeSecrets) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.enter("PutSecretValue")
	return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never write the secret")}
}

func (f *fakeSecrets) UpdateSecretVersionStage(context.Context, *secretsmanager.UpdateSecretVersionStageInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.enter("UpdateSecretVersionStage")
	return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never move labels")}
}

// RotateSecret stages AWSPENDING on a new empty version and returns, as
// Secrets Manager does before it invokes the function.
func (f *fakeSecrets) RotateSecret(_ context.Context, in *secretsmanager.RotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("RotateSecret"); err != nil {
		return nil, err
	}
	f.rotateInputs = append(f.rotateInputs, in)
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if f.beforeRotate != nil {
		f.beforeRotate(s)
	}
	if p := s.holder(rotation.StagePending); p != "" && p != s.holder(rotation.StageCurrent) {
		return nil, &types.InvalidRequestException{Message: aws.String("A previous rotation isn't complete. That rotation will be reattempted.")}
	}
	f.nextToken++
	tok := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.nextToken)
	s.values[tok] = nil
	s.detach(rotation.StagePending)
	s.stages[tok] = []string{rotation.StagePending}
	return &secretsmanager.RotateSecretOutput{ARN: aws.String(s.arn), VersionId: aws.String(tok)}, nil
}

// fakeGraph is Meta's per-number key store with scripted faults.
type fakeGraph struct {
	mu      sync.Mutex
	keys    map[string]string // phone → PEM
	status  map[string]string
	faults  map[string][]error // "op/phone" → errors returned in order
	stale   map[string]int     // phone → GETs after an upload that still show the old key
	old     map[string]string
	uploads map[string]int
	gets    map[string]int
	waba    []graph.PhoneNumber
}

func newFakeGraph() *fakeGraph {
	return &fakeGraph{keys: map[string]string{}, status: map[string]string{}, faults: map[string][]error{},
		stale: map[string]int{}, old: map[string]string{}, uploads: map[string]int{}, gets: map[string]int{}}
}

func (g *fakeGraph) set(phone, pemText, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys[phone], g.status[phone] = pemText, status
}

func (g *fakeGraph) fault(op, phone string, errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults[op+"/"+phone] = append(g.faults[op+"/"+phone], errs...)
}

func (g *fakeGraph) next(op, phone string) error {
	k := op + "/" + phone
	if errs := g.faults[k]; len(errs) > 0 {
		g.faults[k] = errs[1:]
		return errs[0]
	}
	return nil
}

func (g *fakeGraph) UploadPublicKey(_ context.Context, auth graph.Auth, phone, pemText string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.uploads[phone]++
	if auth.Token.IsZero() {
		return &graph.Error{Op: "upload", Object: phone, HTTPStatus: 401, Code: 190}
	}
	if err := g.next("upload", phone); err != nil {
		return err
	}
	if _, ok := g.keys[phone]; !ok {
		return &graph.Error{Op: "upload", Object: phone, HTTPStatus: 400, Code: 100, Subcode: 33}
	}
	g.old[phone] = g.keys[phone]
	g.keys[phone] = pemText
	g.status[phone] = graph.StatusValid
	return nil
}

func (g *fakeGraph) GetPublicKey(_ context.Context, _ graph.Auth, phone string) (*graph.Registration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gets[phone]++
	if err := g.next("get", phone); err != nil {
		return nil, err
	}
	key, ok := g.keys[phone]
	if !ok {
		return nil, &graph.Error{Op: "get", Object: phone, HTTPStatus: 400, Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: "Unsupported get request. Object with ID '" + phone + "' does not exist"}
	}
	if g.stale[phone] > 0 {
		g.stale[phone]--
		key = g.old[phone]
	}
	reg := &graph.Registration{PublicKeyPEM: key, Status: g.status[phone]}
	if b, _ := pem.Decode([]byte(key)); b != nil {
		if pub, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
			reg.PublicKey, reg.PublicDER = pub.(*rsa.PublicKey), b.Bytes
		}
	}
	if reg.PublicKey == nil && strings.TrimSpace(key) != "" {
		reg.KeyProblem = "business_public_key is not a valid PKIX public key"
	}
	return reg, nil
}

func (g *fakeGraph) PhoneNumbers(_ context.Context, _ graph.Auth, waba string) ([]graph.PhoneNumber, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.next("list", waba); err != nil {
		return nil, err
	}
	return slices.Clone(g.waba), nil
}

func (g *fakeGraph) counts() (uploads, gets map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	up, get := map[string]int{}, map[string]int{}
	for k, v := range g.uploads {
		up[k] = v
	}
	for k, v := range g.gets {
		get[k] = v
	}
	return up, get
}

// noKeys is a key generator no command may use.
type noKeys struct{}

func (noKeys) Generate(context.Context, string) (*keypair.Generated, error) {
	return nil, fmt.Errorf("test fake: operator commands never generate keys")
}

func generatePairs(n int) ([]*keypair.Pair, error) {
	var pairs []*keypair.Pair
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		p, err := keypair.FromPrivateKey("test key", k)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// recMetrics records what the operator reports.
type recMetrics struct {
	mu       sync.Mutex
	commands []string
	drift    [][2]int
}

func (m *recMetrics) Command(command string, _ time.Duration, ok bool, uploaded, verified, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commands = append(m.commands, fmt.Sprintf("%s ok=%v uploaded=%d verified=%d failed=%d", command, ok, uploaded, verified, failed))
}

func (m *recMetrics) Drift(numbers, drifted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drift = append(m.drift, [2]int{numbers, drifted})
}
