package keyring_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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
	f, g, p := newGatedAfterLoad(t)

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

// Junk that no key decrypts costs at most one refresh per floor: each miss
// within the floor waits it out, so refreshes never come closer together.
func TestJunkCausesAtMostOneRefreshPerFloor(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	junk := block(t, p[3]) // a key the secret never held
	start, refreshes := f.clock.Now(), 0
	const n = 50
	for range n {
		res, err := f.decrypt(junk)
		if !errors.Is(err, keyring.ErrNoKey) {
			t.Fatalf("junk: %v", err)
		}
		if res.Refreshed {
			refreshes++
		}
	}
	elapsed := f.clock.Now().Sub(start)
	if limit := int(elapsed/floor) + 1; refreshes == 0 || refreshes > limit {
		t.Fatalf("%d junk requests over %s caused %d refreshes, want 1 to %d (one per floor)", n, elapsed, refreshes, limit)
	}
	f.wantCalls(1+refreshes, 1) // and never a GetSecretValue
}

// A user whose client fetched the new key right after a rotation must not
// fail because the ring loaded its keys moments before: the miss waits out
// the floor, refreshes, and decrypts. (The client retries a 421 within
// milliseconds, into the same floor: failing at once would fail the user.)
func TestAMissWithinTheFloorWaitsAndDecrypts(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.clock.Advance(floor / 5)
	f.put("v2", p[1], secretsfake.StagePending)
	res, err := f.decrypt(block(t, p[1]))
	if err != nil || res.Label != keyring.LabelPending || !res.Refreshed {
		t.Fatalf("the new key right after a load: %+v, %v", res, err)
	}
	if got, want := time.Duration(f.slept.Load()), floor-floor/5; got != want {
		t.Errorf("waited %s, want the rest of the floor, %s", got, want)
	}
	f.wantCalls(2, 2)
}

// A request whose deadline cannot afford the wait gets ErrNoKey at once,
// and no refresh runs for it.
func TestAMissThatCannotAffordTheWaitFailsAtOnce(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.put("v2", p[1], secretsfake.StagePending)
	ctx, cancel := context.WithDeadline(context.Background(), f.clock.Now().Add(floor/2))
	defer cancel()
	res, err := f.ring.Decrypt(ctx, block(t, p[1]))
	if !errors.Is(err, keyring.ErrNoKey) || res.Refreshed || f.slept.Load() != 0 {
		t.Fatalf("got %+v, %v after waiting %s; want ErrNoKey at once", res, err, time.Duration(f.slept.Load()))
	}
	f.wantCalls(1, 1)
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
	// A request within the floor waits it out, and the second load works.
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	if got := time.Duration(f.slept.Load()); got != floor {
		t.Errorf("waited %s, want one floor", got)
	}
	f.wantCalls(2, 1)
}

func TestAWaiterWhoseContextEndsGivesUpButTheRefreshCompletes(t *testing.T) {
	f, g, p := newGatedAfterLoad(t)
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
