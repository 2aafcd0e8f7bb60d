package rotation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// testPairs is filled once by TestMain and only read afterwards.
var testPairs []*keypair.Pair

func TestMain(m *testing.M) {
	var err error
	if testPairs, err = generatePairs(4); err != nil {
		fmt.Fprintln(os.Stderr, "generate test keys:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

const (
	tokenSecret = "flowkey/graph-token"
	tokenValue  = "EAAG-test-token-do-not-log-7f3a9c"
)

var phones = []string{"106540352242922", "106540352242923", "106540352242924"}

type harness struct {
	sm    *secretsfake.Fake
	g     *graphfake.Fake
	keys  *keyPool
	rot   *Rotator
	state *keystate.Reader
	arn   string
	logs  *bytes.Buffer
}

func configOnly(ids ...string) string {
	b, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{"phone_number_ids": ids, "access_token_secret_id": tokenSecret}})
	return string(b)
}

func newHarness(t testing.TB, initial string, phoneIDs ...string) *harness {
	t.Helper()
	h := &harness{sm: secretsfake.New(t), g: graphfake.New(phoneIDs...), keys: &keyPool{pairs: testPairs}, logs: &bytes.Buffer{}}
	h.arn = addSecret(h.sm, "flowkey/key", initial, true)
	addSecret(h.sm, tokenSecret, tokenValue, false)
	var err error
	if h.state, err = keystate.New(h.sm, h.g, keystate.Options{}); err != nil {
		t.Fatal(err)
	}
	h.rot, err = New(h.state, h.sm, h.keys, h.g, Options{
		Concurrency:      4,
		VerifyTimeout:    200 * time.Millisecond,
		VerifyBackoff:    time.Millisecond,
		VerifyMaxBackoff: 5 * time.Millisecond,
		RollbackReserve:  time.Millisecond,
		Logger:           slog.New(slog.NewJSONHandler(h.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, leak := range []string{tokenValue, "PRIVATE KEY", "MII"} {
			if strings.Contains(h.logs.String(), leak) {
				t.Errorf("logs contain secret material %q", leak)
			}
		}
	})
	return h
}

func (h *harness) step(step, token string) error {
	return h.rot.Handle(context.Background(), Event{Step: step, SecretID: h.arn, ClientRequestToken: token, RotationToken: "rt-" + token})
}

// rotate does what Secrets Manager does: stage AWSPENDING, run the steps in
// order, stop at the first failure.
func (h *harness) rotate(t testing.TB, token string) error {
	t.Helper()
	h.sm.StagePending(h.arn, token, nil)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := h.step(s, token); err != nil {
			return err
		}
	}
	return nil
}

// assertInvariant checks that every key Meta holds has its private key in
// AWSCURRENT or AWSPENDING.
func (h *harness) assertInvariant(t *testing.T) {
	t.Helper()
	held := map[string]bool{}
	for _, label := range []string{StageCurrent, StagePending} {
		out, err := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, label))
		if err != nil {
			continue
		}
		if d, err := secretdoc.Parse([]byte(*out.SecretString)); err == nil && d.Key != nil {
			held[d.Key.FingerprintSHA256] = true
		}
	}
	for _, phone := range h.g.Numbers() {
		fp := h.g.HeldFingerprint(phone)
		if fp != "" && !held[fp] {
			t.Errorf("invariant broken: %s holds %s, which is in neither AWSCURRENT nor AWSPENDING", phone, fp[:16])
		}
	}
}

