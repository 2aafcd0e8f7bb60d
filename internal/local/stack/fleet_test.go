package stack_test

import (
	"testing"
)

func TestFleetSmoke(t *testing.T) {
	e := startFleet(t, 3, setup{})
	evs := e.rotateTenants(t, e.tenantIDs())
	for id, ev := range evs {
		if ev.Type != "RotationSucceeded" {
			t.Errorf("%s: %s %s", id, ev.Type, ev.Error)
		}
		e.assertTenantHolds(t, id)
	}
	runs := e.statusRun(t)
	t.Logf("%+v", runs)
}
