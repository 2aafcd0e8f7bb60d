package stack_test

import (
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// Traffic to several tenants through the endpoint, each at /t/<tenant>,
// while every tenant of the fleet rotates: no user sees a failure, and
// each tenant's clients send with its key from before and its new one.
func TestFleetTrafficToSeveralTenantsThroughRotations(t *testing.T) {
	const n = 12
	e := startFleet(t, n, setup{})
	ids := e.tenantIDs()
	e.rotateTenants(t, ids)
	served := []string{ids[0], ids[3], ids[6], ids[10]}
	pops := map[string]*waclient.Population{}
	before := map[string]string{}
	for i, id := range served {
		pop, err := waclient.New(waclient.Options{
			EndpointURL: e.EndpointURL + "/t/" + id, GraphURL: e.GraphURL, GraphToken: stack.DefaultGraphToken,
			AppSecret: []byte(e.AppSecret), Phones: mustTenant(t, e, id).Numbers, Clients: 12, Seed: uint64(20 + i),
			MinKeyTTL: 50 * time.Millisecond, MaxKeyTTL: time.Hour, Rate: 60,
		})
		if err != nil {
			t.Fatal(err)
		}
		pops[id] = pop
		before[id] = e.assertTenantHolds(t, id)
	}
	ctx := ctxFor(t, 4*time.Minute)
	each := func(run func(id string, pop *waclient.Population) error) {
		t.Helper()
		var wg sync.WaitGroup
		for id, pop := range pops {
			wg.Go(func() {
				if err := run(id, pop); err != nil {
					t.Errorf("traffic to %s: %v", id, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	rounds := func(k int) func(string, *waclient.Population) error {
		return func(_ string, pop *waclient.Population) error {
			for range k {
				if err := pop.Round(ctx); err != nil {
					return err
				}
			}
			return nil
		}
	}
	each(rounds(3))
	steady := map[string]waclient.Stats{}
	for id, pop := range pops {
		steady[id] = pop.Stats()
	}

	stop := make(chan struct{})
	during := map[string]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		each(func(id string, pop *waclient.Population) error {
			k, err := pop.RunUntil(ctx, stop)
			mu.Lock()
			during[id] = k
			mu.Unlock()
			return err
		})
	}()
	evs := e.rotateTenants(t, ids)
	close(stop)
	<-done
	for id, ev := range evs {
		if ev.Type != secretsemu.RotationSucceeded {
			t.Errorf("%s: %s: %s", id, ev.Type, ev.Error)
		}
	}
	each(rounds(tailRounds))

	for _, id := range served {
		st := pops[id].Stats()
		after := e.assertTenantHolds(t, id)
		t.Logf("%s: %d rounds during the rotations; %s", id, during[id], st.Sub(steady[id]))
		if st.Failures != 0 {
			t.Errorf("%s: %d user-visible failures: %v", id, st.Failures, st.Examples)
		}
		if during[id] == 0 {
			t.Errorf("%s: no round ran during the rotations", id)
		}
		if st.Keys[before[id]] == 0 || st.Keys[after] == 0 || after == before[id] {
			t.Errorf("%s: requests by key %v; want some with its old key %.16s and some with its new key %.16s", id, st.Keys, before[id], after)
		}
		for fp := range st.Keys {
			if fp != before[id] && fp != after {
				t.Errorf("%s's clients sent with %.16s, not one of its keys", id, fp)
			}
		}
	}
}
