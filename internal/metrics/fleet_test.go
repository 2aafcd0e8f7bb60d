package metrics

import (
	"testing"

	"github.com/flowkey/flowkey/internal/operator"
)

// The operator's interfaces are what the rotator wires this to.
var (
	_ operator.Metrics      = (*EMF)(nil)
	_ operator.FleetMetrics = (*EMF)(nil)
)

// A fleet status's tenant counts: four metrics under the Function
// dimension alone, whatever the fleet's size.
func TestTenantsLine(t *testing.T) {
	e, buf := newTest()
	e.Tenants(50, 3, 1, 0)
	ts := itoa(fixed.UnixMilli())
	want := `{"Function":"flowkey-rotator","TenantsChecked":50,"TenantsIncomplete":1,"TenantsOverdue":0,"TenantsUnhealthy":3,` +
		`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
		`{"Name":"TenantsChecked","Unit":"Count"},{"Name":"TenantsUnhealthy","Unit":"Count"},{"Name":"TenantsIncomplete","Unit":"Count"},{"Name":"TenantsOverdue","Unit":"Count"}]}]}}`
	if got := lines(t, buf); len(got) != 1 || got[0] != want {
		t.Errorf("got\n%v\nwant\n%s", got, want)
	}
}
