package rotation

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
)

// slowGraph is Meta with a latency: every call takes delay, and a call
// still running at its context's deadline fails as the Graph client's
// does. The first call listed in hang never answers.
type slowGraph struct {
	GraphAPI
	delay time.Duration
	hang  map[string]bool // "upload/<id>" or "get/<id>"
	hung  *sync.Map
}

func (s slowGraph) wait(ctx context.Context, op, id string) error {
	if ctx.Err() != nil {
		return &graph.Error{Op: op, Object: id, Failure: graph.FailureTransport, Transport: graph.TransportDeadline, Err: ctx.Err(), Retryable: true}
	}
	d := s.delay
	if _, again := s.hung.LoadOrStore(op+"/"+id, true); s.hang[op+"/"+id] && !again {
		d = time.Hour
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &graph.Error{Op: op, Object: id, Failure: graph.FailureTransport, Transport: graph.TransportDeadline, Err: ctx.Err(),
			Attempts: 1, Retryable: true, Uncertain: "attempt 1: no response (deadline)"}
	}
}

func (s slowGraph) UploadPublicKey(ctx context.Context, auth graph.Auth, id, pem string) error {
	if err := s.wait(ctx, "upload", id); err != nil {
		return err
	}
	return s.GraphAPI.UploadPublicKey(ctx, auth, id, pem)
}

func (s slowGraph) GetPublicKey(ctx context.Context, auth graph.Auth, id string) (*graph.Registration, error) {
	if err := s.wait(ctx, "get", id); err != nil {
		return nil, err
	}
	return s.GraphAPI.GetPublicKey(ctx, auth, id)
}

// rotatorWith is h's rotator talking to g, with opts.
func (h *harness) rotatorWith(t *testing.T, g GraphAPI, opts Options) *Rotator {
	t.Helper()
	opts.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	r, err := New(h.state, h.sm, h.keys, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stepWithin runs one step of rotation token under a deadline of d.
func (h *harness) stepWithin(r *Rotator, d time.Duration, step, token string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := r.Handle(ctx, Event{Step: step, SecretID: h.arn, ClientRequestToken: token})
	return time.Since(start), err
}

// testSecret reads once more at the verification deadline: Meta's key may
// become visible between the last backoff and the deadline.
func TestVerifyMakesALastReadAtTheDeadline(t *testing.T) {
	h := newHarness(t, configOnly(phones[0]), phones[0])
	h.sm.StagePending(h.arn, "v1", nil)
	for _, s := range []string{StepCreate, StepSet} {
		if err := h.step(s, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	// The first two reads still show the old (blank) key. Reads take
	// 10 ms, so after the second one (at ~110 ms) the next backoff
	// (200 ms) would end past the 300 ms deadline.
	h.g.SetLag(phones[0], 2)
	h.g.ResetCounts()
	r := h.rotatorWith(t, slowGraph{GraphAPI: h.g, delay: 10 * time.Millisecond, hung: &sync.Map{}}, Options{
		VerifyTimeout: 300 * time.Millisecond, VerifyBackoff: 100 * time.Millisecond, VerifyMaxBackoff: time.Second,
	})
	if err := r.Handle(context.Background(), Event{Step: StepTest, SecretID: h.arn, ClientRequestToken: "v1"}); err != nil {
		t.Fatalf("testSecret: %v", err)
	}
	if n := h.g.Gets(phones[0]); n != 3 {
		t.Errorf("read %d times, want 3: two lagging reads and one at the deadline", n)
	}
}

// A read that hangs may not run into the time kept for the rollback: it is
// cut at the verification's share of the invocation, and the rollback then
// completes before the deadline.
func TestVerifyNeverEatsTheRollbackReserve(t *testing.T) {
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
	r := h.rotatorWith(t, slowGraph{GraphAPI: h.g, delay: time.Millisecond, hang: map[string]bool{"get/" + phones[1]: true}, hung: &sync.Map{}}, Options{
		VerifyTimeout: time.Hour, VerifyBackoff: time.Millisecond, RollbackReserve: 400 * time.Millisecond, ReportReserve: 100 * time.Millisecond,
	})
	took, err := h.stepWithin(r, 1500*time.Millisecond, StepTest, "v2")
	var se *StepError
	if !errors.As(err, &se) || len(se.RollbackFailed) != 0 || len(se.RolledBack) != len(phones) {
		t.Fatalf("want a testSecret failure with every number rolled back, got %v", err)
	}
	if took > 1400*time.Millisecond {
		t.Errorf("the step took %s, past its deadline less the report reserve", took)
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != current {
			t.Errorf("%s not back on the current key", p)
		}
	}
	h.assertInvariant(t)
}

// setSecret keeps time back for rollback, as testSecret does: an upload
// that hangs is cut where the rollback's reserve begins.
func TestSetSecretKeepsTimeForTheRollback(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	current := h.doc(t, StageCurrent).Key.FingerprintSHA256
	h.sm.StagePending(h.arn, "v2", nil)
	if err := h.step(StepCreate, "v2"); err != nil {
		t.Fatal(err)
	}
	r := h.rotatorWith(t, slowGraph{GraphAPI: h.g, delay: time.Millisecond, hang: map[string]bool{"upload/" + phones[2]: true}, hung: &sync.Map{}}, Options{
		RollbackReserve: 400 * time.Millisecond, ReportReserve: 100 * time.Millisecond,
	})
	took, err := h.stepWithin(r, 1500*time.Millisecond, StepSet, "v2")
	var se *StepError
	if !errors.As(err, &se) || len(se.Failed) != 1 || len(se.RolledBack) != len(phones) {
		t.Fatalf("want the hung number failed and every number rolled back, got %v", err)
	}
	if took > 1400*time.Millisecond {
		t.Errorf("the step took %s, past its deadline less the report reserve", took)
	}
	for _, p := range phones {
		if got := h.g.HeldFingerprint(p); got != current {
			t.Errorf("%s not back on the current key", p)
		}
	}
	h.assertInvariant(t)
}

// A rate-limited read is not polled: the Graph client already waited out
// what Meta's estimate allowed, and each read costs a call of the budget.
func TestVerifyStopsAtARateLimit(t *testing.T) {
	h := newHarness(t, configOnly(phones[0]), phones[0])
	h.sm.StagePending(h.arn, "v1", nil)
	for _, s := range []string{StepCreate, StepSet} {
		if err := h.step(s, "v1"); err != nil {
			t.Fatal(err)
		}
	}
	h.g.ResetCounts()
	limited := &graph.Error{Op: "get", Object: phones[0], Failure: graph.FailureGraph, HTTPStatus: 400, Code: 80007, Attempts: 1, Retryable: true, RateLimited: true}
	for range 50 {
		h.g.Fault("get", phones[0], limited)
	}
	err := h.step(StepTest, "v1")
	if err == nil || !strings.Contains(err.Error(), "80007") {
		t.Fatalf("want the rate limit reported, got %v", err)
	}
	if n := h.g.Gets(phones[0]); n != 1 {
		t.Errorf("read %d times while rate-limited, want 1", n)
	}
}
