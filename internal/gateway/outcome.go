package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowkey/flowkey/internal/flowcrypto"
	"github.com/flowkey/flowkey/internal/metrics"
)

// outcome is what one request came to: its answer and what the log line
// and the metrics say about it. Every string in it comes from a fixed set
// or from the gateway, never from the request.
type outcome struct {
	status int
	name   string // the log's "outcome"
	reason string // why a request failed, for the log

	sealedBody string // base64 of the sealed answer (status 200)
	jsonBody   string // an unencrypted JSON answer (status 427)

	action, screen string
	keyLabel       string
	rsaOps         int
	refreshed      bool
	errorKey       string
	backendCalled  bool
	backendDur     time.Duration
	backendErr     bool
	// tenant is the fleet tenant the path named; "" for the single
	// secret's path (and for a path that names no valid tenant ID).
	tenant string
}

// sealed makes o a 200 with answer encrypted for the client.
func (o outcome) sealed(sess *flowcrypto.Session, answer []byte) outcome {
	o.status = http.StatusOK
	o.sealedBody = sess.SealBase64(answer)
	return o
}

// flowTokenAnswer is a 427's body: {"error_msg": ...} when the backend gave
// one, {} otherwise.
func flowTokenAnswer(msg string) string {
	b, _ := json.Marshal(struct {
		ErrorMsg string `json:"error_msg,omitempty"`
	}{msg})
	return string(b)
}

func (o *outcome) response() events.LambdaFunctionURLResponse {
	r := events.LambdaFunctionURLResponse{StatusCode: o.status, Headers: map[string]string{}}
	switch {
	case o.status == http.StatusOK:
		r.Headers["Content-Type"] = "text/plain"
		r.Body = o.sealedBody
	case o.jsonBody != "":
		r.Headers["Content-Type"] = "application/json"
		r.Body = o.jsonBody
	case o.status == http.StatusMethodNotAllowed:
		r.Headers["Allow"] = http.MethodPost
	}
	return r
}

// record writes the request's log line and metrics.
func (h *Handler) record(ctx context.Context, ev events.LambdaFunctionURLRequest, o *outcome, start time.Time) {
	check := "on"
	if h.opts.SkipSignatureCheck {
		check = "off"
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestID(ctx, ev)),
		slog.String("action", o.action),
		slog.String("screen", o.screen),
		slog.String("outcome", o.name),
		slog.Int("status", o.status),
		slog.String("key_label", o.keyLabel),
		slog.Int("rsa_ops", o.rsaOps),
		slog.Float64("duration_ms", ms(h.opts.Now().Sub(start))),
		slog.Float64("backend_ms", ms(o.backendDur)),
		slog.Bool("refreshed", o.refreshed),
		slog.String("signature_check", check),
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("reason", o.reason))
	}
	if o.errorKey != "" {
		attrs = append(attrs, slog.String("error_key", o.errorKey))
	}
	if o.tenant != "" {
		// In the log line only: a metric dimension per tenant would bill a
		// metric per tenant.
		attrs = append(attrs, slog.String("tenant", o.tenant))
	}
	level := slog.LevelInfo
	if o.status >= 400 && o.status != 427 {
		level = slog.LevelWarn
	}
	h.opts.Logger.LogAttrs(ctx, level, "request", attrs...)
	if h.opts.Metrics != nil {
		h.opts.Metrics.Request(metrics.EndpointRequest{
			Status: o.status, RSAOps: o.rsaOps, Refreshed: o.refreshed,
			BackendCalled: o.backendCalled, BackendLatency: o.backendDur, BackendError: o.backendErr,
			ErrorKey: o.errorKey,
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