func TestCleanRotationsMoveTheKeyAndCostNUploadsAndNReads(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	first := h.doc(t, StageCurrent)
	if first.Key == nil {
		t.Fatal("AWSCURRENT holds no key after the first rotation")
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != first.Key.FingerprintSHA256 {
			t.Errorf("%s holds %.16s, want %.16s", p, got, first.Key.FingerprintSHA256)
		}
	}
	if up, get := h.g.Totals(); up != len(phones) || get != len(phones) {
		t.Errorf("first rotation made %d uploads and %d reads, want %d and %d", up, get, len(phones), len(phones))
	}
	if !equalConfig(first.Config, h.doc(t, StagePrevious).Config) {
		t.Error("configuration was not carried over")
	}

	if err := h.rotate(t, "v2"); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	second := h.doc(t, StageCurrent)
	if second.Key.FingerprintSHA256 == first.Key.FingerprintSHA256 {
		t.Fatal("second rotation kept the same key")
	}
	if prev := h.doc(t, StagePrevious); prev.Key.FingerprintSHA256 != first.Key.FingerprintSHA256 {
		t.Error("AWSPREVIOUS does not hold the first key")
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != second.Key.FingerprintSHA256 {
			t.Errorf("%s holds %.16s, want the second key", p, got)
		}
	}
	h.assertInvariant(t)
}

func equalConfig(a, b secretdoc.Config) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestEveryStepRunTwiceGivesTheSameState(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.sm.StagePending(h.arn, "v1", nil)
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := h.step(s, "v1"); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		secretState, meta := h.sm.Snapshot(h.arn), metaState(h.g)
		if err := h.step(s, "v1"); err != nil {
			t.Fatalf("%s again: %v", s, err)
		}
		if got := h.sm.Snapshot(h.arn); got != secretState {
			t.Errorf("%s again changed the secret:\nbefore\n%s\nafter\n%s", s, secretState, got)
		}
		if got := metaState(h.g); got != meta {
			t.Errorf("%s again changed Meta's keys:\nbefore %s\nafter  %s", s, meta, got)
		}
		h.assertInvariant(t)
	}
}

func metaState(g *graphfake.Fake) string {
	var s []string
	for _, p := range phones {
		fp := g.HeldFingerprint(p)
		if len(fp) > 16 {
			fp = fp[:16]
		}
		s = append(s, p+"="+fp)
	}
	return strings.Join(s, " ")
}

func TestGuards(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(h *harness)
		ev        Event
		wantErr   string // "" means success
		wantCalls int    // Secrets Manager calls made
	}{
		{name: "unknown step fails before any call", ev: Event{Step: "rotateSecret", SecretID: "x", ClientRequestToken: "v1"}, wantErr: `Step "rotateSecret" is not a rotation step`},
		{name: "missing fields are named", ev: Event{Step: StepCreate}, wantErr: "SecretId is missing"},
		{name: "missing token is named", ev: Event{Step: StepCreate, SecretID: "x"}, wantErr: "ClientRequestToken is missing"},
		{name: "rotation never enabled (nil)", setup: func(h *harness) { h.sm.Secret(h.arn).RotationEnabled = nil }, ev: Event{Step: StepCreate, ClientRequestToken: "v1"}, wantErr: "rotation is not enabled", wantCalls: 1},
		{name: "rotation disabled", setup: func(h *harness) { h.sm.Secret(h.arn).RotationEnabled = aws.Bool(false) }, ev: Event{Step: StepCreate, ClientRequestToken: "v1"}, wantErr: "rotation is not enabled", wantCalls: 1},
		{name: "token not a version", ev: Event{Step: StepSet, ClientRequestToken: "nope"}, wantErr: "no version with this ID", wantCalls: 1},
		{name: "token already current succeeds doing nothing", ev: Event{Step: StepSet, ClientRequestToken: "v0-flowkey/key"}, wantCalls: 1},
		{name: "token not pending fails", setup: func(h *harness) {
			s := h.sm.Secret(h.arn)
			s.Values["old"], s.Stages["old"] = aws.String(configOnly(phones...)), []string{StagePrevious}
		}, ev: Event{Step: StepTest, ClientRequestToken: "old"}, wantErr: "not staged AWSPENDING", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, configOnly(phones...), phones...)
			if tc.setup != nil {
				tc.setup(h)
			}
			if tc.ev.ClientRequestToken != "" && tc.ev.SecretID == "" {
				tc.ev.SecretID = h.arn
			}
			before := h.sm.Snapshot(h.arn)
			err := h.rot.Handle(context.Background(), tc.ev)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			}
			if calls := h.sm.TotalCalls(); calls != tc.wantCalls {
				t.Errorf("made %d Secrets Manager calls (%v), want %d", calls, h.sm.Ops(), tc.wantCalls)
			}
			if up, get := h.g.Totals(); up+get != 0 {
				t.Errorf("made %d Graph calls, want none", up+get)
			}
			if after := h.sm.Snapshot(h.arn); after != before {
				t.Errorf("guard changed the secret:\n%s\n->\n%s", before, after)
			}
		})
	}
}

