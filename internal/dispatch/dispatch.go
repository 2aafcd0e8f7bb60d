// Package dispatch is the Lambda entry point: it tells a Secrets Manager
// rotation step from anything else and hands it to the rotation.
package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowkey/flowkey/internal/rotation"
)

// Rotation runs one rotation step.
type Rotation interface {
	Handle(ctx context.Context, ev rotation.Event) error
}

// Handler routes invocations.
type Handler struct {
	rotation Rotation
}

// New returns a Handler.
func New(rot Rotation) *Handler { return &Handler{rotation: rot} }

// stepEvent is Secrets Manager's rotation event. Unknown fields are
// allowed: AWS may add some, and a rotation must not fail for it.
type stepEvent struct {
	Step               *string `json:"Step"`
	SecretID           *string `json:"SecretId"`
	ClientRequestToken *string `json:"ClientRequestToken"`
	RotationToken      *string `json:"RotationToken"`
}

// acceptedShapes is quoted in every error about an unrecognised event.
const acceptedShapes = `a Secrets Manager rotation event {"Step":"createSecret|setSecret|testSecret|finishSecret","SecretId":"<arn>","ClientRequestToken":"<version id>","RotationToken":"<token>"}`

// Handle decodes the event and runs it. Rotation steps return no payload.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("event is not a JSON object; send %s", acceptedShapes)
	}
	var ev stepEvent
	if err := json.Unmarshal(trimmed, &ev); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("event field %s must be a %s, not a JSON %s; send %s", te.Field, te.Type, te.Value, acceptedShapes)
		}
		return nil, fmt.Errorf("event is not valid JSON (%v); send %s", err, acceptedShapes)
	}
	if ev.Step == nil {
		return nil, fmt.Errorf("event has no \"Step\"; send %s", acceptedShapes)
	}
	return nil, h.rotation.Handle(ctx, rotation.Event{
		Step:               deref(ev.Step),
		SecretID:           deref(ev.SecretID),
		ClientRequestToken: deref(ev.ClientRequestToken),
		RotationToken:      deref(ev.RotationToken),
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
