package dispatch

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/operator"
)

// With the fleet's syntax the fleet's commands reach the operator, and
// errors list the fleet's shapes; without it they are refused as before.
func TestTheFleetSyntaxRoutesTheFleetsCommands(t *testing.T) {
	rec, op := &recorder{}, &opRecorder{out: map[string]any{"ok": true}}
	h := New(rec, op, nil, WithSyntax(operator.Syntax{Fleet: true}))
	for raw, want := range map[string]operator.Command{
		`{"command":"enroll","tenant":"acme","config":{"waba_id":"102290129340398"},"dry_run":true}`: {Name: "enroll", Tenant: "acme", Config: `{"waba_id":"102290129340398"}`, DryRun: true},
		`{"command":"unenroll","tenant":"acme"}`:                                                     {Name: "unenroll", Tenant: "acme"},
		`{"command":"rotate","tenant":"acme"}`:                                                       {Name: "rotate", Tenant: "acme"},
		`{"command":"status"}`:                                                                       {Name: "status"},
	} {
		op.got = nil
		if _, err := h.Handle(context.Background(), json.RawMessage(raw)); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if len(op.got) != 1 || op.got[0] != want {
			t.Errorf("%s: operator got %+v, want %+v", raw, op.got, want)
		}
	}
	_, err := h.Handle(context.Background(), json.RawMessage(`{"command":"restart"}`))
	if err == nil || !strings.Contains(err.Error(), `"enroll", "unenroll"`) || !strings.Contains(err.Error(), operator.FleetShapes) {
		t.Errorf("got %v", err)
	}
	_, err = New(rec, op, nil).Handle(context.Background(), json.RawMessage(`{"command":"enroll","tenant":"acme","config":{"waba_id":"1"}}`))
	if err == nil || !strings.Contains(err.Error(), `command "enroll" is a fleet command, and this function's fleet is off`) || !strings.Contains(err.Error(), operator.Shapes) {
		t.Errorf("without the fleet: %v", err)
	}
}