// graphErr is a failure as graph.Client reports it after one attempt: a
// Graph error object when code is not 0, an HTTP error without one else.
// A 5xx may have landed.
func graphErr(op, phone string, status, code, sub int, retryable bool) error {
	e := &graph.Error{Op: op, Object: phone, Failure: graph.FailureHTTP, HTTPStatus: status, Code: code, Subcode: sub, Attempts: 1, Retryable: retryable, Message: "scripted"}
	if code != 0 {
		e.Failure = graph.FailureGraph
	}
	if status >= 500 {
		e.Uncertain = fmt.Sprintf("attempt 1: HTTP %d", status)
	}
	return e
}

func TestSetSecretFailureRollsBackSwitchedNumbers(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	current := h.doc(t, StageCurrent).Key.FingerprintSHA256
	bad := phones[1]
	h.g.Fault("upload", bad, graphErr("upload", bad, 400, 100, 0, false))

	err := h.rotate(t, "v2")
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("want *StepError, got %T %v", err, err)
	}
	if len(se.Failed) != 1 || se.Failed[0].PhoneNumberID != bad {
		t.Fatalf("failed numbers = %+v, want only %s", se.Failed, bad)
	}
	for _, want := range []string{"1 of 3 phone numbers failed", bad, "graph code 100", "HTTP 400", "Put the AWSCURRENT key back on 2 numbers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != current {
			t.Errorf("%s holds %.16s after rollback, want the current key %.16s", p, got, current)
		}
	}
	if h.g.Uploads(bad) != 2 {
		t.Errorf("the refused number got %d uploads; a definite refusal needs no rollback upload", h.g.Uploads(bad))
	}
	if h.doc(t, StageCurrent).Key.FingerprintSHA256 != current {
		t.Error("AWSCURRENT moved after a failed rotation")
	}
	h.assertInvariant(t)

	// Secrets Manager retries the whole rotation with the same token; the
	// fault is gone and the stored pending key is reused.
	pending := h.doc(t, StagePending).Key.FingerprintSHA256
	for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
	}
	if got := h.doc(t, StageCurrent).Key.FingerprintSHA256; got != pending {
		t.Error("the retried rotation did not finish with the key stored by the first attempt")
	}
	h.assertInvariant(t)
}

func TestSetSecretRollsBackAnUploadWhoseOutcomeIsUnknown(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	bad := phones[2]
	// A 503 after retries may have landed at Meta: it must be rolled back too.
	h.g.Fault("upload", bad, graphErr("upload", bad, 503, 0, 0, true))
	err := h.rotate(t, "v2")
	if err == nil || !strings.Contains(err.Error(), "Put the AWSCURRENT key back on 3 numbers") {
		t.Fatalf("want all 3 numbers rolled back, got %v", err)
	}
	h.assertInvariant(t)
}

func TestSetSecretRollsBackARefusalThatFollowedAnUncertainAttempt(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	bad := phones[0]
	// The first attempt timed out (it may have landed); the retry was
	// rate-limited. The number must be rolled back all the same.
	refused := &graph.Error{Op: "upload", Object: bad, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 80007, RateLimited: true, Attempts: 2,
		Message: "scripted", Uncertain: "attempt 1: no response (timeout)"}
	h.g.Fault("upload", bad, refused)
	err := h.rotate(t, "v2")
	if err == nil || !strings.Contains(err.Error(), "Put the AWSCURRENT key back on 3 numbers") {
		t.Fatalf("want every number rolled back, got %v", err)
	}
	h.assertInvariant(t)
}

