// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: JSON
// objects on stdout that CloudWatch Logs turns into metrics, so the rotator
// needs no CloudWatch SDK, no PutMetricData permission and no extra call.
//
// Every metric is in the namespace "flowkey" with the dimension Function,
// the Lambda function's name. One dimension with one value per deployment
// keeps the metric count (and its cost) fixed while keeping two stacks in
// one account apart, so an alarm in one stack never fires for the other.
// Secret ARNs and phone number IDs would multiply metrics per secret and
// per number; they stay in the log lines as properties, not dimensions.
//
// Lines and their metrics:
//
//   - a rotation step, dimensions (Function, Step): StepDuration (ms),
//     StepFailures, NumbersUploaded, NumbersVerified, NumbersFailed;
//   - an operator command, dimensions (Function, Command): CommandDuration
//     (ms), CommandFailures, NumbersUploaded, NumbersVerified, NumbersFailed;
//   - a status, dimensions (Function): PhoneNumbers, DriftedNumbers;
//   - the Graph calls of one invocation, dimensions (Function, Operation),
//     one line per operation (upload, get, list) that made any call:
//     GraphCalls (every HTTP attempt), GraphRetries (attempts followed by
//     another), GraphRateLimited (attempts Meta rate-limited).
package metrics

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "flowkey"

// DefaultFunction is the Function dimension when the name is unknown.
const DefaultFunction = "rotator"

// Units CloudWatch accepts.
const (
	unitMilliseconds = "Milliseconds"
	unitCount        = "Count"
)

// EMF writes metric lines to one writer. It is safe for concurrent use.
type EMF struct {
	w        io.Writer
	function string
	now      func() time.Time

	mu    sync.Mutex
	graph map[string]*graphCounts // by Call.Op, since the last Flush
}

type graphCounts struct{ calls, retries, rateLimited int }

// New returns an EMF that writes to w with the Function dimension set to
// function (DefaultFunction when empty). now defaults to time.Now.
func New(w io.Writer, function string, now func() time.Time) *EMF {
	if function == "" {
		function = DefaultFunction
	}
	if now == nil {
		now = time.Now
	}
	return &EMF{w: w, function: function, now: now, graph: map[string]*graphCounts{}}
}

// Step records one rotation step. It implements rotation.Metrics.
func (e *EMF) Step(step string, d time.Duration, ok bool, uploaded, verified, failed int) {
	e.write([]string{"Step"}, map[string]any{"Step": step, "Outcome": outcome(ok)}, []metric{
		{"StepDuration", unitMilliseconds, ms(d)},
		{"StepFailures", unitCount, boolCount(!ok)},
		{"NumbersUploaded", unitCount, uploaded},
		{"NumbersVerified", unitCount, verified},
		{"NumbersFailed", unitCount, failed},
	})
}

// Command records one operator command (rotate, status, resync).
func (e *EMF) Command(command string, d time.Duration, ok bool, uploaded, verified, failed int) {
	e.write([]string{"Command"}, map[string]any{"Command": command, "Outcome": outcome(ok)}, []metric{
		{"CommandDuration", unitMilliseconds, ms(d)},
		{"CommandFailures", unitCount, boolCount(!ok)},
		{"NumbersUploaded", unitCount, uploaded},
		{"NumbersVerified", unitCount, verified},
		{"NumbersFailed", unitCount, failed},
	})
}

// Drift records what a status found. It is written for a healthy secret
// too (DriftedNumbers 0), so that an alarm on it returns to OK.
func (e *EMF) Drift(numbers, drifted int) {
	e.write(nil, nil, []metric{
		{"PhoneNumbers", unitCount, numbers},
		{"DriftedNumbers", unitCount, drifted},
	})
}

// ObserveGraph counts one Graph HTTP attempt; pass it as
// graph.Options.Observe. Nothing is written until Flush, so a rotation of
// many numbers costs a few lines, not one per request.
func (e *EMF) ObserveGraph(c graph.Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.graph[c.Op]
	if g == nil {
		g = &graphCounts{}
		e.graph[c.Op] = g
	}
	g.calls++
	if c.Retrying {
		g.retries++
	}
	if c.HTTPStatus == 429 || c.Code == 4 || c.Code == 80007 || c.Code == 130429 {
		g.rateLimited++
	}
}

// Flush writes the Graph counts observed since the last Flush and resets
// them. Call it at the end of every invocation.
func (e *EMF) Flush() {
	e.mu.Lock()
	counts := e.graph
	e.graph = map[string]*graphCounts{}
	e.mu.Unlock()
	ops := make([]string, 0, len(counts))
	for op := range counts {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		c := counts[op]
		e.write([]string{"Operation"}, map[string]any{"Operation": op}, []metric{
			{"GraphCalls", unitCount, c.calls},
			{"GraphRetries", unitCount, c.retries},
			{"GraphRateLimited", unitCount, c.rateLimited},
		})
	}
}

type metric struct {
	name, unit string
	value      any
}

type metricDirective struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []metricDefn `json:"Metrics"`
}

type metricDefn struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type metadata struct {
	Timestamp         int64             `json:"Timestamp"`
	CloudWatchMetrics []metricDirective `json:"CloudWatchMetrics"`
}

// write emits one line: the _aws metadata, the Function dimension, the
// extra dimensions' values in fields, and each metric's value.
func (e *EMF) write(dims []string, fields map[string]any, metrics []metric) {
	line := make(map[string]any, len(fields)+len(metrics)+2)
	for k, v := range fields {
		line[k] = v
	}
	line["Function"] = e.function
	d := metricDirective{Namespace: Namespace, Dimensions: [][]string{append([]string{"Function"}, dims...)}}
	for _, m := range metrics {
		d.Metrics = append(d.Metrics, metricDefn{Name: m.name, Unit: m.unit})
		line[m.name] = m.value
	}
	line["_aws"] = metadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: []metricDirective{d}}
	b, err := json.Marshal(line)
	if err != nil {
		// Unreachable for these value types; a metric is not worth failing a rotation for.
		return
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	// One Write per line, so lines from concurrent callers never interleave.
	_, _ = e.w.Write(b)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

func outcome(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}
