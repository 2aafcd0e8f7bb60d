package dispatch

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/flowkey/flowkey/internal/operator"
)

type countingOperator struct{ runs int }

func (o *countingOperator) Run(context.Context, operator.Command) (any, error) {
	o.runs++
	return nil, nil
}

// FuzzHandle: whatever arrives at the Lambda entry point is routed to at
// most one of rotation and operator, or rejected; never a panic.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"Step":"createSecret","SecretId":"arn:x","ClientRequestToken":"t"}`, `{"command":"status"}`,
		`{"command":"status","Step":"x"}`, `{}`, `[]`, `null`, `"x"`, ``, `{"Step":null}`, `{"command":{"a":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rot, op := &recorder{}, &countingOperator{}
		_, err := New(rot, op, nil).Handle(context.Background(), json.RawMessage(raw))
		routed := len(rot.got) + op.runs
		if routed > 1 {
			t.Fatalf("%q reached both the rotation and the operator", raw)
		}
		if routed == 0 && err == nil {
			t.Fatalf("%q was neither routed nor rejected", raw)
		}
	})
}

// FuzzInvoke: the bytes path the Lambda runtime takes gives exactly
// Handle's outcome, routes to at most one of rotation and operator, and a
// success is one JSON value.
func FuzzInvoke(f *testing.F) {
	for _, seed := range []string{
		`{"command":"status"} {"command":"rotate"}`, `{"command":"status"}{"Step":"createSecret"}`, `{"command":"sta`,
		``, ` `, `status`, `{"Step":"createSecret","SecretId":"arn:x","ClientRequestToken":"t","Unknown":[1]}`,
		`{"command":"status"}`, "\ufeff{}", `{"command":"status"}` + "\x00", `[{"command":"status"}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rot, op := &recorder{}, &countingOperator{}
		out, err := New(rot, op, nil).Invoke(context.Background(), raw)
		if len(rot.got)+op.runs > 1 {
			t.Fatalf("%q reached both the rotation and the operator", raw)
		}
		_, herr := New(&recorder{}, &countingOperator{}, nil).Handle(context.Background(), json.RawMessage(raw))
		if (err == nil) != (herr == nil) || (err != nil && err.Error() != herr.Error()) {
			t.Fatalf("%q: Invoke's error %v differs from Handle's %v", raw, err, herr)
		}
		if err == nil && !json.Valid(out) {
			t.Fatalf("%q: the report %q is not JSON", raw, out)
		}
	})
}