func TestFirstRotationFailureKeepsPendingBecauseThereIsNothingToRollBackTo(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.g.Fault("upload", phones[0], graphErr("upload", phones[0], 400, 100, 33, false))
	err := h.rotate(t, "v1")
	if err == nil || !strings.Contains(err.Error(), "no AWSCURRENT key to put back") || !strings.Contains(err.Error(), "subcode 33") {
		t.Fatalf("want a first-rotation failure that explains itself, got %v", err)
	}
	if _, gerr := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, StagePending)); gerr != nil {
		t.Fatalf("AWSPENDING must stay readable: %v", gerr)
	}
	h.assertInvariant(t)
}

func TestTestSecret(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *harness)
		wantErr string
		gets    int // reads of phones[0], when > 0
	}{
		{name: "lag shorter than the deadline", setup: func(h *harness) { h.g.SetLag(phones[0], 2) }, gets: 3},
		{name: "persistent MISMATCH", setup: func(h *harness) { h.g.SetStatus(phones[0], graph.StatusMismatch) }, wantErr: `status "MISMATCH"`},
		{name: "another key behind our back", setup: func(h *harness) { h.g.SetKey(phones[0], testPairs[3].PublicPEM()) }, wantErr: "want"},
		{name: "auth error is not polled", setup: func(h *harness) { h.g.Fault("get", phones[0], graphErr("get", phones[0], 401, 190, 0, false)) }, wantErr: "graph code 190", gets: 1},
		{name: "transient error is polled through", setup: func(h *harness) { h.g.Fault("get", phones[0], graphErr("get", phones[0], 500, 0, 0, true)) }, gets: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, configOnly(phones...), phones...)
			if err := h.rotate(t, "v1"); err != nil {
				t.Fatal(err)
			}
			current := h.doc(t, StageCurrent).Key.FingerprintSHA256
			h.sm.StagePending(h.arn, "v2", nil)
			for _, s := range []string{StepCreate, StepSet} {
				if err := h.step(s, "v2"); err != nil {
					t.Fatal(err)
				}
			}
			h.g.ResetCounts()
			tc.setup(h)
			err := h.step(StepTest, "v2")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("testSecret: %v", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), phones[0]) {
					t.Fatalf("want an error naming %s and %q, got %v", phones[0], tc.wantErr, err)
				}
				for _, p := range phones {
					if got := h.g.HeldFingerprint(p); got != current {
						t.Errorf("%s not rolled back to the current key", p)
					}
				}
				if ferr := h.step(StepFinish, "v2"); ferr == nil || !strings.Contains(ferr.Error(), "testSecret has not verified") {
					t.Errorf("finishSecret after a failed test: want refusal, got %v", ferr)
				}
			}
			if tc.gets > 0 && h.g.Gets(phones[0]) != tc.gets {
				t.Errorf("read %s %d times, want %d", phones[0], h.g.Gets(phones[0]), tc.gets)
			}
			h.assertInvariant(t)
		})
	}
}

func TestTestSecretAloneVerifiesTheCurrentKeyAndUploadsNothing(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	// RotateImmediately=false: a pending copy of the current value.
	cur, _ := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, StageCurrent))
	h.sm.StagePending(h.arn, "check", cur.SecretString)
	up0, get0 := h.g.Totals()
	if err := h.step(StepTest, "check"); err != nil {
		t.Fatalf("testSecret alone: %v", err)
	}
	if up, get := h.g.Totals(); up != up0 || get-get0 != len(phones) {
		t.Errorf("made %d uploads and %d reads, want 0 and %d", up-up0, get-get0, len(phones))
	}
	h.g.SetStatus(phones[1], graph.StatusMismatch)
	err := h.step(StepTest, "check")
	if err == nil || !strings.Contains(err.Error(), "nothing was uploaded") {
		t.Fatalf("want a verification-only failure, got %v", err)
	}
	if up, _ := h.g.Totals(); up != up0 {
		t.Error("a verification-only testSecret uploaded")
	}
}

