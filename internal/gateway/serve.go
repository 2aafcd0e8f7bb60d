package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/flowcrypto"
	"github.com/flowkey/flowkey/internal/keyring"
)

// signatureHeader as a Function URL delivers it: lower-cased.
const signatureHeader = "x-hub-signature-256"

// The answers the gateway makes itself.
var (
	pingAnswer = []byte(`{"data":{"status":"active"}}`)
	ackAnswer  = []byte(`{"data":{"acknowledged":true}}`)
)

// serve runs the steps of the package comment, in order; each failure ends
// the request with its status.
func (h *Handler) serve(ctx context.Context, ev events.LambdaFunctionURLRequest, start time.Time) outcome {
	if ev.RequestContext.HTTP.Method != http.MethodPost {
		return outcome{status: http.StatusMethodNotAllowed, name: "method_not_allowed"}
	}
	body, o, ok := h.body(ev)
	if !ok {
		return o
	}
	keys, who, ok := h.keysFor(ctx, ev, body)
	if !ok {
		return who
	}
	sum := sha256.Sum256(body)
	if h.replay.seenRecently(sum, start) {
		return outcome{status: 421, name: "replay", reason: "this instance has already decrypted this body", tenant: who.tenant}
	}
	env, err := flowcrypto.ParseEnvelope(body)
	if err != nil {
		return outcome{status: 421, name: "bad_envelope", reason: err.Error(), tenant: who.tenant}
	}
	res, err := keys.Decrypt(ctx, env.EncryptedAESKey)
	o = outcome{status: 421, keyLabel: res.Label, rsaOps: res.RSAOps, refreshed: res.Refreshed, tenant: who.tenant}
	switch {
	case errors.Is(err, keyring.ErrEmpty):
		o.name, o.reason = "no_keys", "the key ring holds no key"
		return o
	case err != nil:
		o.name, o.reason = "no_key", "no live key decrypts encrypted_aes_key"
		return o
	}
	sess, err := flowcrypto.NewSession(res.Plaintext, env.IV)
	clear(res.Plaintext)
	if err != nil {
		o.name, o.reason = "bad_aes_key", "the decrypted AES key is not 16 bytes"
		return o
	}
	plain, err := sess.Open(env.EncryptedFlowData)
	if err != nil {
		o.name, o.reason = "bad_ciphertext", "AES-GCM authentication failed"
		return o
	}
	req, err := parseRequest(plain)
	if err != nil {
		o.name, o.reason = "bad_request", err.Error()
		return o
	}
	o.action, o.screen = req.action, req.screen
	if !h.replay.add(sum, start) {
		o.name, o.reason = "replay", "a copy of this body arrived at the same time"
		return o
	}
	return h.route(ctx, ev, start, req, sess, o)
}

// body returns the raw body as Meta sent it, refusing one over the cap
// before decoding it.
func (h *Handler) body(ev events.LambdaFunctionURLRequest) ([]byte, outcome, bool) {
	tooLarge := outcome{status: http.StatusRequestEntityTooLarge, name: "body_too_large"}
	if !ev.IsBase64Encoded {
		if len(ev.Body) > h.opts.MaxBodyBytes {
			return nil, tooLarge, false
		}
		return []byte(ev.Body), outcome{}, true
	}
	if base64.StdEncoding.DecodedLen(len(ev.Body)) > h.opts.MaxBodyBytes+2 {
		return nil, tooLarge, false
	}
	body, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil {
		// A Function URL encodes bodies itself: this is not Meta's doing.
		return nil, outcome{status: http.StatusBadRequest, name: "bad_body", reason: "isBase64Encoded is set but the body is not base64"}, false
	}
	if len(body) > h.opts.MaxBodyBytes {
		return nil, tooLarge, false
	}
	return body, outcome{}, true
}

// route answers ping and error notifications and sends the rest to the
// backend.
func (h *Handler) route(ctx context.Context, ev events.LambdaFunctionURLRequest, start time.Time, req *flowRequest, sess *flowcrypto.Session, o outcome) outcome {
	switch {
	case req.action == ActionPing:
		o.name = "ping"
		return o.sealed(sess, pingAnswer)
	case req.errorKey != "":
		o.name, o.errorKey = "error_notification", req.errorKey
		return o.sealed(sess, ackAnswer)
	}
	deadline := start.Add(h.opts.BackendTimeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-AnswerReserve).Before(deadline) {
		deadline = d.Add(-AnswerReserve)
	}
	bctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	called := h.opts.Now()
	resp, err := h.opts.Backend.Call(bctx, &backend.Request{Request: req.raw, Metadata: backend.Metadata{
		RequestID:  requestID(ctx, ev),
		ReceivedAt: start,
		Deadline:   deadline,
		KeyLabel:   o.keyLabel,
		Tenant:     o.tenant,
	}})
	o.backendCalled, o.backendDur = true, h.opts.Now().Sub(called)
	if err != nil {
		o.backendErr = true
		var be *backend.Error
		if !errors.As(err, &be) {
			be = &backend.Error{Reason: "failed"}
		}
		o.reason = be.Reason
		if be.Timeout {
			o.status, o.name = http.StatusGatewayTimeout, "backend_timeout"
		} else {
			o.status, o.name = http.StatusInternalServerError, "backend_error"
		}
		return o
	}
	if resp.Status == backend.StatusFlowTokenInvalid {
		o.status, o.name = backend.StatusFlowTokenInvalid, "flow_token_invalid"
		o.jsonBody = flowTokenAnswer(resp.ErrorMsg)
		return o
	}
	o.name = "ok"
	return o.sealed(sess, resp.Response)
}

// header finds name in a Function URL's headers: lower-cased there, but
// matched without regard to case for any other caller.
func header(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func signatureReason(err error) string {
	switch {
	case errors.Is(err, appsecret.ErrMissing):
		return "no X-Hub-Signature-256"
	case errors.Is(err, appsecret.ErrMalformed):
		return "X-Hub-Signature-256 is malformed"
	}
	return "X-Hub-Signature-256 does not match the body"
}

// requestID is the invocation's Lambda request ID, or the Function URL's.
func requestID(ctx context.Context, ev events.LambdaFunctionURLRequest) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	return ev.RequestContext.RequestID
}
