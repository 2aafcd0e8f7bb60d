package strictjson

import (
	"bytes"
	"encoding/json"
)

// Kind is the type of a JSON value. Null is a kind of its own: the
// standard decoder turns it into "", 0 or false without complaint, which a
// strict reader must not.
type Kind uint8

// The kinds. None is no value at all (empty or white-space input).
const (
	None Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

// String is a short English name ("an object", "null"), for messages that
// have no wording of their own.
func (k Kind) String() string {
	switch k {
	case Object:
		return "an object"
	case Array:
		return "an array"
	case String:
		return "a string"
	case Number:
		return "a number"
	case Bool:
		return "a boolean"
	case Null:
		return "null"
	}
	return "nothing"
}

// KindOf is the kind of the JSON value raw holds, judged by its first
// byte that is not white space. It does not validate raw: it is meant for
// values the decoder has already read, such as a Member's Value, and
// anything that starts like no other kind counts as a Number.
func KindOf(raw []byte) Kind {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return None
	}
	switch t[0] {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	}
	return Number
}

func kindOfToken(tok json.Token) Kind {
	switch tok.(type) {
	case json.Delim:
		// Members asks only about a first token that is not '{', and the
		// decoder never yields '}' or ']' first.
		return Array
	case string:
		return String
	case float64, json.Number:
		return Number
	case bool:
		return Bool
	}
	return Null
}