func TestFinishSecretRefusesAnUnverifiedVersion(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.sm.StagePending(h.arn, "v1", nil)
	if err := h.step(StepCreate, "v1"); err != nil {
		t.Fatal(err)
	}
	before := h.sm.Snapshot(h.arn)
	err := h.step(StepFinish, "v1")
	var ge *GuardError
	if !errors.As(err, &ge) {
		t.Fatalf("want *GuardError, got %v", err)
	}
	if h.sm.Snapshot(h.arn) != before {
		t.Error("a refused finishSecret changed the secret")
	}
}

func TestCreateSecret(t *testing.T) {
	t.Run("generator failure changes nothing", func(t *testing.T) {
		h := newHarness(t, configOnly(phones...), phones...)
		h.keys.fail = errors.New("kms: connection refused")
		h.sm.StagePending(h.arn, "v1", nil)
		before := h.sm.Snapshot(h.arn)
		if err := h.step(StepCreate, "v1"); err == nil || !strings.Contains(err.Error(), "generate key pair") {
			t.Fatalf("want a generation error, got %v", err)
		}
		if h.sm.Snapshot(h.arn) != before {
			t.Error("a failed createSecret changed the secret")
		}
	})
	t.Run("invalid current document is named and changes nothing", func(t *testing.T) {
		h := newHarness(t, `{"schema_version":7,"config":{}}`, phones...)
		h.sm.StagePending(h.arn, "v1", nil)
		before := h.sm.Snapshot(h.arn)
		err := h.step(StepCreate, "v1")
		var de *secretdoc.Error
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "schema_version") {
			t.Fatalf("want a secretdoc error about schema_version, got %v", err)
		}
		if h.sm.Snapshot(h.arn) != before {
			t.Error("changed the secret")
		}
	})
	t.Run("a concurrent createSecret's key wins", func(t *testing.T) {
		h := newHarness(t, configOnly(phones...), phones...)
		h.sm.StagePending(h.arn, "v1", nil)
		// Simulate the other invocation storing first, after our read.
		other := &secretdoc.Document{SchemaVersion: 1, Config: h.doc(t, StageCurrent).Config,
			Key: secretdoc.NewKey(&keypair.Generated{Pair: testPairs[2], Method: keypair.MethodCrypto}, time.Now())}
		body, err := other.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		h.sm.FailNext("PutSecretValue", &types.ResourceExistsException{Message: aws.String("exists")})
		h.sm.Secret(h.arn).Values["v1"] = aws.String(string(body))
		// The first pending read already happened in real life; here the
		// value is present, so createSecret must simply accept it.
		if err := h.step(StepCreate, "v1"); err != nil {
			t.Fatal(err)
		}
		if got := h.doc(t, StagePending).Key.FingerprintSHA256; got != testPairs[2].Fingerprint().String() {
			t.Error("the concurrently stored key was replaced")
		}
	})
	t.Run("ClientRequestToken and RotationToken are passed", func(t *testing.T) {
		h := newHarness(t, configOnly(phones...), phones...)
		h.sm.StagePending(h.arn, "v1", nil)
		if err := h.step(StepCreate, "v1"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.sm.GetSecretValue(context.Background(), secretsGetVersion(h.arn, "v1", StagePending)); err != nil {
			t.Fatalf("value not stored on the token's version: %v", err)
		}
	})
}

func TestAccessTokenSecretForms(t *testing.T) {
	tests := []struct {
		value, wantErr string
	}{
		{value: tokenValue},
		{value: `{"access_token":"` + tokenValue + `"}`},
		{value: `{"token":"x"}`, wantErr: `without a non-empty "access_token"`},
		{value: "  ", wantErr: "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			h := newHarness(t, configOnly(phones...), phones...)
			*h.sm.Secret(tokenSecret).Values["v0-"+tokenSecret] = tc.value
			err := h.rotate(t, "v1")
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want %q, got %v", tc.wantErr, err)
				}
				if strings.Contains(err.Error(), tokenValue) {
					t.Error("error quotes the token")
				}
			}
		})
	}
}

