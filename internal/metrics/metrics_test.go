package metrics

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
)

// The rotation's Metrics interface is what the rotator wires this to.
var _ rotation.Metrics = (*EMF)(nil)

var fixed = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newTest() (*EMF, *bytes.Buffer) {
	var buf bytes.Buffer
	return New(&buf, "flowkey-rotator", func() time.Time { return fixed }), &buf
}

func lines(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	s := strings.TrimSuffix(buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestLinesHaveTheExactEMFShape(t *testing.T) {
	ts := itoa(fixed.UnixMilli())
	graphDefs := `{"Name":"GraphCalls","Unit":"Count"},{"Name":"GraphRetries","Unit":"Count"},{"Name":"GraphRateLimited","Unit":"Count"},{"Name":"GraphTransportFailures","Unit":"Count"}`
	numbers := `{"Name":"NumbersUploaded","Unit":"Count"},{"Name":"NumbersVerified","Unit":"Count"},{"Name":"NumbersFailed","Unit":"Count"}`
	tests := []struct {
		name string
		emit func(*EMF)
		want string
	}{
		{"step", func(e *EMF) { e.Step("setSecret", 1500*time.Millisecond, true, 3, 0, 0) },
			`{"Function":"flowkey-rotator","GraphCalls":0,"GraphRateLimited":0,"GraphRetries":0,"GraphTransportFailures":0,"NumbersFailed":0,"NumbersUploaded":3,"NumbersVerified":0,"Outcome":"ok","Step":"setSecret","StepDuration":1500,"StepFailures":0,` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Step"]],"Metrics":[` +
				`{"Name":"StepDuration","Unit":"Milliseconds"},{"Name":"StepFailures","Unit":"Count"},` + numbers + `,` + graphDefs + `]}]}}`},
		{"failed step", func(e *EMF) { e.Step("testSecret", 250*time.Microsecond, false, 0, 2, 1) },
			`{"Function":"flowkey-rotator","GraphCalls":0,"GraphRateLimited":0,"GraphRetries":0,"GraphTransportFailures":0,"NumbersFailed":1,"NumbersUploaded":0,"NumbersVerified":2,"Outcome":"failed","Step":"testSecret","StepDuration":0.25,"StepFailures":1,` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Step"]],"Metrics":[` +
				`{"Name":"StepDuration","Unit":"Milliseconds"},{"Name":"StepFailures","Unit":"Count"},` + numbers + `,` + graphDefs + `]}]}}`},
		{"command", func(e *EMF) { e.Command("resync", 2*time.Second, true, 1, 1, 0) },
			`{"Command":"resync","CommandDuration":2000,"CommandFailures":0,"Function":"flowkey-rotator","GraphCalls":0,"GraphRateLimited":0,"GraphRetries":0,"GraphTransportFailures":0,"NumbersFailed":0,"NumbersUploaded":1,"NumbersVerified":1,"Outcome":"ok",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Command"]],"Metrics":[` +
				`{"Name":"CommandDuration","Unit":"Milliseconds"},{"Name":"CommandFailures","Unit":"Count"},` + numbers + `,` + graphDefs + `]}]}}`},
		{"the scheduled status publishes no metric of its own", func(e *EMF) { e.Command("status", 2*time.Second, true, 0, 0, 0) },
			`{"Command":"status","CommandDuration":2000,"CommandFailures":0,"Function":"flowkey-rotator","GraphCalls":0,"GraphRateLimited":0,"GraphRetries":0,"GraphTransportFailures":0,"NumbersFailed":0,"NumbersUploaded":0,"NumbersVerified":0,"Outcome":"ok"}`},
		{"healthy status still reports zero drift", func(e *EMF) { e.Drift(3, 0) },
			`{"DriftedNumbers":0,"Function":"flowkey-rotator","PhoneNumbers":3,` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
				`{"Name":"DriftedNumbers","Unit":"Count"}]}]}}`},
		{"rotation age in days", func(e *EMF) { e.RotationAge(30*24*time.Hour + 3*time.Hour) },
			`{"DaysSinceLastRotation":30.125,"Function":"flowkey-rotator",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
				`{"Name":"DaysSinceLastRotation","Unit":"None"}]}]}}`},
		{"rotation age rounded to a thousandth of a day", func(e *EMF) { e.RotationAge(100 * time.Second) },
			`{"DaysSinceLastRotation":0.001,"Function":"flowkey-rotator",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
				`{"Name":"DaysSinceLastRotation","Unit":"None"}]}]}}`},
		{"a rotation date in the future is age 0", func(e *EMF) { e.RotationAge(-time.Hour) },
			`{"DaysSinceLastRotation":0,"Function":"flowkey-rotator",` +
				`"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
				`{"Name":"DaysSinceLastRotation","Unit":"None"}]}]}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, buf := newTest()
			tc.emit(e)
			got := lines(t, buf)
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
			assertValidEMF(t, got[0])
		})
	}
}

