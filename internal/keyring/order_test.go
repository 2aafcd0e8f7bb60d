package keyring_test

import (
	"context"
	"sync"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
)

func TestTheKeyThatDecryptsMostTrafficIsTriedFirst(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StagePrevious)
	f.put("v2", p[1], secretsfake.StageCurrent)
	ops := func(pair int, n int) (total int) {
		for range n {
			res, err := f.decrypt(block(t, p[pair]))
			if err != nil {
				t.Fatal(err)
			}
			total += res.RSAOps
		}
		return total
	}
	// No traffic yet: AWSCURRENT first, so an AWSPREVIOUS request costs two.
	if n := ops(0, 1); n != 2 {
		t.Fatalf("first AWSPREVIOUS request: %d RSA operations, want 2", n)
	}
	// Clients still on the old key: it moves first, and the steady state
	// costs one operation per request.
	ops(0, 30)
	if n := ops(0, 100); n != 100 {
		t.Fatalf("steady state on AWSPREVIOUS: %d RSA operations for 100 requests, want 100", n)
	}
	// Clients move to the current key: it takes over within tens of requests.
	shift := ops(1, 100)
	if shift <= 100 || shift > 160 {
		t.Fatalf("moving to AWSCURRENT cost %d RSA operations for 100 requests, want 101-160", shift)
	}
	if n := ops(1, 100); n != 100 {
		t.Fatalf("steady state on AWSCURRENT: %d RSA operations for 100 requests, want 100", n)
	}
	// Half and half: never worse than trying both.
	mixed := 0
	for range 50 {
		mixed += ops(0, 1) + ops(1, 1)
	}
	if mixed > 200 || mixed < 100 {
		t.Fatalf("mixed traffic: %d operations for 100 requests", mixed)
	}
	f.wantCalls(1, 2)
}

func TestOrderSurvivesARefresh(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StagePrevious)
	f.put("v2", p[1], secretsfake.StageCurrent)
	for range 40 {
		if _, err := f.decrypt(block(t, p[0])); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(ttl)
	res := f.mustDecrypt(block(t, p[0]), keyring.LabelPrevious)
	if !res.Refreshed || res.RSAOps != 1 {
		t.Fatalf("after a refresh the busy key is not first: %+v", res)
	}
}

// Run with -race: decrypting, crediting, reordering and refreshing at once.
func TestConcurrentUseIsSafe(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.put("v2", p[1], secretsfake.StagePending)
	blocks := [][]byte{block(t, p[0]), block(t, p[1])}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := f.ring.Decrypt(context.Background(), blocks[(w+i)%2]); err != nil {
					t.Error(err)
					return
				}
				if w == 0 && i%10 == 0 {
					f.clock.Advance(ttl)
				}
			}
		})
	}
	wg.Wait()
	f.assertNoKeyMaterial()
}
