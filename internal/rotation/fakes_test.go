package rotation

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// addSecret makes a secret whose version "v0-<name>" holds value as
// AWSCURRENT, with rotation enabled or never configured, and returns its ARN.
func addSecret(sm *secretsfake.Fake, name, value string, rotation bool) string {
	s := sm.Add(name)
	if !rotation {
		s.RotationEnabled = nil
	}
	sm.Put(s, "v0-"+name, aws.String(value), StageCurrent)
	return s.ARN
}

// doc returns the parsed document of the version holding label.
func (h *harness) doc(t *testing.T, label string) *secretdoc.Document {
	t.Helper()
	out, err := h.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(h.arn), VersionStage: aws.String(label)})
	if err != nil {
		t.Fatalf("read %s: %v", label, err)
	}
	d, err := secretdoc.Parse([]byte(*out.SecretString))
	if err != nil {
		t.Fatalf("parse %s: %v", label, err)
	}
	return d
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
	pairs := make([]*keypair.Pair, n)
	for i := range pairs {
		var err error
		if pairs[i], err = keypair.Generate(nil); err != nil {
			return nil, err
		}
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
