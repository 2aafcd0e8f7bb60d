// Package strictjson reads one JSON object the way flowkey's strict parsers
// need it read: member names exactly as written, every member kept in order
// (duplicates included), and nothing allowed after the object.
//
// encoding/json alone cannot say this. Unmarshalling into a struct matches
// names case-insensitively (so {"Dry_Run":true} would set DryRun), and
// unmarshalling into a map keeps only the last of two members with one name
// (so which value wins would be a decoder detail, not a decision). Members
// returns what was written and leaves the decision, and the wording of every
// error, to the caller: internal/secretdoc and internal/operator each report
// problems in their own terms.
//
// The errors carry no input beyond one character: a *SyntaxError holds the
// decoder's error, whose message names at most the offending character
// (its position is in *json.SyntaxError's Offset), never a value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Member is one name and value of an object, as written.
type Member struct {
	Name  string
	Value json.RawMessage
}

// ErrTrailingData is data after the object: a second value, or bytes that
// are not JSON at all.
var ErrTrailingData = errors.New("strictjson: data after the JSON object")

// NotObjectError is input that starts with a JSON value other than an
// object.
type NotObjectError struct {
	// Kind is the kind of the value found.
	Kind Kind
}

func (e *NotObjectError) Error() string {
	return "strictjson: the value is " + e.Kind.String() + ", not an object"
}

// SyntaxError is input that is not valid JSON where the object is read.
type SyntaxError struct {
	// Err is the decoder's error: a *json.SyntaxError, or io.EOF or
	// io.ErrUnexpectedEOF when the input ends early.
	Err error
}

// Error is the decoder's message unchanged.
func (e *SyntaxError) Error() string { return e.Err.Error() }

func (e *SyntaxError) Unwrap() error { return e.Err }

// Members reads data as exactly one JSON object and returns its top-level
// members in order, duplicates included. White space around the object is
// allowed.
//
// The error is a *NotObjectError, a *SyntaxError or ErrTrailingData. With
// the last two, Members also returns the members read whole before the
// problem, so that a caller which reports a duplicate name as soon as it is
// read can still put that first.
func Members(data []byte) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, &SyntaxError{Err: err}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &NotObjectError{Kind: kindOfToken(tok)}
	}
	var out []Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out, &SyntaxError{Err: err}
		}
		// Inside an object the decoder yields only string names here.
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, &SyntaxError{Err: err}
		}
		out = append(out, Member{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return out, &SyntaxError{Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, ErrTrailingData
	}
	return out, nil
}

// Duplicates returns the indexes of the members whose name an earlier
// member already has, in order.
func Duplicates(members []Member) []int {
	var out []int
	seen := make(map[string]bool, len(members))
	for i, m := range members {
		if seen[m.Name] {
			out = append(out, i)
		}
		seen[m.Name] = true
	}
	return out
}