func TestWABANumbersAreDiscoveredAndFiltered(t *testing.T) {
	doc, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{
		"waba_id": "102290129340398", "exclude_phone_number_ids": []string{phones[2]}, "access_token_secret_id": tokenSecret}})
	h := newHarness(t, string(doc), phones...)
	for _, p := range phones {
		h.g.AddWABA(graph.PhoneNumber{ID: p})
	}
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	if h.g.Uploads(phones[2]) != 0 || h.g.Gets(phones[2]) != 0 {
		t.Error("an excluded number was touched")
	}
	if h.g.Uploads(phones[0]) != 1 || h.g.Uploads(phones[1]) != 1 {
		t.Error("included numbers were not uploaded once each")
	}
}

// A WABA with more numbers than one secret may cover fails the rotation
// at setSecret, before a single upload, with the count and the fix.
func TestAWABAWithTooManyNumbersIsRefusedBeforeAnyUpload(t *testing.T) {
	doc, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{
		"waba_id": "102290129340398", "access_token_secret_id": tokenSecret}})
	var ids []string
	for i := range secretdoc.MaxPhoneNumbers + 1 {
		ids = append(ids, fmt.Sprintf("1065403522%05d", i))
	}
	h := newHarness(t, string(doc), ids...)
	for _, p := range ids {
		h.g.AddWABA(graph.PhoneNumber{ID: p})
	}
	err := h.rotate(t, "v1")
	var ie *keystate.InputError
	if err == nil || !errors.As(err, &ie) || ie.Field != "config.waba_id" || !strings.Contains(err.Error(), "has 101 phone numbers") ||
		!strings.Contains(err.Error(), "more than the 100 one secret may cover") || !strings.Contains(err.Error(), "split the numbers across secrets") {
		t.Fatalf("rotate = %v, want an error naming config.waba_id, the count, the limit and the fix", err)
	}
	for _, p := range ids {
		if n := h.g.Uploads(p) + h.g.Gets(p); n != 0 {
			t.Fatalf("%s was called %d times; nothing may reach Meta for numbers beyond the limit", p, n)
		}
	}
}

func TestTestSecretAloneOnAConfigurationOnlySecretChecksAccess(t *testing.T) {
	// What CloudFormation runs at deploy: RotateImmediately=false before
	// any key exists.
	h := newHarness(t, configOnly(phones...), phones...)
	cur, _ := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, StageCurrent))
	h.sm.StagePending(h.arn, "check", cur.SecretString)
	if err := h.step(StepTest, "check"); err != nil {
		t.Fatalf("testSecret on a configuration-only secret: %v", err)
	}
	if up, get := h.g.Totals(); up != 0 || get != len(phones) {
		t.Errorf("made %d uploads and %d reads, want 0 and %d", up, get, len(phones))
	}
	h.g.Fault("get", phones[2], graphErr("get", phones[2], 403, 10, 0, false))
	if err := h.step(StepTest, "check"); err == nil || !strings.Contains(err.Error(), "graph code 10") {
		t.Fatalf("want the permission error reported, got %v", err)
	}
}

// BenchmarkCleanRotation is the rotator's own cost of a four-step rotation
// of 25 numbers, key generation and I/O excluded (pooled keys, fakes).
func BenchmarkCleanRotation(b *testing.B) {
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("1065403522%05d", i)
	}
	h := newHarness(b, configOnly(many...), many...)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := h.rotate(b, fmt.Sprintf("v%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLogLinesCarryEachAttributeOnce(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		for _, key := range []string{`"secret_arn":`, `"step":`, `"token":`} {
			if n := strings.Count(line, key); n > 1 {
				t.Errorf("%s appears %d times in %s", key, n, line)
			}
		}
		if !strings.Contains(line, `"secret_arn":"`+h.arn+`"`) {
			t.Errorf("log line without the secret ARN: %s", line)
		}
	}
}
