package metrics

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
)

// DefaultEndpointFunction is the endpoint's Function dimension when the
// name is unknown.
const DefaultEndpointFunction = "endpoint"

// EndpointRequest is what the Flows endpoint publishes about one request.
// Its Status and ErrorKey become dimensions, so the caller passes values
// from a fixed set (the endpoint's documented statuses; its bounded error
// keys), never text from the request.
type EndpointRequest struct {
	Status    int
	RSAOps    int
	Refreshed bool
	// BackendCalled says whether the backend metrics apply.
	BackendCalled  bool
	BackendLatency time.Duration
	BackendError   bool
	// ErrorKey is set for an error notification.
	ErrorKey string
}

// Endpoint writes the Flows endpoint's EMF lines: one per request, in the
// namespace flowkey with the dimension Function:
//
//   - Requests, under (Function) and (Function, Status): the status codes'
//     counts and, divided by the total, the 421 and 432 rates;
//   - RSAOperations and KeyRefreshes, under (Function);
//   - BackendLatency (ms) and BackendErrors, under (Function), on requests
//     that called the backend (BackendErrors is 0 on success, so an alarm
//     on it returns to OK);
//   - ErrorNotifications, under (Function, ErrorKey), on error
//     notifications.
//
// About a dozen metrics in all. It is safe for concurrent use.
type Endpoint struct {
	w        io.Writer
	function string
	now      func() time.Time
	mu       sync.Mutex
}

// NewEndpoint returns an Endpoint that writes to w with the Function
// dimension set to function (DefaultEndpointFunction when empty). now
// defaults to time.Now.
func NewEndpoint(w io.Writer, function string, now func() time.Time) *Endpoint {
	if function == "" {
		function = DefaultEndpointFunction
	}
	if now == nil {
		now = time.Now
	}
	return &Endpoint{w: w, function: function, now: now}
}

// Request writes one request's line.
func (e *Endpoint) Request(r EndpointRequest) {
	line := map[string]any{
		"Function":      e.function,
		"Status":        strconv.Itoa(r.Status),
		"Requests":      1,
		"RSAOperations": r.RSAOps,
		"KeyRefreshes":  boolCount(r.Refreshed),
	}
	directives := []metricDirective{
		{Namespace: Namespace, Dimensions: [][]string{{"Function"}, {"Function", "Status"}}, Metrics: []metricDefn{{"Requests", unitCount}}},
		{Namespace: Namespace, Dimensions: [][]string{{"Function"}}, Metrics: []metricDefn{{"RSAOperations", unitCount}, {"KeyRefreshes", unitCount}}},
	}
	if r.BackendCalled {
		line["BackendLatency"] = ms(r.BackendLatency)
		line["BackendErrors"] = boolCount(r.BackendError)
		directives[1].Metrics = append(directives[1].Metrics, metricDefn{"BackendLatency", unitMilliseconds}, metricDefn{"BackendErrors", unitCount})
	}
	if r.ErrorKey != "" {
		line["ErrorKey"] = r.ErrorKey
		line["ErrorNotifications"] = 1
		directives = append(directives, metricDirective{Namespace: Namespace, Dimensions: [][]string{{"Function", "ErrorKey"}}, Metrics: []metricDefn{{"ErrorNotifications", unitCount}}})
	}
	line["_aws"] = metadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: directives}
	b, err := json.Marshal(line)
	if err != nil {
		// Unreachable for these value types; a metric is not worth failing a request for.
		return
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b) // one Write per line: concurrent lines never interleave
}
