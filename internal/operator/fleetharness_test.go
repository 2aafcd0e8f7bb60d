package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

const (
	fleetName   = "flowkey-test"
	functionARN = "arn:aws:lambda:us-east-1:111122223333:function:flowkey-rotator"
)

// lambdaRecorder records the asynchronous invocations a fleet status makes.
type lambdaRecorder struct {
	mu  sync.Mutex
	ins []*lambda.InvokeInput
	err error
}

func (l *lambdaRecorder) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ins = append(l.ins, in)
	if l.err != nil {
		return nil, l.err
	}
	return &lambda.InvokeOutput{StatusCode: 202}, nil
}

func (l *lambdaRecorder) invocations() []*lambda.InvokeInput {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*lambda.InvokeInput(nil), l.ins...)
}

// recFleetMetrics records the tenant counts of each fleet status.
type recFleetMetrics struct {
	mu   sync.Mutex
	runs [][4]int
}

func (m *recFleetMetrics) Tenants(checked, unhealthy, incomplete, overdue int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, [4]int{checked, unhealthy, incomplete, overdue})
}

// clock is the fleet tests' time: it moves only when told to, or by tick
// on every Graph read (tickingGraph), so that a test decides how many
// tenants fit in an invocation without sleeping.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) advance() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.tick)
}

// tickingGraph is Meta whose every key read moves the clock.
type tickingGraph struct {
	*graphfake.Fake
	clock *clock
}

func (g tickingGraph) GetPublicKey(ctx context.Context, auth graph.Auth, id string) (*graph.Registration, error) {
	g.clock.advance()
	return g.Fake.GetPublicKey(ctx, auth, id)
}

// fleetHarness is an Operator with the fleet on, over the same fakes as
// harness: secretsfake is writable, and the stack's secret is not the
// default (SecretID "").
type fleetHarness struct {
	*harness
	lam   *lambdaRecorder
	fm    *recFleetMetrics
	clock *clock
	next  int // the next phone number's suffix
}

var fleetBase = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newFleetHarness(t *testing.T, tweak func(*Options)) *fleetHarness {
	t.Helper()
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	f := &fleetHarness{harness: h, lam: &lambdaRecorder{}, fm: &recFleetMetrics{}, clock: &clock{now: fleetBase}}
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	state, err := keystate.New(h.sm, h.g, keystate.Options{AccessTokenSecretID: tokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := rotation.New(state, h.sm, noKeys{}, h.g, rotation.Options{Concurrency: 4, VerifyTimeout: 100 * time.Millisecond, VerifyBackoff: time.Millisecond,
		VerifyMaxBackoff: 5 * time.Millisecond, RollbackReserve: time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{FunctionName: functionName, Concurrency: 3, Logger: log, Metrics: h.metrics, Now: f.clock.Now,
		Fleet:  FleetOptions{Name: fleetName, PageSize: 7, Concurrency: 4, DefaultTokenSecretID: tokenSecret, KMSKeyID: "arn:aws:kms:us-east-1:111122223333:key/fleet"},
		Lambda: f.lam, FunctionARN: functionARN, FleetMetrics: f.fm}
	if tweak != nil {
		tweak(&opts)
	}
	if h.op, err = New(h.sm, tickingGraph{h.g, f.clock}, state, rot, opts); err != nil {
		t.Fatal(err)
	}
	return f
}

// docOf is a version's value: cfg and, unless p is nil, a key.
func docOf(t *testing.T, cfg map[string]any, p *keypair.Pair) *string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"schema_version": 1, "config": cfg})
	if err != nil {
		t.Fatal(err)
	}
	d, err := secretdoc.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p != nil {
		d.Key = secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, fleetBase)
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return aws.String(string(out))
}

// numbers are n new phone number IDs.
func (f *fleetHarness) numbers(n int) []string {
	var ids []string
	for range n {
		f.next++
		ids = append(ids, fmt.Sprintf("1065403522%05d", f.next))
	}
	return ids
}

// tenant adds an enrolled tenant rotated 5 days ago, whose two numbers
// hold keyCur: a healthy one. It returns the secret and its numbers.
func (f *fleetHarness) tenant(t *testing.T, id string) (*secretsfake.Secret, []string) {
	t.Helper()
	nums := f.numbers(2)
	s := f.sm.Add(fleet.SecretName(fleet.DefaultSecretPrefix, id))
	s.Tags = map[string]string{fleet.TagFleet: fleetName, fleet.TagTenant: id, fleet.TagEnrolled: "true"}
	s.RotationLambdaARN = functionARN
	s.LastRotatedDate = aws.Time(fleetBase.Add(-5 * 24 * time.Hour))
	f.sm.Put(s, "v-"+id, docOf(t, map[string]any{"phone_number_ids": nums}, keyCur), rotation.StageCurrent)
	for _, n := range nums {
		f.g.Set(n, keyCur.PublicPEM(), graph.StatusValid)
	}
	return s, nums
}

func (f *fleetHarness) fleetStatus(t *testing.T, ctx context.Context, cmd Command) *FleetStatusReport {
	t.Helper()
	out, err := f.op.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	f.outputs = append(f.outputs, string(b))
	r, ok := out.(*FleetStatusReport)
	if !ok {
		t.Fatalf("report %T, want *FleetStatusReport", out)
	}
	return r
}
