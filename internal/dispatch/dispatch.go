// Package dispatch is the Lambda entry point: it routes Secrets Manager's
// rotation steps to the rotation and operator commands to the operator,
// and rejects any other event with the list of accepted shapes.
package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/rotation"
)

// Rotation runs one rotation step.
type Rotation interface {
	Handle(ctx context.Context, ev rotation.Event) error
}

// Operator runs one operator command and returns its report.
type Operator interface {
	Run(ctx context.Context, cmd operator.Command) (any, error)
}

// Flusher writes what was measured during one invocation.
type Flusher interface {
	Flush()
}

// Handler routes invocations.
type Handler struct {
	rotation Rotation
	operator Operator
	metrics  Flusher
	syntax   operator.Syntax
}

// Option changes a Handler.
type Option func(*Handler)

// WithSyntax parses commands with s: operator.Syntax{Fleet: true} accepts
// the fleet's commands (enroll, unenroll, "tenant", a fleet status's
// "next_token"), and every error lists the fleet's shapes. Without it the
// Handler parses as it always has.
func WithSyntax(s operator.Syntax) Option { return func(h *Handler) { h.syntax = s } }

// New returns a Handler. op and metrics may be nil: without an operator,
// commands are rejected; without metrics, nothing is flushed.
func New(rot Rotation, op Operator, metrics Flusher, opts ...Option) *Handler {
	h := &Handler{rotation: rot, operator: op, metrics: metrics}
	for _, o := range opts {
		o(h)
	}
	return h
}

// stepEvent is Secrets Manager's rotation event. Unknown fields are
// allowed: AWS may add some, and a rotation must not fail for it.
type stepEvent struct {
	Step               *string `json:"Step"`
	SecretID           *string `json:"SecretId"`
	ClientRequestToken *string `json:"ClientRequestToken"`
	RotationToken      *string `json:"RotationToken"`
}

// acceptedShapes is quoted in every error about an unrecognised event.
func (h *Handler) acceptedShapes() string {
	return `accepted events: an operator command ` + h.syntax.Shapes() +
		`, or a Secrets Manager rotation event {"Step":"createSecret|setSecret|testSecret|finishSecret","SecretId":"<arn>","ClientRequestToken":"<version id>","RotationToken":"<token>"}`
}

// Handle decodes the event and runs it: a member "command" makes it an
// operator command, decoded strictly; a member "Step" makes it a rotation
// step. Rotation steps return no payload; commands return their report.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	if h.metrics != nil {
		defer h.metrics.Flush()
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("event is not a JSON object; %s", h.acceptedShapes())
	}
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&members); err != nil {
		return nil, fmt.Errorf("event is not valid JSON (%v); %s", err, h.acceptedShapes())
	}
	if _, err := dec.Token(); err != io.EOF {
		// Two commands in one payload must not run the first of them.
		return nil, fmt.Errorf("event has data after its JSON object; send exactly one event; %s", h.acceptedShapes())
	}
	_, isCommand := members["command"]
	_, isStep := members["Step"]
	switch {
	case isCommand && isStep:
		return nil, fmt.Errorf(`event has both "command" and "Step"; send one or the other; %s`, h.acceptedShapes())
	case isCommand:
		return h.command(ctx, trimmed)
	case !isStep:
		return nil, fmt.Errorf(`event has no "command" and no "Step"; %s`, h.acceptedShapes())
	}
	var ev stepEvent
	if err := json.Unmarshal(trimmed, &ev); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("event field %s must be a %s, not a JSON %s; %s", te.Field, te.Type, te.Value, h.acceptedShapes())
		}
		return nil, fmt.Errorf("event is not valid JSON (%v); %s", err, h.acceptedShapes())
	}
	return nil, h.rotation.Handle(ctx, rotation.Event{
		Step:               deref(ev.Step),
		SecretID:           deref(ev.SecretID),
		ClientRequestToken: deref(ev.ClientRequestToken),
		RotationToken:      deref(ev.RotationToken),
	})
}

// Invoke is the Lambda entry point (it implements lambda.Handler of
// github.com/aws/aws-lambda-go): the runtime hands it the payload as sent,
// and Handle reads it. With a typed handler the runtime would decode only
// the first JSON value itself, so {"command":"status"} {"command":"rotate"}
// would run status, and an empty or broken body would get the decoder's
// bare "EOF" or syntax error instead of Handle's. The report is encoded as
// the runtime encodes a typed handler's result: no HTML escaping, no
// trailing newline; a rotation step's is null.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := h.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encoding the report: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (h *Handler) command(ctx context.Context, raw []byte) (any, error) {
	cmd, err := h.syntax.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("operator command: %w; %s", err, h.acceptedShapes())
	}
	if h.operator == nil {
		return nil, errors.New("operator commands are not enabled in this function; send a Secrets Manager rotation event")
	}
	return h.operator.Run(ctx, cmd)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
