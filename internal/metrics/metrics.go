// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: JSON
// objects on stdout that CloudWatch Logs turns into metrics, so the rotator
// needs no CloudWatch SDK, no PutMetricData permission and no extra call.
//
// Every metric is in the namespace "flowkey" with the dimension Function,
// the Lambda function's name: one value per deployment keeps two stacks in
// one account apart. Secret ARNs and phone number IDs would multiply
// metrics per secret and per number; they stay in log lines.
//
// Cost decides what is a metric. CloudWatch bills a custom metric for each
// hour it receives data, so what a frequent invocation publishes costs all
// month. The scheduled status therefore publishes exactly two metrics,
// DriftedNumbers and DaysSinceLastRotation (about $0.30 a month each),
// which the stack's drift, heartbeat and rotation-overdue alarms watch,
// and writes the rest as plain properties. Rotation steps and the rare
// rotate and resync commands publish everything; their metrics live about
// an hour a month.
//
// Lines:
//
//   - a rotation step, dimensions (Function, Step): StepDuration (ms),
//     StepFailures, NumbersUploaded, NumbersVerified, NumbersFailed, and the
//     step's GraphCalls (every HTTP attempt), GraphRetries (attempts followed
//     by another), GraphRateLimited (attempts Meta rate-limited, any of
//     Graph's throttling codes or HTTP 429) and GraphTransportFailures
//     (attempts that got no response: timeouts, resets, EOF);
//   - rotate and resync, dimensions (Function, Command): CommandDuration
//     (ms), CommandFailures, the Numbers* counts and the Graph* counts;
//   - status, dimensions (Function): DriftedNumbers, written for a healthy
//     secret too (0), so an alarm on it returns to OK; PhoneNumbers and the
//     command's duration and Graph counts are properties, not metrics;
//   - status, dimensions (Function): DaysSinceLastRotation, in days with a
//     fraction (unit None: CloudWatch has no day), on a line of its own.
//   - a fleet status (internal/operator), dimensions (Function): the same
//     two lines, with DriftedNumbers summed and DaysSinceLastRotation the
//     maximum over the tenants it read, and TenantsChecked,
//     TenantsUnhealthy, TenantsIncomplete and TenantsOverdue on a third
//     (0 included): aggregates, so a fleet of any size costs these six
//     metrics, never one per tenant.
//
// The Flows endpoint writes one line per request through Endpoint (see its
// comment): Requests by Status, RSAOperations, KeyRefreshes, the backend's
// latency and errors, and ErrorNotifications by ErrorKey. Its dimensions
// take values from fixed sets only.
package metrics

import (
	"encoding/json"
	"io"
	"math"
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
	unitNone         = "None"
)

// EMF writes metric lines to one writer. It is safe for concurrent use.
type EMF struct {
	w        io.Writer
	function string
	now      func() time.Time

	mu    sync.Mutex
	graph graphCounts // since the last step, command or Flush
}

type graphCounts struct{ calls, retries, rateLimited, transport int }

// New returns an EMF that writes to w with the Function dimension set to
// function (DefaultFunction when empty). now defaults to time.Now.
func New(w io.Writer, function string, now func() time.Time) *EMF {
	if function == "" {
		function = DefaultFunction
	}
	if now == nil {
		now = time.Now
	}
	return &EMF{w: w, function: function, now: now}
}

// Step records one rotation step and the Graph calls it made. It
// implements rotation.Metrics.
func (e *EMF) Step(step string, d time.Duration, ok bool, uploaded, verified, failed int) {
	g := e.take()
	e.write([]string{"Step"}, map[string]any{"Step": step, "Outcome": outcome(ok)}, append([]metric{
		{"StepDuration", unitMilliseconds, ms(d)},
		{"StepFailures", unitCount, boolCount(!ok)},
		{"NumbersUploaded", unitCount, uploaded},
		{"NumbersVerified", unitCount, verified},
		{"NumbersFailed", unitCount, failed},
	}, g.metrics()...))
}

// commandStatus is the one command that runs on a schedule.
const commandStatus = "status"