func TestGraphCallsGoOutWithTheStepThatMadeThem(t *testing.T) {
	e, buf := newTest()
	calls := []graph.Call{
		{Op: "upload", Attempt: 1, HTTPStatus: 503, Retrying: true},
		{Op: "upload", Attempt: 2, HTTPStatus: 200},
		{Op: "get", Attempt: 1, HTTPStatus: 400, Failure: graph.FailureGraph, Code: 80007, RateLimited: true, Retrying: true},
		{Op: "get", Attempt: 2, HTTPStatus: 429, Failure: graph.FailureHTTP, RateLimited: true},
		{Op: "get", Attempt: 1, HTTPStatus: 200},
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range calls {
				e.ObserveGraph(c)
			}
		}()
	}
	wg.Wait()
	if buf.Len() != 0 {
		t.Fatalf("calls were written on their own: %s", buf.String())
	}
	e.Step("setSecret", time.Second, true, 3, 0, 0)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["GraphCalls"] != 50.0 || line["GraphRetries"] != 20.0 || line["GraphRateLimited"] != 20.0 {
		t.Errorf("step line counts = %v/%v/%v, want 50 calls, 20 retries, 20 rate-limited", line["GraphCalls"], line["GraphRetries"], line["GraphRateLimited"])
	}
	buf.Reset()
	e.Step("testSecret", time.Second, true, 0, 3, 0)
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["GraphCalls"] != 0.0 {
		t.Errorf("the next step was charged the first one's calls: %v", line["GraphCalls"])
	}
}

func TestFlushLogsUnclaimedCallsWithoutPublishingThem(t *testing.T) {
	e, buf := newTest()
	e.Flush()
	if buf.Len() != 0 {
		t.Fatalf("an empty Flush wrote %s", buf.String())
	}
	e.ObserveGraph(graph.Call{Op: "get", Attempt: 1, HTTPStatus: 500, Retrying: true})
	e.Flush()
	want := `{"Function":"flowkey-rotator","GraphCalls":1,"GraphRateLimited":0,"GraphRetries":1,"GraphTransportFailures":0,"Unclaimed":true}`
	if got := lines(t, buf); len(got) != 1 || got[0] != want {
		t.Fatalf("got %s, want %s", buf.String(), want)
	}
	buf.Reset()
	e.Flush()
	if buf.Len() != 0 {
		t.Errorf("a second Flush wrote counts again: %s", buf.String())
	}
}

func TestEmptyFunctionNameFallsBack(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "", nil).Drift(1, 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["Function"] != DefaultFunction {
		t.Errorf("Function = %v, want %q: a missing dimension value drops the metric", line["Function"], DefaultFunction)
	}
}

// assertValidEMF checks the rules CloudWatch applies: every dimension and
// metric named in the directive has a top-level value of the right kind.
func assertValidEMF(t *testing.T, line string) {
	t.Helper()
	var v struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	var all map[string]any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(line), &all)
	for _, d := range v.AWS.CloudWatchMetrics {
		for _, set := range d.Dimensions {
			for _, dim := range set {
				if _, ok := all[dim].(string); !ok {
					t.Errorf("dimension %s has no string value", dim)
				}
			}
		}
		for _, m := range d.Metrics {
			if _, ok := all[m.Name].(float64); !ok {
				t.Errorf("metric %s has no numeric value", m.Name)
			}
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Rate limits are what the Graph client says they are (every throttling
// code), and a failure without a response is a transport failure, not a
// call with code 0.
func TestGraphFailuresAreCountedByWhatTheyAre(t *testing.T) {
	e, buf := newTest()
	for _, c := range []graph.Call{
		{Op: "upload", Attempt: 1, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 613, RateLimited: true},
		{Op: "upload", Attempt: 1, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 80004, RateLimited: true},
		{Op: "get", Attempt: 1, Failure: graph.FailureTransport, Transport: graph.TransportEOF, Retrying: true},
		{Op: "get", Attempt: 2, Failure: graph.FailureTransport, Transport: graph.TransportTimeout},
		{Op: "get", Attempt: 1, Failure: graph.FailureGraph, HTTPStatus: 401, Code: 0},
		{Op: "get", Attempt: 1, HTTPStatus: 200},
	} {
		e.ObserveGraph(c)
	}
	e.Step("setSecret", time.Second, false, 0, 0, 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["GraphCalls"] != 6.0 || line["GraphRateLimited"] != 2.0 || line["GraphTransportFailures"] != 2.0 || line["GraphRetries"] != 1.0 {
		t.Errorf("counts = calls %v, rate-limited %v, transport %v, retries %v; want 6, 2, 2, 1",
			line["GraphCalls"], line["GraphRateLimited"], line["GraphTransportFailures"], line["GraphRetries"])
	}
}
