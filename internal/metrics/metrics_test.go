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
	ts := fixed.UnixMilli()
	tests := []struct {
		name string
		emit func(*EMF)
		want string
	}{
		{"step", func(e *EMF) { e.Step("setSecret", 1500*time.Millisecond, true, 3, 0, 0) },
			`{"Function":"flowkey-rotator","NumbersFailed":0,"NumbersUploaded":3,"NumbersVerified":0,"Outcome":"ok","Step":"setSecret","StepDuration":1500,"StepFailures":0,` +
				`"_aws":{"Timestamp":` + itoa(ts) + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Step"]],"Metrics":[` +
				`{"Name":"StepDuration","Unit":"Milliseconds"},{"Name":"StepFailures","Unit":"Count"},{"Name":"NumbersUploaded","Unit":"Count"},{"Name":"NumbersVerified","Unit":"Count"},{"Name":"NumbersFailed","Unit":"Count"}]}]}}`},
		{"failed step", func(e *EMF) { e.Step("testSecret", 250*time.Microsecond, false, 0, 2, 1) },
			`{"Function":"flowkey-rotator","NumbersFailed":1,"NumbersUploaded":0,"NumbersVerified":2,"Outcome":"failed","Step":"testSecret","StepDuration":0.25,"StepFailures":1,` +
				`"_aws":{"Timestamp":` + itoa(ts) + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Step"]],"Metrics":[` +
				`{"Name":"StepDuration","Unit":"Milliseconds"},{"Name":"StepFailures","Unit":"Count"},{"Name":"NumbersUploaded","Unit":"Count"},{"Name":"NumbersVerified","Unit":"Count"},{"Name":"NumbersFailed","Unit":"Count"}]}]}}`},
		{"command", func(e *EMF) { e.Command("resync", 2*time.Second, true, 1, 1, 0) },
			`{"Command":"resync","CommandDuration":2000,"CommandFailures":0,"Function":"flowkey-rotator","NumbersFailed":0,"NumbersUploaded":1,"NumbersVerified":1,"Outcome":"ok",` +
				`"_aws":{"Timestamp":` + itoa(ts) + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Command"]],"Metrics":[` +
				`{"Name":"CommandDuration","Unit":"Milliseconds"},{"Name":"CommandFailures","Unit":"Count"},{"Name":"NumbersUploaded","Unit":"Count"},{"Name":"NumbersVerified","Unit":"Count"},{"Name":"NumbersFailed","Unit":"Count"}]}]}}`},
		{"healthy status still reports zero drift", func(e *EMF) { e.Drift(3, 0) },
			`{"DriftedNumbers":0,"Function":"flowkey-rotator","PhoneNumbers":3,` +
				`"_aws":{"Timestamp":` + itoa(ts) + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function"]],"Metrics":[` +
				`{"Name":"PhoneNumbers","Unit":"Count"},{"Name":"DriftedNumbers","Unit":"Count"}]}]}}`},
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

func TestGraphCallsAreCountedPerOperationAndWrittenOnFlush(t *testing.T) {
	e, buf := newTest()
	calls := []graph.Call{
		{Op: "upload", Attempt: 1, HTTPStatus: 503, Retrying: true},
		{Op: "upload", Attempt: 2, HTTPStatus: 200},
		{Op: "get", Attempt: 1, HTTPStatus: 400, Code: 80007, Retrying: true},
		{Op: "get", Attempt: 2, HTTPStatus: 429},
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
		t.Fatalf("calls were written before Flush: %s", buf.String())
	}
	e.Flush()
	ts := itoa(fixed.UnixMilli())
	dir := `"_aws":{"Timestamp":` + ts + `,"CloudWatchMetrics":[{"Namespace":"flowkey","Dimensions":[["Function","Operation"]],"Metrics":[` +
		`{"Name":"GraphCalls","Unit":"Count"},{"Name":"GraphRetries","Unit":"Count"},{"Name":"GraphRateLimited","Unit":"Count"}]}]}}`
	want := []string{
		`{"Function":"flowkey-rotator","GraphCalls":30,"GraphRateLimited":20,"GraphRetries":10,"Operation":"get",` + dir,
		`{"Function":"flowkey-rotator","GraphCalls":20,"GraphRateLimited":0,"GraphRetries":10,"Operation":"upload",` + dir,
	}
	got := lines(t, buf)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
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
