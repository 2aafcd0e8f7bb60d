package keystate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Pairs made once: RSA generation is too slow per test.
var pairs [4]*keypair.Pair

func TestMain(m *testing.M) {
	for i := range pairs {
		var err error
		if pairs[i], err = keypair.Generate(nil); err != nil {
			fmt.Fprintln(os.Stderr, "generate test keys:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

const (
	tokenSecret = "flowkey/graph-token"
	tokenValue  = "EAAG-test-token-do-not-log-7f3a9c"
	wabaID      = "102290129340398"
)

var phones = []string{"106540352242922", "106540352242923", "106540352242924"}

// fixture is a secret "flowkey/key" and a token secret in a fake Secrets
// Manager, a fake Graph, and a Reader over both.
type fixture struct {
	sm  *secretsfake.Fake
	g   *graphfake.Fake
	s   *secretsfake.Secret
	arn string
	r   *Reader
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{sm: secretsfake.New(t), g: graphfake.New(phones...)}
	f.s = f.sm.Add("flowkey/key")
	f.arn = f.s.ARN
	f.sm.Put(f.sm.Add(tokenSecret), "t1", aws.String(tokenValue), StageCurrent)
	var err error
	if f.r, err = New(f.sm, f.g, opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// doc is a version's value: cfg (phone_number_ids of the phones when nil)
// and, unless p is nil, p's key.
func doc(t *testing.T, cfg map[string]any, p *keypair.Pair) *string {
	t.Helper()
	if cfg == nil {
		cfg = map[string]any{"phone_number_ids": phones, "access_token_secret_id": tokenSecret}
	}
	b, err := json.Marshal(map[string]any{"schema_version": 1, "config": cfg})
	if err != nil {
		t.Fatal(err)
	}
	d, err := secretdoc.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		d.Key = secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return aws.String(string(out))
}

// stubSecrets answers every call with the same output or error, for what
// the fake cannot produce (a DescribeSecret without an ARN, a version
// without a SecretString).
type stubSecrets struct {
	describe *secretsmanager.DescribeSecretOutput
	get      *secretsmanager.GetSecretValueOutput
	err      error
}

func (s stubSecrets) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return s.describe, s.err
}

func (s stubSecrets) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return s.get, s.err
}

func TestNewNeedsBothClients(t *testing.T) {
	g := graphfake.New()
	sm := secretsfake.New(t)
	for _, tc := range []struct {
		name string
		sm   SecretsAPI
		g    GraphAPI
	}{{"no Secrets Manager", nil, g}, {"no Graph", sm, nil}, {"neither", nil, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := New(tc.sm, tc.g, Options{}); err == nil || r != nil {
				t.Errorf("New = %v, %v; want an error", r, err)
			}
		})
	}
}

func TestInputErrorNamesTheFieldAndTheFix(t *testing.T) {
	err := &InputError{Field: "config.x", Problem: "is wrong", Fix: "set it right"}
	if got, want := err.Error(), "config.x is wrong; fix: set it right"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// assertNoToken fails if the token value leaked into text.
func assertNoToken(t *testing.T, text string) {
	t.Helper()
	if strings.Contains(text, tokenValue) {
		t.Errorf("%q contains the token", text)
	}
}

var errBoom = errors.New("boom")
