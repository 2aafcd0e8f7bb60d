package dispatch

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// The payloads a typed handler got wrong: the runtime decoded the first
// JSON value only, and answered the rest with its decoder's bare errors.
var rawPayloads = []struct{ name, raw, want string }{
	{"two commands", `{"command":"status"} {"command":"rotate"}`, "event has data after its JSON object; send exactly one event"},
	{"a command and a step", `{"command":"status"}{"Step":"createSecret","SecretId":"a","ClientRequestToken":"t"}`, "event has data after its JSON object"},
	{"trailing garbage", `{"command":"status"} x`, "event has data after its JSON object"},
	{"empty", ``, "event is not a JSON object"},
	{"white space", " \n\t", "event is not a JSON object"},
	{"truncated", `{"command":"sta`, "event is not valid JSON"},
	{"not JSON", `command=status`, "event is not a JSON object"},
	{"a bare word", `status`, "event is not a JSON object"},
}

func TestInvokeRejectsWhatTheTypedHandlerLetThrough(t *testing.T) {
	for _, tc := range rawPayloads {
		t.Run(tc.name, func(t *testing.T) {
			rec, op := &recorder{}, &opRecorder{}
			out, err := New(rec, op, nil).Invoke(context.Background(), []byte(tc.raw))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "accepted events: ") {
				t.Fatalf("Invoke(%q) = %q, %v; want an error starting %q, with the accepted shapes", tc.raw, out, err, tc.want)
			}
			if len(rec.got)+len(op.got) != 0 {
				t.Errorf("Invoke(%q) ran %d steps and %d commands, want none", tc.raw, len(rec.got), len(op.got))
			}
			// Exactly dispatch.Handle's error: the same text on every path.
			_, herr := New(&recorder{}, &opRecorder{}, nil).Handle(context.Background(), json.RawMessage(tc.raw))
			if herr == nil || herr.Error() != err.Error() {
				t.Errorf("Invoke's error %q differs from Handle's %v", err, herr)
			}
		})
	}
}

func TestInvokeReturnsTheReportAsTheRuntimeWouldEncodeIt(t *testing.T) {
	op := &opRecorder{out: map[string]any{"advice": "run a & b <then> c"}}
	rec := &recorder{}
	h := New(rec, op, nil)
	out, err := h.Invoke(context.Background(), []byte(` {"command":"status"} `))
	if err != nil {
		t.Fatal(err)
	}
	// aws-lambda-go encodes a typed handler's result without HTML escaping
	// and strips the encoder's newline.
	if want := `{"advice":"run a & b <then> c"}`; string(out) != want {
		t.Errorf("report = %s, want %s", out, want)
	}
	out, err = h.Invoke(context.Background(), []byte(`{"Step":"testSecret","SecretId":"a","ClientRequestToken":"t","RotationToken":"r","Extra":{"from":"AWS"}}`))
	if err != nil || string(out) != "null" || len(rec.got) != 1 || rec.got[0].RotationToken != "r" {
		t.Errorf("a step with an unknown field: %s, %v, %+v; want null, the step run", out, err, rec.got)
	}
	op.out = make(chan int) // cannot be encoded
	if _, err := h.Invoke(context.Background(), []byte(`{"command":"status"}`)); err == nil || !strings.Contains(err.Error(), "encoding the report") {
		t.Errorf("an unencodable report: %v", err)
	}
}
