package rotation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// fakeSecrets is a Secrets Manager that really moves staging labels and
// enforces PutSecretValue token idempotency, for the secrets the tests use.
type fakeSecrets struct {
	mu       sync.Mutex
	secrets  map[string]*fakeSecret // by ARN
	byName   map[string]string
	calls    map[string]int
	failNext map[string]error // op → error returned once
}

type fakeSecret struct {
	arn             string
	rotationEnabled *bool
	values          map[string]*string  // version → value (nil: staged, no value)
	stages          map[string][]string // version → labels
}

func newFakeSecrets() *fakeSecrets {
	return &fakeSecrets{secrets: map[string]*fakeSecret{}, byName: map[string]string{}, calls: map[string]int{}, failNext: map[string]error{}}
}

func (f *fakeSecrets) add(name, value string, rotation bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	arn := "arn:aws:secretsmanager:us-east-1:111122223333:secret:" + name + "-AbCdEf"
	s := &fakeSecret{arn: arn, values: map[string]*string{}, stages: map[string][]string{}}
	if rotation {
		s.rotationEnabled = aws.Bool(true)
	}
	v := "v0-" + name
	s.values[v] = aws.String(value)
	s.stages[v] = []string{StageCurrent}
	f.secrets[arn] = s
	f.byName[name] = arn
	return arn
}

// stagePending does what RotateSecret does before the first step.
func (f *fakeSecrets) stagePending(arn, token string, value *string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[arn]
	f.removeLabel(s, StagePending)
	s.values[token] = value
	s.stages[token] = append(s.stages[token], StagePending)
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
	f.calls[op]++
	if err, ok := f.failNext[op]; ok {
		delete(f.failNext, op)
		return err
	}
	return nil
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
	stages := map[string][]string{}
	for v, l := range s.stages {
		if len(l) > 0 {
			stages[v] = slices.Clone(l)
		}
	}
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String(s.arn), RotationEnabled: s.rotationEnabled, VersionIdsToStages: stages}, nil
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
	stage := aws.ToString(in.VersionStage)
	version := aws.ToString(in.VersionId)
	if version == "" {
		if stage == "" {
			stage = StageCurrent
		}
		for v, l := range s.stages {
			if slices.Contains(l, stage) {
				version = v
			}
		}
	}
	val, ok := s.values[version]
	if !ok || val == nil || (stage != "" && !slices.Contains(s.stages[version], stage)) {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret value for VersionId: " + version)}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(version), SecretString: val, VersionStages: slices.Clone(s.stages[version])}, nil
}

func (f *fakeSecrets) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("PutSecretValue"); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	token := aws.ToString(in.ClientRequestToken)
	if token == "" {
		return nil, &types.InvalidParameterException{Message: aws.String("test fake: ClientRequestToken must be set")}
	}
	if old, ok := s.values[token]; ok && old != nil {
		if *old == aws.ToString(in.SecretString) {
			return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(token)}, nil
		}
		return nil, &types.ResourceExistsException{Message: aws.String("You can't modify an existing version, you can only create a new version.")}
	}
	s.values[token] = aws.String(aws.ToString(in.SecretString))
	labels := in.VersionStages
	if len(labels) == 0 {
		labels = []string{StageCurrent}
	}
	for _, l := range labels {
		f.attach(s, l, token)
	}
	return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(token), VersionStages: labels}, nil
}

