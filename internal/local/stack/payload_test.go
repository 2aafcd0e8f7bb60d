package stack_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/dispatch"
)

// The deployed binary reads the payload as sent, through dispatch: the
// Lambda runtime's typed-handler decoding ran the first of two commands
// and answered broken bodies with a bare "EOF" or syntax error.
func TestTheFunctionReadsThePayloadStrictlyThroughTheRIE(t *testing.T) {
	e := start(t, setup{})
	// After one rotation the secret has its rotation function: a "rotate"
	// that slipped through would start a rotation.
	e.rotateOK(t)
	before := len(e.Secrets.Events(e.arn))
	payloads := []struct{ name, raw string }{
		{"two commands", `{"command":"rotate"} {"command":"status"}`},
		{"a command and a step", `{"command":"rotate"}{"Step":"createSecret","SecretId":"x","ClientRequestToken":"y"}`},
		{"empty", ``},
		{"white space", "  \n"},
		{"truncated", `{"command":"rot`},
		{"not JSON", `command=rotate`},
	}
	for _, p := range payloads {
		t.Run(p.name, func(t *testing.T) {
			msg := e.invoke(t, p.raw, nil)
			// Handle rejects these before it routes anything, so a Handler
			// without rotation or operator gives the very same error.
			_, want := dispatch.New(nil, nil, nil).Handle(context.Background(), json.RawMessage(p.raw))
			if want == nil {
				t.Fatalf("dispatch.Handle accepts %q; the test needs a payload it rejects", p.raw)
			}
			if msg != want.Error() {
				t.Errorf("the function answered %q\nwith %q\nwant dispatch's %q", p.raw, msg, want)
			}
		})
	}
	// Nothing ran: "rotate" first in a payload would have started a rotation.
	if evs := e.Secrets.Events(e.arn); len(evs) != before {
		t.Errorf("the rejected payloads caused %d rotation events, first %+v", len(evs)-before, evs[before])
	}
	// A rotation step still accepts the members Secrets Manager may add: the
	// error is the rotation's, about the token, not one about the event.
	step := `{"Step":"testSecret","SecretId":"` + e.arn + `","ClientRequestToken":"00000000-0000-4000-8000-000000000000","RotationToken":"r","NewFieldFromAWS":{"a":1}}`
	if msg := e.invoke(t, step, nil); msg == "" || strings.HasPrefix(msg, "event ") || !strings.Contains(msg, "00000000-0000-4000-8000-000000000000") {
		t.Errorf("a step event with an unknown field got %q, want the rotation's error about its token", msg)
	}
	// And a well-formed command still runs.
	if r := e.status(t); len(r.Numbers) == 0 {
		t.Errorf("status after the rejected payloads: %+v", r)
	}
}
