package strictjson

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"testing"
)

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func TestMembersKeepsEveryMemberInOrder(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		dups     []int
	}{
		{"empty object", `{}`, []string{}, nil},
		{"white space around", " \n{\"b\":1, \"a\":[1,{\"x\":2}]}\t ", []string{"b", "a"}, nil},
		{"names are exact", `{"Dry_Run":true,"dry_run":false}`, []string{"Dry_Run", "dry_run"}, nil},
		{"duplicates kept", `{"a":1,"b":2,"a":3,"a":null}`, []string{"a", "b", "a", "a"}, []int{2, 3}},
		{"empty name", `{"":1}`, []string{""}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Members([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if n := names(got); !slices.Equal(n, tc.want) {
				t.Errorf("names %q, want %q", n, tc.want)
			}
			if d := Duplicates(got); !slices.Equal(d, tc.dups) {
				t.Errorf("Duplicates = %v, want %v", d, tc.dups)
			}
		})
	}
}

func TestMembersValuesAreTheRawValues(t *testing.T) {
	got, err := Members([]byte(`{"s":"x","n":-1.5e3,"o":{"k":[true,null]},"z":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"x"`, `-1.5e3`, `{"k":[true,null]}`, `null`}
	for i, m := range got {
		if string(m.Value) != want[i] {
			t.Errorf("member %s = %s, want %s", m.Name, m.Value, want[i])
		}
	}
}

func TestMembersErrors(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(error) bool
		// read are the names returned with the error.
		read []string
	}{
		{"empty", ``, isSyntax(io.EOF), nil},
		{"white space only", " \n", isSyntax(io.EOF), nil},
		{"array", `[1]`, isNotObject(Array), nil},
		{"string", `"x"`, isNotObject(String), nil},
		{"number", `12`, isNotObject(Number), nil},
		{"boolean", `false`, isNotObject(Bool), nil},
		{"null", `null`, isNotObject(Null), nil},
		{"not JSON", `x`, isJSONSyntax, nil},
		{"ends before a value", `{"a":1,"b":`, isSyntax(io.EOF), []string{"a"}},
		{"ends inside a value", `{"a":1,"b":"x`, isSyntax(io.ErrUnexpectedEOF), []string{"a"}},
		{"ends after a member", `{"a":1`, isSyntax(io.EOF), []string{"a"}},
		{"bad value", `{"a":1,"a":2,"b":tru}`, isJSONSyntax, []string{"a", "a"}},
		{"bad name", `{"a":1,b:2}`, isJSONSyntax, []string{"a"}},
		{"second object", `{"a":1} {}`, isTrailing, []string{"a"}},
		{"closing brace", `{"a":1}}`, isTrailing, []string{"a"}},
		{"closing bracket", `{"a":1}]`, isTrailing, []string{"a"}},
		{"garbage", `{"a":1,"a":2}x`, isTrailing, []string{"a", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Members([]byte(tc.in))
			if err == nil || !tc.check(err) {
				t.Fatalf("error %T %v is not the one expected", err, err)
			}
			if n := names(got); len(n)+len(tc.read) > 0 && !slices.Equal(n, tc.read) {
				t.Errorf("returned names %q with the error, want %q", n, tc.read)
			}
		})
	}
}

func isSyntax(cause error) func(error) bool {
	return func(err error) bool {
		var se *SyntaxError
		return errors.As(err, &se) && errors.Is(err, cause)
	}
}

func isJSONSyntax(err error) bool {
	var se *SyntaxError
	var js *json.SyntaxError
	return errors.As(err, &se) && errors.As(err, &js) && se.Error() == js.Error()
}

func isNotObject(k Kind) func(error) bool {
	return func(err error) bool {
		var ne *NotObjectError
		return errors.As(err, &ne) && ne.Kind == k
	}
}

func isTrailing(err error) bool { return errors.Is(err, ErrTrailingData) }

func TestKindOf(t *testing.T) {
	tests := []struct {
		raw  string
		want Kind
		name string
	}{
		{``, None, "nothing"},
		{"  ", None, "nothing"},
		{` {"a":1}`, Object, "an object"},
		{`[]`, Array, "an array"},
		{`"s"`, String, "a string"},
		{`-1`, Number, "a number"},
		{`0.5`, Number, "a number"},
		{`true`, Bool, "a boolean"},
		{`false`, Bool, "a boolean"},
		{`null`, Null, "null"},
	}
	for _, tc := range tests {
		if got := KindOf([]byte(tc.raw)); got != tc.want || got.String() != tc.name {
			t.Errorf("KindOf(%q) = %v (%s), want %v (%s)", tc.raw, got, got, tc.want, tc.name)
		}
	}
}
