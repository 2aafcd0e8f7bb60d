package metrics

import (
	"bytes"
	"testing"
	"time"
)

func TestEndpointLinesHaveTheExactEMFShape(t *testing.T) {
	ts := itoa(fixed.UnixMilli())
	requests := `{"Namespace":"flowkey","Dimensions":[["Function"],["Function","Status"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]}`
	tests := []struct {
		name string
		r    EndpointRequest
		want string
	}{
		{"a 421 that refreshed", EndpointRequest{Status: 421, RSAOps: 3, Refreshed: true},
			`{"Function":"flowkey-endpoint","KeyRefreshes":1,"RSAOperations":3,"Requests":1,"Status":"421",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[` + requests + `,{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[{"Name":"RSAOperations","Unit":"Count"},{"Name":"KeyRefreshes","Unit":"Count"}]}]}}`},
		{"a backend call", EndpointRequest{Status: 200, RSAOps: 1, BackendCalled: true, BackendLatency: 1250 * time.Microsecond},
			`{"BackendErrors":0,"BackendLatency":1.25,"Function":"flowkey-endpoint","KeyRefreshes":0,"RSAOperations":1,"Requests":1,"Status":"200",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[` + requests + `,{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[{"Name":"RSAOperations","Unit":"Count"},{"Name":"KeyRefreshes","Unit":"Count"},{"Name":"BackendLatency","Unit":"Milliseconds"},{"Name":"BackendErrors","Unit":"Count"}]}]}}`},
		{"an error notification", EndpointRequest{Status: 200, RSAOps: 1, ErrorKey: "public-key-missing"},
			`{"ErrorKey":"public-key-missing","ErrorNotifications":1,"Function":"flowkey-endpoint","KeyRefreshes":0,"RSAOperations":1,"Requests":1,"Status":"200",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[` + requests + `,{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[{"Name":"RSAOperations","Unit":"Count"},{"Name":"KeyRefreshes","Unit":"Count"}]},` +
				`{"Namespace":"flowkey","Dimensions":[["Function","ErrorKey"]],"Metrics":[{"Name":"ErrorNotifications","Unit":"Count"}]}]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			NewEndpoint(&buf, "flowkey-endpoint", func() time.Time { return fixed }).Request(tc.r)
			got := lines(t, &buf)
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
			assertValidEMF(t, got[0])
		})
	}
}

func TestEndpointFunctionNameFallsBack(t *testing.T) {
	var buf bytes.Buffer
	NewEndpoint(&buf, "", nil).Request(EndpointRequest{Status: 432})
	if !bytes.Contains(buf.Bytes(), []byte(`"Function":"endpoint"`)) {
		t.Fatalf("got %s", buf.String())
	}
}
