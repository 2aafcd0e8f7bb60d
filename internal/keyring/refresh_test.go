package keyring_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
)

var errBoom = errors.New("boom")

func TestAMissRefreshesAtOnceAndTriesOnlyTheNewKeys(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.put("v0", p[2], secretsfake.StagePrevious)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.wantCalls(1, 2)
	// setSecret has uploaded a key this instance has not seen: a client
	// that fetched it sends a request before the TTL runs out.
	f.clock.Advance(floor)
	f.put("v2", p[1], secretsfake.StagePending)
	res := f.mustDecrypt(block(t, p[1]), keyring.LabelPending)
	if !res.Refreshed || res.RSAOps != 3 {
		t.Fatalf("got %+v; want a refresh and 3 RSA operations (2 old keys, then the new one)", res)
	}
	f.wantCalls(2, 3)
}

func TestConcurrentMissesShareOneRefresh(t *testing.T) {
	f := newFixture(t)
	g := &gated{Fake: f.sm}
	f.ring = f.newRing(g)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(floor)
	f.put("v2", p[1], secretsfake.StagePending)

	const n = 8
	waiting := make(chan struct{}, n)
	f.ring.SetWaitHook(func() { waiting <- struct{}{} })
	g.gate()
	b := block(t, p[1])
	results := make([]keyring.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = f.ring.Decrypt(context.Background(), b) })
	}
	<-g.entered // one caller runs the refresh...
	for range n - 1 {
		<-waiting // ...and every other one waits for it
	}
	close(g.release)
	wg.Wait()

	refreshed := 0
	for i := range n {
		if errs[i] != nil || results[i].Label != keyring.LabelPending || results[i].RSAOps != 2 {
			t.Fatalf("caller %d: %+v, %v", i, results[i], errs[i])
		}
		if results[i].Refreshed {
			refreshed++
		}
	}
	if refreshed != 1 {
		t.Fatalf("%d callers report running the refresh, want 1", refreshed)
	}
	f.wantCalls(2, 2)
}

func TestJunkCausesAtMostOneRefreshPerFloor(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	junk := block(t, p[3]) // a key the secret never held
	burst := func() (refreshes int) {
		for range 50 {
			res, err := f.decrypt(junk)
			if !errors.Is(err, keyring.ErrNoKey) {
				t.Fatalf("junk: %v", err)
			}
			if res.Refreshed {
				refreshes++
			}
		}
		return refreshes
	}
	if n := burst(); n != 0 {
		t.Fatalf("junk right after the load refreshed %d times, want 0", n)
	}
	f.clock.Advance(floor)
	if n := burst(); n != 1 {
		t.Fatalf("junk one floor later refreshed %d times, want 1", n)
	}
	f.clock.Advance(floor - 1)
	if n := burst(); n != 0 {
		t.Fatalf("junk within the floor refreshed %d times, want 0", n)
	}
	f.clock.Advance(1)
	if n := burst(); n != 1 {
		t.Fatalf("junk after the floor refreshed %d times, want 1", n)
	}
	f.wantCalls(3, 1) // and never a GetSecretValue
}

func TestAFailedRefreshKeepsTheKeys(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.sm.FailAlways(secretsfake.OpDescribeSecret, errBoom)
	f.clock.Advance(ttl)
	for range 20 {
		f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	}
	f.wantCalls(2, 1) // one failed refresh: the floor holds off the rest
	if !strings.Contains(f.logs.String(), "refresh failed; keeping the keys already loaded") {
		t.Fatalf("the failure is not logged:\n%s", f.logs.String())
	}
	if err := f.ring.Refresh(context.Background()); err != nil && !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Refresh: %v", err)
	}
	f.sm.FailAlways(secretsfake.OpDescribeSecret, nil)
	f.clock.Advance(floor)
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh after recovery: %v", err)
	}
}

func TestAFirstLoadThatFailsIsRetriedAfterTheFloor(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.sm.FailNext(secretsfake.OpDescribeSecret, errBoom)
	if err := f.ring.Refresh(context.Background()); !errors.Is(err, errBoom) {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := f.decrypt(block(t, p[0])); !errors.Is(err, keyring.ErrEmpty) {
		t.Fatalf("within the floor: %v", err)
	}
	f.clock.Advance(floor)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.wantCalls(2, 1)
}

func TestAWaiterWhoseContextEndsGivesUpButTheRefreshCompletes(t *testing.T) {
	f := newFixture(t)
	g := &gated{Fake: f.sm}
	f.ring = f.newRing(g)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	if err := f.ring.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(floor)
	f.put("v2", p[1], secretsfake.StagePending)
	g.gate()
	b := block(t, p[1])
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := f.ring.Decrypt(leaderCtx, b); leader <- err }()
	<-g.entered
	// A follower whose context has ended gives up at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.ring.Decrypt(ctx, b); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("follower: %v", err)
	}
	// The caller that started the refresh gives up too; the refresh runs on
	// a detached context (gated fails a call whose context has ended), so
	// it completes and the key is there for everyone.
	cancelLeader()
	close(g.release)
	if err := <-leader; err != nil {
		t.Fatalf("leader: %v", err)
	}
	f.mustDecrypt(b, keyring.LabelPending)
	f.wantCalls(2, 2)
}
