package soak

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestTheCheckSeesEachViolation plants each break of the invariant, and
// of the rules that protect it, on a real stack: a check that could not
// see them would pass every soak.
func TestTheCheckSeesEachViolation(t *testing.T) {
	ctx := context.Background()
	opts := Options{Binaries: binaries, Dir: t.TempDir()}
	e, err := start(ctx, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	sec := e.secrets[0]
	for i := 1; i <= 2; i++ {
		if a := e.attempt(ctx, Plan{Seed: 1, Attempt: i}); a.Outcome != OutcomeRotated || a.Violations != 0 || a.Beyond2N != 0 {
			t.Fatalf("clean attempt %d: %s, %d violations, %d calls beyond 2N: %q", i, a.Outcome, a.Violations, a.Beyond2N, a.trace())
		}
	}
	o, err := e.observe(ctx, sec)
	if err != nil {
		t.Fatal(err)
	}
	current, previous := o.withStage(t, stageCurrent), o.withStage(t, stagePrevious)
	phone := sec.numbers[1]
	setKey := func(der []byte) {
		t.Helper()
		if err := e.st.Graph.SetKey(phone, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), ""); err != nil {
			t.Fatal(err)
		}
	}
	a := &Attempt{Plan: Plan{Seed: 1, Attempt: 3}}
	expect := func(what string, want ...string) {
		t.Helper()
		before := len(e.res.Violations)
		e.check(ctx, a, what)
		got := e.res.Violations[before:]
		if len(got) != len(want) {
			t.Fatalf("%s: %d violations, want %d: %+v", what, len(got), len(want), got)
		}
		for i, w := range want {
			if !strings.Contains(got[i].Problem, w) || got[i].Secret != sec.name || got[i].Seed != 1 || got[i].Attempt != 3 {
				t.Errorf("%s: violation %+v, want one on %s saying %q", what, got[i], sec.name, w)
			}
		}
	}
	expect("the clean state")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stray, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	setKey(stray)
	expect("a key no version holds", "whose private key is in no labelled version")
	setKey(previous.der)
	expect("the AWSPREVIOUS key", "AWSPREVIOUS alone")
	setKey(current.der)
	expect("the AWSCURRENT key again")

	label := func(in *secretsmanager.UpdateSecretVersionStageInput) {
		t.Helper()
		in.SecretId, in.VersionStage = aws.String(sec.arn), aws.String(stagePending)
		if _, err := e.st.SM.UpdateSecretVersionStage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	move := &secretsmanager.UpdateSecretVersionStageInput{MoveToVersionId: aws.String(previous.id)}
	if o.pending != nil {
		move.RemoveFromVersionId = aws.String(o.pending.id)
	}
	label(move)
	expect("AWSPENDING on the previous version", "AWSPENDING is on version "+previous.id)
	label(&secretsmanager.UpdateSecretVersionStageInput{RemoveFromVersionId: aws.String(previous.id)})
	expect("AWSPENDING removed")

	before := len(e.res.Violations)
	e.checkAdvice(ctx, a, sec, "a report", "aws secretsmanager update-secret-version-stage --secret-id "+sec.arn+
		" --version-stage AWSPENDING --remove-from-version-id "+current.id)
	if got := e.res.Violations[before:]; len(got) != 1 || !strings.Contains(got[0].Problem, "advises removing AWSPENDING from version "+current.id) {
		t.Errorf("advice to remove AWSPENDING from a version with a key: %+v", got)
	}
	if e.res.Checks == 0 || e.res.Places[PendingElsewhere] != 1 {
		t.Errorf("checks %d, places %v", e.res.Checks, e.res.Places)
	}
}

func (o *observation) withStage(t *testing.T, stage string) *version {
	t.Helper()
	for _, v := range o.versions {
		if slices.Contains(v.stages, stage) && v.der != nil {
			return v
		}
	}
	t.Fatalf("no version %s with a key: %q", stage, o.labels())
	return nil
}
