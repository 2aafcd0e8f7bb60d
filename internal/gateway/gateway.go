// Package gateway is the Flows data-exchange endpoint: it takes a request
// as a Lambda Function URL delivers it (payload format 2.0), verifies Meta's
// signature, decrypts with every live key of the key ring, answers the
// health check and error notifications itself, hands the rest to the
// business's backend and encrypts the backend's answer. The backend never
// touches a key or the crypto.
//
// # One request
//
//  1. Method: anything but POST is 405.
//  2. Size: a body over Options.MaxBodyBytes is 413, before any HMAC or
//     RSA work (a base64 body is measured before it is decoded).
//  3. Signature: X-Hub-Signature-256 must be the HMAC-SHA256 of the raw
//     body with the Meta app secret, compared in constant time; missing,
//     malformed or wrong is 432, before any RSA operation. If the app
//     secret cannot be read at all the answer is 500: the sender is not
//     at fault. Options.SkipSignatureCheck turns the check off, for local
//     tests only; every request's log line then says signature_check "off".
//  4. Replay: a body this instance already decrypted (within
//     DefaultReplayWindow, up to DefaultReplayEntries bodies) is 421, with
//     no RSA operation. Best effort, per instance.
//  5. Envelope and decryption (internal/flowcrypto, internal/keyring): any
//     failure at any stage is 421, the one answer that makes the WhatsApp
//     client re-fetch the public key and retry once: a strict envelope,
//     the RSA-OAEP block with every live key (the ring refreshes once when
//     none decrypts), a 16-byte AES key, AES-128-GCM with the 16-byte IV,
//     and a decrypted JSON object with a known action. Every 421 has the
//     same empty body, so an answer tells a sender nothing about which
//     stage failed. A key held in KMS decrypts with kms:Decrypt; KMS
//     throttling that outlasts one short retry, or a KMS key disabled or
//     pending deletion, is a key that does not decrypt: 421 when no other
//     key does, never 500.
//  6. Route: ping is answered {"data":{"status":"active"}}; an error
//     notification (data.error present) is answered
//     {"data":{"acknowledged":true}}, logged and counted by a bounded error
//     key; INIT, BACK and data_exchange go to the backend
//     (internal/backend), with a deadline of Options.BackendTimeout capped
//     by the invocation's own deadline less a reserve for the answer.
//  7. Answer: the JSON is sealed with the same AES key and the IV with every
//     bit inverted, base64, Content-Type text/plain, HTTP 200. A backend's
//     427 is answered HTTP 427 with {"error_msg": ...} as JSON, unencrypted;
//     a backend failure is 500, a backend timeout 504.
//
// # Fleet
//
// With Options.Tenants, the Function URL's path picks the keys: "/" is the
// single secret's ring (Options.Keys) as before, /t/<tenant> the tenant's
// (internal/tenants), and any other path is 404. The signature is checked
// before a tenant is looked up whenever it can be: with the fleet's app
// secret (Options.Verifier), and for every request when tenants may not
// name their own app secret, so that unauthenticated traffic costs no
// Secrets Manager call and learns nothing of which tenants exist. Then:
//
//   - a tenant the fleet does not have (no secret, one scheduled for
//     deletion, or one of another fleet) is 404 to a request the fleet's
//     app secret signs: there is no key to re-fetch and nothing Meta can
//     fix; to any other request it is 432, as a bad signature;
//   - a tenant whose configuration names app_secret_id is checked with
//     that app secret (under the fleet's app secret prefix), whatever the
//     fleet's app secret said; one that names none with the fleet's;
//   - a tenant whose ring cannot be read is 421 (no_keys) to a request the
//     fleet signs, as on "/", and 500 (signature_unverifiable) when its
//     own app secret is what would have checked it.
//
// The request's log line carries the tenant; the metrics do not (a
// dimension per tenant would bill a metric per tenant). The backend gets
// it in metadata.tenant.
//
// # Logs and metrics
//
// Each request writes one slog event, "request", with request_id, action,
// screen, outcome, status, key_label, rsa_ops, duration_ms, backend_ms,
// refreshed, signature_check, and for failures a reason and for error
// notifications an error_key. Every value comes from a fixed set or from the
// gateway itself: never a decrypted payload field (Flows data is the users'
// personal data), never the flow token, the AES key or key material. The
// screen is logged only when it has the shape of a screen ID. Metrics go
// through Options.Metrics (internal/metrics.Endpoint).
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/metrics"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultBackendTimeout = 6 * time.Second
	// AnswerReserve is kept from the invocation's deadline for sealing and
	// returning the answer after the backend.
	AnswerReserve = 250 * time.Millisecond
)

