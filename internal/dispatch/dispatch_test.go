package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/rotation"
)

type recorder struct{ got []rotation.Event }

func (r *recorder) Handle(_ context.Context, ev rotation.Event) error {
	r.got = append(r.got, ev)
	return nil
}

func TestStepEventsReachTheRotation(t *testing.T) {
	rec := &recorder{}
	h := New(rec, nil, nil)
	raw := `{"Step":"setSecret","SecretId":"arn:x","ClientRequestToken":"tok","RotationToken":"rt","NewFieldFromAWS":1}`
	if _, err := h.Handle(context.Background(), json.RawMessage(raw)); err != nil {
		t.Fatal(err)
	}
	want := rotation.Event{Step: "setSecret", SecretID: "arn:x", ClientRequestToken: "tok", RotationToken: "rt"}
	if len(rec.got) != 1 || rec.got[0] != want {
		t.Fatalf("rotation got %+v, want %+v", rec.got, want)
	}
}

func TestMalformedEventsAreRejectedWithTheAcceptedShapes(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"not an object", `[1]`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"bad JSON", `{"Step":`, "not valid JSON"},
		{"wrong type", `{"Step":3}`, "event field Step must be a string"},
		{"no step", `{"SecretId":"x"}`, `no "Step"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			_, err := New(rec, nil, nil).Handle(context.Background(), json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"Step":"createSecret|setSecret|testSecret|finishSecret"`) {
				t.Fatalf("want %q and the accepted shapes, got %v", tc.want, err)
			}
			if len(rec.got) != 0 {
				t.Error("a malformed event reached the rotation")
			}
		})
	}
}

type opRecorder struct {
	got []operator.Command
	out any
	err error
}

func (o *opRecorder) Run(_ context.Context, cmd operator.Command) (any, error) {
	o.got = append(o.got, cmd)
	return o.out, o.err
}

type flushCounter struct{ n int }

func (f *flushCounter) Flush() { f.n++ }

const shapes = `accepted events: an operator command {"command":"rotate"} | {"command":"status"} | {"command":"resync","dry_run":true|false} | ` +
	`{"command":"set-config","config":{"phone_number_ids":["<id>",...]} or {"waba_id":"<id>",...},"dry_run":true|false} ` +
	`(each may add "secret_id":"<secret ARN or name>"; "dry_run" only with resync and set-config), ` +
	`or a Secrets Manager rotation event {"Step":"createSecret|setSecret|testSecret|finishSecret","SecretId":"<arn>","ClientRequestToken":"<version id>","RotationToken":"<token>"}`

func TestCommandsReachTheOperatorAndReturnItsReport(t *testing.T) {
	rec, op, fl := &recorder{}, &opRecorder{out: map[string]any{"ok": true}}, &flushCounter{}
	h := New(rec, op, fl)
	out, err := h.Handle(context.Background(), json.RawMessage(`{"command":"resync","dry_run":true,"secret_id":"flowkey/key"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := operator.Command{Name: "resync", SecretID: "flowkey/key", DryRun: true}
	if len(op.got) != 1 || op.got[0] != want || len(rec.got) != 0 {
		t.Fatalf("operator got %+v, rotation got %+v; want %+v", op.got, rec.got, want)
	}
	if m, ok := out.(map[string]any); !ok || m["ok"] != true {
		t.Errorf("payload %v, want the operator's report", out)
	}
	if fl.n != 1 {
		t.Errorf("metrics flushed %d times, want 1", fl.n)
	}
	op.err = errors.New("boom")
	if _, err := h.Handle(context.Background(), json.RawMessage(`{"command":"status"}`)); err == nil || err.Error() != "boom" {
		t.Errorf("the operator's error must come back unchanged, got %v", err)
	}
	if _, err := h.Handle(context.Background(), json.RawMessage(`{"Step":"testSecret","SecretId":"a","ClientRequestToken":"t"}`)); err != nil || len(rec.got) != 1 {
		t.Errorf("step after commands: %v, %d steps", err, len(rec.got))
	}
	if fl.n != 3 {
		t.Errorf("metrics flushed %d times after 3 invocations", fl.n)
	}
}

func TestMalformedCommandsAreRejectedWithTheFieldAndTheAcceptedShapes(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"unknown command", `{"command":"restart"}`,
			`operator command: command "restart" is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config"; ` + shapes},
		{"wrong type", `{"command":"resync","dry_run":"true"}`,
			`operator command: dry_run must be true or false, not a string; fix: send "dry_run":true to see what resync would do, or "dry_run":false to do it; ` + shapes},
		{"extra field", `{"command":"status","SecretId":"arn:x"}`,
			`operator command: field "SecretId" is not accepted in a command; fix: send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config); ` + shapes},
		{"both kinds", `{"command":"status","Step":"createSecret"}`,
			`event has both "command" and "Step"; send one or the other; ` + shapes},
		{"neither", `{"cmd":"status"}`,
			`event has no "command" and no "Step"; ` + shapes},
		{"not an object", `"status"`,
			`event is not a JSON object; ` + shapes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, op, fl := &recorder{}, &opRecorder{}, &flushCounter{}
			_, err := New(rec, op, fl).Handle(context.Background(), json.RawMessage(tc.raw))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got\n%v\nwant\n%s", err, tc.want)
			}
			if len(rec.got)+len(op.got) != 0 {
				t.Error("a malformed event was run")
			}
			if fl.n != 1 {
				t.Errorf("metrics flushed %d times, want 1", fl.n)
			}
		})
	}
}

func TestCommandsWithoutAnOperatorAreRejected(t *testing.T) {
	_, err := New(&recorder{}, nil, nil).Handle(context.Background(), json.RawMessage(`{"command":"status"}`))
	if err == nil || !strings.Contains(err.Error(), "operator commands are not enabled") {
		t.Fatalf("got %v", err)
	}
}