// Command records one operator command and the Graph calls it made. The
// scheduled status is written as properties only; see the package comment.
func (e *EMF) Command(command string, d time.Duration, ok bool, uploaded, verified, failed int) {
	g := e.take()
	values := append([]metric{
		{"CommandDuration", unitMilliseconds, ms(d)},
		{"CommandFailures", unitCount, boolCount(!ok)},
		{"NumbersUploaded", unitCount, uploaded},
		{"NumbersVerified", unitCount, verified},
		{"NumbersFailed", unitCount, failed},
	}, g.metrics()...)
	fields := map[string]any{"Command": command, "Outcome": outcome(ok)}
	if command == commandStatus {
		for _, m := range values {
			fields[m.name] = m.value
		}
		e.write(nil, fields, nil)
		return
	}
	e.write([]string{"Command"}, fields, values)
}

// Drift records what a status found: DriftedNumbers (RotationAge writes
// the status's other metric).
func (e *EMF) Drift(numbers, drifted int) {
	e.write(nil, map[string]any{"PhoneNumbers": numbers}, []metric{
		{"DriftedNumbers", unitCount, drifted},
	})
}

// RotationAge records how long ago the secret last rotated, for the
// stack's rotation-overdue alarm: DaysSinceLastRotation, age in days
// rounded to a thousandth (about 90 s). A negative age (clock skew) is 0.
func (e *EMF) RotationAge(age time.Duration) {
	days := math.Round(max(age, 0).Hours()/24*1000) / 1000
	e.write(nil, nil, []metric{{"DaysSinceLastRotation", unitNone, days}})
}

// Tenants records what a fleet status read: the tenants, and of them the
// unhealthy, the rotation-incomplete and the overdue ones. It implements
// operator.FleetMetrics.
func (e *EMF) Tenants(checked, unhealthy, incomplete, overdue int) {
	e.write(nil, nil, []metric{
		{"TenantsChecked", unitCount, checked},
		{"TenantsUnhealthy", unitCount, unhealthy},
		{"TenantsIncomplete", unitCount, incomplete},
		{"TenantsOverdue", unitCount, overdue},
	})
}

// ObserveGraph counts one Graph HTTP attempt; pass it as
// graph.Options.Observe. The counts go out with the step or command that
// made the calls, so a rotation of many numbers costs one line per step.
func (e *EMF) ObserveGraph(c graph.Call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.graph.calls++
	if c.Retrying {
		e.graph.retries++
	}
	// The client classifies: Code alone is not a rate limit, nor is a
	// transport failure's zero Code a Graph code.
	if c.RateLimited {
		e.graph.rateLimited++
	}
	if c.Failure == graph.FailureTransport {
		e.graph.transport++
	}
}

// take returns the Graph counts observed so far and resets them.
func (e *EMF) take() graphCounts {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.graph
	e.graph = graphCounts{}
	return g
}

func (g graphCounts) metrics() []metric {
	return []metric{
		{"GraphCalls", unitCount, g.calls},
		{"GraphRetries", unitCount, g.retries},
		{"GraphRateLimited", unitCount, g.rateLimited},
		{"GraphTransportFailures", unitCount, g.transport},
	}
}

// Flush ends an invocation: Graph calls that no step or command claimed
// (one that failed before it could report) are logged as properties, so
// they are neither lost nor counted against the next invocation.
func (e *EMF) Flush() {
	g := e.take()
	if g == (graphCounts{}) {
		return
	}
	fields := map[string]any{"Unclaimed": true}
	for _, m := range g.metrics() {
		fields[m.name] = m.value
	}
	e.write(nil, fields, nil)
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

// write emits one line: the fields, the Function dimension and each
// metric's value, with the _aws metadata that makes them metrics. Without
// metrics it is a plain log line.
func (e *EMF) write(dims []string, fields map[string]any, metrics []metric) {
	line := make(map[string]any, len(fields)+len(metrics)+2)
	for k, v := range fields {
		line[k] = v
	}
	line["Function"] = e.function
	if len(metrics) > 0 {
		d := metricDirective{Namespace: Namespace, Dimensions: [][]string{append([]string{"Function"}, dims...)}}
		for _, m := range metrics {
			d.Metrics = append(d.Metrics, metricDefn{Name: m.name, Unit: m.unit})
			line[m.name] = m.value
		}
		line["_aws"] = metadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: []metricDirective{d}}
	}
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