func (f *fakeSecrets) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("UpdateSecretVersionStage"); err != nil {
		return nil, err
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	label, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	holder := ""
	for v, l := range s.stages {
		if slices.Contains(l, label) {
			holder = v
		}
	}
	if holder != "" && holder != to && holder != from {
		return nil, &types.InvalidParameterException{Message: aws.String(fmt.Sprintf("The staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder))}
	}
	if from != "" && holder != from {
		return nil, &types.InvalidParameterException{Message: aws.String("RemoveFromVersionId does not hold the label")}
	}
	if to != "" {
		if _, ok := s.values[to]; !ok {
			return nil, &types.ResourceNotFoundException{Message: aws.String("no version " + to)}
		}
		f.attach(s, label, to)
	} else {
		f.removeLabel(s, label)
	}
	return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn)}, nil
}

// attach moves label to version; moving AWSCURRENT makes the old holder AWSPREVIOUS.
func (f *fakeSecrets) attach(s *fakeSecret, label, version string) {
	old := ""
	for v, l := range s.stages {
		if slices.Contains(l, label) {
			old = v
		}
	}
	if old == version {
		return
	}
	f.removeLabel(s, label)
	s.stages[version] = append(s.stages[version], label)
	if label == StageCurrent && old != "" {
		f.removeLabel(s, StagePrevious)
		s.stages[old] = append(s.stages[old], StagePrevious)
	}
}

func (f *fakeSecrets) removeLabel(s *fakeSecret, label string) {
	for v, l := range s.stages {
		s.stages[v] = slices.DeleteFunc(l, func(x string) bool { return x == label })
	}
}

// snapshot is the labels and values of a secret, for comparing states.
func (f *fakeSecrets) snapshot(arn string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.secrets[arn]
	var lines []string
	for v, l := range s.stages {
		ls := slices.Clone(l)
		sort.Strings(ls)
		val := "<none>"
		if p := s.values[v]; p != nil {
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

// doc returns the parsed document of the version holding label.
func (f *fakeSecrets) doc(t *testing.T, arn, label string) *secretdoc.Document {
	t.Helper()
	out, err := f.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(label)})
	if err != nil {
		t.Fatalf("read %s: %v", label, err)
	}
	d, err := secretdoc.Parse([]byte(*out.SecretString))
	if err != nil {
		t.Fatalf("parse %s: %v", label, err)
	}
	return d
}

// fakeGraph is Meta's per-number key store with scripted faults.
type fakeGraph struct {
	mu      sync.Mutex
	keys    map[string]string // phone → PEM
	status  map[string]string
	faults  map[string][]error // "op/phone" → errors returned in order
	lag     map[string]int     // phone → GETs that still show the previous key
	prev    map[string]string
	uploads map[string]int
	gets    map[string]int
	waba    []graph.PhoneNumber
}

func newFakeGraph(phones ...string) *fakeGraph {
	g := &fakeGraph{keys: map[string]string{}, status: map[string]string{}, faults: map[string][]error{}, lag: map[string]int{}, prev: map[string]string{}, uploads: map[string]int{}, gets: map[string]int{}}
	for _, p := range phones {
		g.keys[p] = " "
		g.status[p] = graph.StatusMismatch
	}
	return g
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
	if auth.Token.IsZero() || auth.Version == "" {
		return &graph.Error{Op: "upload", Object: phone, HTTPStatus: 401, Code: 190}
	}
	if err := g.next("upload", phone); err != nil {
		return err
	}
	if _, ok := g.keys[phone]; !ok {
		return &graph.Error{Op: "upload", Object: phone, HTTPStatus: 400, Code: 100, Subcode: 33}
	}
	g.prev[phone] = g.keys[phone]
	g.keys[phone] = pemText
	g.status[phone] = graph.StatusValid
	return nil
}

func (g *fakeGraph) GetPublicKey(_ context.Context, auth graph.Auth, phone string) (*graph.Registration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gets[phone]++
	if err := g.next("get", phone); err != nil {
		return nil, err
	}
	key := g.keys[phone]
	if g.lag[phone] > 0 {
		g.lag[phone]--
		key = g.prev[phone]
	}
	reg := &graph.Registration{PublicKeyPEM: key, Status: g.status[phone]}
	if b, _ := pem.Decode([]byte(key)); b != nil {
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err == nil {
			reg.PublicKey = pub.(*rsa.PublicKey)
			reg.PublicDER = b.Bytes
		}
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

func (g *fakeGraph) heldFingerprint(phone string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, _ := pem.Decode([]byte(g.keys[phone]))
	if b == nil {
		return ""
	}
	return keypair.FingerprintOf(b.Bytes).String()
}

func (g *fakeGraph) counts() (uploads, gets int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.uploads {
		uploads += n
	}
	for _, n := range g.gets {
		gets += n
	}
	return uploads, gets
}

// keyPool hands out pairs generated once in TestMain: RSA generation is
// too slow to do per test case.
type keyPool struct {
	mu    sync.Mutex
	pairs []*keypair.Pair
	fail  error
	n     int
}

func generatePairs(n int) ([]*keypair.Pair, error) {
	var pairs []*keypair.Pair
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pair, err := keypair.FromPrivateKey("test key", k)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, pair)
	}
	return pairs, nil
}

func (p *keyPool) Generate(context.Context, string) (*keypair.Generated, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	pair := p.pairs[p.n%len(p.pairs)]
	p.n++
	return &keypair.Generated{Pair: pair, Method: keypair.MethodCrypto}, nil
}

func secretsGet(arn, stage string) *secretsmanager.GetSecretValueInput {
	return &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)}
}

func secretsGetVersion(arn, version, stage string) *secretsmanager.GetSecretValueInput {
	return &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(version), VersionStage: aws.String(stage)}
}
