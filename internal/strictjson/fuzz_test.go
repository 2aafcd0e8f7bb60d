package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzMembers: Members never panics; it accepts exactly the inputs that
// are one valid JSON object; what it returns agrees with encoding/json (the
// same names, the last of a duplicated name being the value a map keeps);
// and every error is one of the three documented kinds.
func FuzzMembers(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` {"a":1} `, `{"a":1,"a":2}`, `{"A":1,"a":2}`, `{"a":{"b":[1,"x",null]},"c":true}`,
		``, ` `, `[]`, `null`, `"x"`, `1`, `{`, `{"a":`, `{"a":1`, `{"a":1}{}`, `{"a":1}]`, `{"a":1}}`, `{"a":1} x`,
		`{"a":1,}`, `{"\u0061":1,"a":2}`, "{\"a\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, err := Members(data)
		isObject := json.Valid(data) && bytes.TrimSpace(data)[0] == '{'
		if err != nil {
			var se *SyntaxError
			var ne *NotObjectError
			if !errors.As(err, &se) && !errors.As(err, &ne) && !errors.Is(err, ErrTrailingData) {
				t.Fatalf("undocumented error %T %v", err, err)
			}
			if isObject {
				t.Fatalf("refused a valid JSON object %q: %v", data, err)
			}
			for _, m := range members {
				if !json.Valid(m.Value) {
					t.Fatalf("returned an invalid value %q with the error", m.Value)
				}
			}
			return
		}
		if !isObject {
			t.Fatalf("accepted %q, which is not one valid JSON object", data)
		}
		var std map[string]json.RawMessage
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("encoding/json refuses what Members accepted: %v", err)
		}
		last := map[string]json.RawMessage{}
		for _, m := range members {
			if !json.Valid(m.Value) {
				t.Fatalf("member %q has an invalid value %q", m.Name, m.Value)
			}
			last[m.Name] = m.Value
		}
		if len(last) != len(std) {
			t.Fatalf("%d distinct names, encoding/json sees %d", len(last), len(std))
		}
		for name, v := range std {
			if got, ok := last[name]; !ok || !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(v)) {
				t.Fatalf("member %q: Members has %q, encoding/json %q", name, got, v)
			}
		}
		if d := Duplicates(members); len(members)-len(d) != len(std) {
			t.Fatalf("%d members with %d duplicates, but %d distinct names", len(members), len(d), len(std))
		}
	})
}