// Verifier checks X-Hub-Signature-256 (an *appsecret.Store).
type Verifier interface {
	Verify(ctx context.Context, body []byte, header string) error
}

// Decrypter recovers the AES key with the live keys (a *keyring.Ring).
type Decrypter interface {
	Decrypt(ctx context.Context, block []byte) (keyring.Result, error)
}

// Metrics receives one report per request (a *metrics.Endpoint).
type Metrics interface {
	Request(metrics.EndpointRequest)
}

// Options configure a Handler. Keys and Backend are required, and Verifier
// unless SkipSignatureCheck is set.
type Options struct {
	Verifier Verifier
	// SkipSignatureCheck turns the X-Hub-Signature-256 check off. For local
	// tests only: anyone who can reach the URL then buys RSA operations.
	SkipSignatureCheck bool
	Keys               Decrypter
	Backend            backend.Backend
	BackendTimeout     time.Duration // DefaultBackendTimeout
	MaxBodyBytes       int           // DefaultMaxBodyBytes
	ReplayWindow       time.Duration // DefaultReplayWindow
	ReplayEntries      int           // DefaultReplayEntries
	Logger             *slog.Logger  // slog.Default()
	Metrics            Metrics       // none when nil
	Now                func() time.Time
	// Tenants serves a fleet's tenants on /t/<tenant> (see "Fleet"); nil:
	// every path is the single secret's, as without a fleet.
	Tenants Tenants
}

// Handler serves the Function URL. It is safe for concurrent use.
type Handler struct {
	opts   Options
	replay *replayCache
}

// New checks opts and returns a Handler. With SkipSignatureCheck it logs a
// warning, so that every cold start of such a function says so.
func New(opts Options) (*Handler, error) {
	switch {
	case opts.Keys == nil:
		return nil, errors.New("gateway: Options.Keys is required")
	case opts.Backend == nil:
		return nil, errors.New("gateway: Options.Backend is required")
	case opts.Verifier == nil && !opts.SkipSignatureCheck:
		return nil, errors.New("gateway: Options.Verifier is required unless SkipSignatureCheck is set")
	}
	if opts.BackendTimeout <= 0 {
		opts.BackendTimeout = DefaultBackendTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = DefaultReplayWindow
	}
	if opts.ReplayEntries <= 0 {
		opts.ReplayEntries = DefaultReplayEntries
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SkipSignatureCheck {
		opts.Logger.Warn("gateway: the X-Hub-Signature-256 check is OFF (INSECURE_SKIP_SIGNATURE_CHECK): anyone who can reach this URL can make it do RSA work; never deploy this")
	}
	return &Handler{opts: opts, replay: newReplayCache(opts.ReplayWindow, opts.ReplayEntries)}, nil
}

// Handle answers one Function URL request. It never returns an error: every
// outcome is an HTTP answer (a Lambda error would reach Meta as a 502).
func (h *Handler) Handle(ctx context.Context, ev events.LambdaFunctionURLRequest) (resp events.LambdaFunctionURLResponse, _ error) {
	start := h.opts.Now()
	var o outcome
	defer func() {
		// A bug must not cost a panic's stack trace in the log, which could
		// hold request data; it is an HTTP 500 and a line that says so.
		if p := recover(); p != nil {
			o = outcome{status: 500, name: "internal_error", reason: "the handler panicked"}
			resp = o.response()
		}
		h.record(ctx, ev, &o, start)
	}()
	o = h.serve(ctx, ev, start)
	return o.response(), nil
}
