package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Keys made once: RSA generation is too slow per test.
var (
	keyCur, keyPend, keyPrev, keyForeign *keypair.Pair
)

func TestMain(m *testing.M) {
	var pairs [4]*keypair.Pair
	for i := range pairs {
		var err error
		if pairs[i], err = keypair.Generate(nil); err != nil {
			fmt.Fprintln(os.Stderr, "generate test keys:", err)
			os.Exit(1)
		}
	}
	keyCur, keyPend, keyPrev, keyForeign = pairs[0], pairs[1], pairs[2], pairs[3]
	os.Exit(m.Run())
}

const (
	tokenSecret  = "flowkey/graph-token"
	tokenValue   = "EAAG-test-token-do-not-log-7f3a9c"
	functionName = "flowkey-rotator"
	wabaID       = "102290129340398"
)

var phones = []string{"106540352242922", "106540352242923", "106540352242924", "106540352242925", "106540352242926"}

type harness struct {
	sm      *secretsfake.Fake
	g       *graphfake.Fake
	s       *secretsfake.Secret
	arn     string
	cfg     map[string]any
	op      *Operator
	logs    *bytes.Buffer
	metrics *recMetrics
	outputs []string
}

// newHarness makes a secret whose documents carry cfg (phone_number_ids
// of the first three phones when nil) and an Operator over a real
// keystate.Reader and rotation.Rotator.
func newHarness(t *testing.T, cfg map[string]any) *harness {
	t.Helper()
	if cfg == nil {
		cfg = map[string]any{"phone_number_ids": phones[:3]}
	}
	cfg["access_token_secret_id"] = tokenSecret
	h := &harness{sm: secretsfake.New(t), g: graphfake.New(), cfg: cfg, logs: &bytes.Buffer{}, metrics: &recMetrics{}}
	// Commands must never write the secret: PutSecretValue and
	// UpdateSecretVersionStage refuse.
	h.sm.ReadOnly = true
	h.s = h.sm.Add("flowkey/key")
	h.arn = h.s.ARN
	tok := h.sm.Add(tokenSecret)
	h.sm.Put(tok, "t1", aws.String(tokenValue), rotation.StageCurrent)
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	state, err := keystate.New(h.sm, h.g, keystate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := rotation.New(state, h.sm, noKeys{}, h.g, rotation.Options{
		Concurrency:      4,
		VerifyTimeout:    100 * time.Millisecond,
		VerifyBackoff:    time.Millisecond,
		VerifyMaxBackoff: 5 * time.Millisecond,
		RollbackReserve:  time.Millisecond,
		Logger:           log,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.op, err = New(h.sm, h.g, state, rot, Options{SecretID: h.arn, FunctionName: functionName, Concurrency: 3, Logger: log, Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all := h.logs.String() + strings.Join(h.outputs, "\n")
		for _, leak := range []string{tokenValue, "PRIVATE KEY", "MII"} {
			if strings.Contains(all, leak) {
				t.Errorf("logs or results contain secret material %q", leak)
			}
		}
	})
	return h
}

// doc is a version's value: the configuration and, unless p is nil, a key.
func (h *harness) doc(t *testing.T, p *keypair.Pair) *string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"schema_version": 1, "config": h.cfg})
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

// standard is the state after two clean rotations: AWSPREVIOUS holds
// keyPrev, AWSCURRENT keyCur, and every number holds keyCur.
func (h *harness) standard(t *testing.T, numbers ...string) {
	t.Helper()
	h.sm.Put(h.s, "v-prev", h.doc(t, keyPrev), rotation.StageCurrent)
	h.sm.Put(h.s, "v-cur", h.doc(t, keyCur), rotation.StageCurrent, rotation.StagePending)
	h.sm.Put(h.s, "v-prev", h.s.Values["v-prev"], rotation.StagePrevious)
	for _, p := range numbers {
		h.g.Set(p, keyCur.PublicPEM(), graph.StatusValid)
	}
}

// pending starts an incomplete rotation on version id holding p (nil: no value yet).
func (h *harness) pending(t *testing.T, id string, p *keypair.Pair) {
	t.Helper()
	var v *string
	if p != nil {
		v = h.doc(t, p)
	}
	h.sm.Put(h.s, id, v, rotation.StagePending)
}

func (h *harness) run(t *testing.T, cmd Command) (any, error) {
	t.Helper()
	out, err := h.op.Run(context.Background(), cmd)
	if err != nil {
		h.outputs = append(h.outputs, err.Error())
		return nil, err
	}
	b, jerr := json.Marshal(out)
	if jerr != nil {
		t.Fatalf("result does not marshal: %v", jerr)
	}
	h.outputs = append(h.outputs, string(b))
	return out, nil
}

func (h *harness) status(t *testing.T) *StatusReport {
	t.Helper()
	out, err := h.run(t, Command{Name: CommandStatus})
	if err != nil {
		t.Fatal(err)
	}
	return out.(*StatusReport)
}

func (h *harness) assertNoWrites(t *testing.T) {
	t.Helper()
	if w := h.sm.Writes(); len(w) != 0 {
		t.Errorf("Secrets Manager writes: %v", w)
	}
	up, _ := h.g.Counts()
	if len(up) != 0 {
		t.Errorf("Graph uploads: %v", up)
	}
}

// graphErr is a Graph error object with a code, as graph.Client reports it.
func graphErr(op, phone string, status, code, subcode int, retryable bool) *graph.Error {
	return &graph.Error{Op: op, Object: phone, Failure: graph.FailureGraph, HTTPStatus: status, Code: code, Subcode: subcode, Type: "OAuthException",
		Message: "test failure", FBTraceID: "AbCdEf", Attempts: 1, Retryable: retryable}
}

func byID[T any](t *testing.T, items []T, id func(T) string, want string) T {
	t.Helper()
	for _, it := range items {
		if id(it) == want {
			return it
		}
	}
	t.Fatalf("no entry for %s", want)
	var zero T
	return zero
}

func numberOf(r *StatusReport, t *testing.T, id string) NumberStatus {
	return byID(t, r.Numbers, func(n NumberStatus) string { return n.PhoneNumberID }, id)
}
