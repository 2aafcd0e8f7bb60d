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
