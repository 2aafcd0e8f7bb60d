package dispatch

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/rotation"
)

type recorder struct{ got []rotation.Event }

func (r *recorder) Handle(_ context.Context, ev rotation.Event) error {
	r.got = append(r.got, ev)
	return nil
}

func TestStepEventsReachTheRotation(t *testing.T) {
	rec := &recorder{}
	h := New(rec)
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
			_, err := New(rec).Handle(context.Background(), json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"Step":"createSecret|setSecret|testSecret|finishSecret"`) {
				t.Fatalf("want %q and the accepted shapes, got %v", tc.want, err)
			}
			if len(rec.got) != 0 {
				t.Error("a malformed event reached the rotation")
			}
		})
	}
}
