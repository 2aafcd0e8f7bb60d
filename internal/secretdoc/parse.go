package secretdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/strictjson"
)

// JSON field names, one list per object. Parse matches them exactly: the
// standard decoder's case-insensitive matching would accept "Waba_ID".
var (
	documentFields = []string{"schema_version", "config", "key"}
	configFields   = []string{"phone_number_ids", "waba_id", "include_phone_number_ids", "exclude_phone_number_ids", "access_token_secret_id", "graph_api_version", "key_custody", "app_secret_id"}
	keyFields      = []string{"custody", "kms_key_arn", "private_key_pem", "public_key_pem", "fingerprint_sha256", "created_at", "generated_by", "kms_key_id"}
)

// fieldNameRE is the shape of a name worth repeating in an error. Anything
// else is described, not quoted, since it could be pasted key material.
var fieldNameRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

const fixExample = `see the format in the secretdoc package documentation, e.g. {"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`

// Parse decodes and validates a document strictly: unknown fields, an unknown
// schema_version, invalid configuration, or key material that is not a
// matching RSA-2048/e=65537 pair with the right fingerprint are errors.
// A document without "key" is valid (the first rotation creates the key);
// "key": null is not. The private key is PKCS#8 only.
// Errors wrap *Error (or *keypair.Error) so callers can errors.As them.
//
// Several problems are reported at once, joined with errors.Join.
func Parse(data []byte) (*Document, error) {
	top, err := checkStructure(data)
	if err != nil {
		return nil, err
	}
	if err := checkSchemaVersion(top["schema_version"]); err != nil {
		return nil, err
	}
	var errs []error
	errs = append(errs, unknownFields("", top, documentFields)...)
	if raw, ok := present(top, "config"); !ok {
		errs = append(errs, &Error{Field: "config", Problem: "is missing", Fix: fixExample})
	} else {
		errs = append(errs, checkObject("config", raw, configFields, checkConfigTypes)...)
	}
	if raw, ok := top["key"]; ok && string(raw) == "null" {
		// A hand edit that blanked the key, or a writer that meant to leave
		// it out: which one cannot be told, so neither is guessed.
		errs = append(errs, &Error{Field: "key", Problem: "is null", Fix: `remove "key" for a configuration-only version, or give the key object`})
	} else if raw, ok := present(top, "key"); ok {
		errs = append(errs, checkObject("key", raw, keyFields, checkKeyTypes)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// The checks above give exact paths; the standard decoder, held to the
	// same strictness, is what fills the struct Marshal writes back.
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, decodeError(err)
	}
	if err := doc.validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// checkStructure checks that data is one JSON object and nothing else, and
// returns its members.
func checkStructure(data []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &Error{Field: "document", Problem: "is empty", Fix: fixExample}
	}
	if trimmed[0] != '{' && !json.Valid(trimmed) {
		// Not JSON at all, most likely another secret: the Graph token.
		return nil, &Error{Field: "document", Problem: "is not JSON: it does not start with {",
			Fix: "check that SECRET_ID (or the secret_id of the command) names the rotated key secret, not the Graph token secret or any other; its value is a JSON object, " + fixExample}
	}
	return readObject(data, "document")
}

// readObject reads raw as one JSON object, rejecting duplicate names: with
// duplicates, which value wins is a decoder detail, not a decision. A
// duplicate is reported before a syntax error or trailing data found after
// it, as a reader that stops at the first problem would.
func readObject(raw []byte, path string) (map[string]json.RawMessage, error) {
	list, err := strictjson.Members(raw)
	if dups := strictjson.Duplicates(list); len(dups) > 0 {
		return nil, &Error{Field: join(path, list[dups[0]].Name), Problem: "appears more than once", Fix: "keep one"}
	}
	var notObject *strictjson.NotObjectError
	switch {
	case errors.Is(err, strictjson.ErrTrailingData):
		return nil, &Error{Field: path, Problem: "has data after the JSON object", Fix: "store exactly one JSON object"}
	case errors.As(err, &notObject):
		return nil, &Error{Field: path, Problem: "is " + kindName(notObject.Kind) + ", must be a JSON object", Fix: fixExample}
	case err != nil:
		return nil, syntaxError(path, err)
	}
	members := make(map[string]json.RawMessage, len(list))
	for _, m := range list {
		members[m.Name] = m.Value
	}
	return members, nil
}

func checkSchemaVersion(raw json.RawMessage) error {
	if raw == nil || string(raw) == "null" {
		return &Error{Field: "schema_version", Problem: "is missing", Fix: fmt.Sprintf(`add "schema_version": %d`, SchemaVersion)}
	}
	var n json.Number
	// json.Number also accepts a quoted number; the field is a JSON number.
	if kind := rawKind(raw); kind != "a number" || json.Unmarshal(raw, &n) != nil {
		return &Error{Field: "schema_version", Problem: "is " + kind + ", must be a whole number", Fix: fmt.Sprintf(`write "schema_version": %d`, SchemaVersion)}
	}
	v, err := strconv.Atoi(n.String())
	if err != nil {
		return &Error{Field: "schema_version", Problem: "is not a whole number", Fix: fmt.Sprintf(`write "schema_version": %d`, SchemaVersion)}
	}
	if v != SchemaVersion {
		return unsupportedVersion(v)
	}
	return nil
}

// checkObject checks that raw (not null) is an object with known members
// of the right JSON types.
func checkObject(path string, raw json.RawMessage, known []string, types func(map[string]json.RawMessage) []error) []error {
	members, err := readObject(raw, path)
	if err != nil {
		return []error{err}
	}
	errs := unknownFields(path, members, known)
	return append(errs, types(members)...)
}

func checkConfigTypes(m map[string]json.RawMessage) []error {
	var errs []error
	for _, name := range []string{"waba_id", "access_token_secret_id", "graph_api_version", "key_custody", "app_secret_id"} {
		errs = append(errs, checkString("config."+name, m[name])...)
	}
	for _, name := range []string{"phone_number_ids", "include_phone_number_ids", "exclude_phone_number_ids"} {
		errs = append(errs, checkStringList("config."+name, m[name])...)
	}
	return errs
}

func checkKeyTypes(m map[string]json.RawMessage) []error {
	var errs []error
	for _, name := range []string{"custody", "kms_key_arn", "private_key_pem", "public_key_pem", "fingerprint_sha256", "generated_by", "kms_key_id"} {
		errs = append(errs, checkString("key."+name, m[name])...)
	}
	if raw, ok := present(m, "created_at"); ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			errs = append(errs, &Error{Field: "key.created_at", Problem: "is " + rawKind(raw) + ", must be a string", Fix: `write it like "2026-11-25T10:00:00Z"`})
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			errs = append(errs, &Error{Field: "key.created_at", Problem: "is not an RFC 3339 time", Fix: `write it like "2026-11-25T10:00:00Z"`})
		}
	}
	return errs
}

// checkString accepts a string or null (null reads as absent).
func checkString(path string, raw json.RawMessage) []error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return []error{&Error{Field: path, Problem: "is " + rawKind(raw) + ", must be a string", Fix: "quote the value"}}
	}
	return nil
}

func checkStringList(path string, raw json.RawMessage) []error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return []error{&Error{Field: path, Problem: "is " + rawKind(raw) + `, must be a list of strings`, Fix: `write it like ["106540352242922"]`}}
	}
	var errs []error
	for i, item := range items {
		var s string
		if json.Unmarshal(item, &s) != nil {
			errs = append(errs, &Error{Field: fmt.Sprintf("%s[%d]", path, i), Problem: "is " + rawKind(item) + ", must be a string",
				Fix: "quote the ID: Graph IDs exceed what JSON numbers hold exactly"})
		}
	}
	return errs
}

func unknownFields(path string, members map[string]json.RawMessage, known []string) []error {
	var names []string
	for name := range members {
		if !slices.Contains(known, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		field := path
		problem := "has an unknown field whose name is not lowercase snake_case (names are case-sensitive)"
		if fieldNameRE.MatchString(name) {
			field, problem = join(path, name), "is not a known field"
		}
		if field == "" {
			field = "document"
		}
		errs = append(errs, &Error{Field: field, Problem: problem, Fix: fmt.Sprintf("remove it; %s holds only %s", objectName(path), strings.Join(known, ", "))})
	}
	return errs
}

func present(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

func join(path, name string) string {
	if path == "" || path == "document" {
		if fieldNameRE.MatchString(name) {
			return name
		}
		return "document"
	}
	if fieldNameRE.MatchString(name) {
		return path + "." + name
	}
	return path
}

func objectName(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// syntaxError says where the JSON breaks and what kind of break it is,
// never which character: encoding/json's message quotes it, and for a
// value that is not this document at all (the Graph token secret read by
// mistake) that character is the secret's.
func syntaxError(path string, err error) error {
	fix := "store valid JSON"
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		what := "an unexpected character"
		switch msg := se.Error(); {
		case strings.Contains(msg, "in string literal"):
			what, fix = "a line break or other control character inside a string", `escape the line breaks inside PEM strings as \n`
		case strings.Contains(msg, "unexpected end"):
			what = "the end of the input"
		}
		return &Error{Field: path, Problem: fmt.Sprintf("is not valid JSON: %s at byte %d", what, se.Offset), Fix: fix}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Field: path, Problem: "is not valid JSON (it ends early)", Fix: fix}
	}
	return &Error{Field: path, Problem: "is not valid JSON", Fix: fix}
}

// decodeError maps a failure of the final strict decode, which the checks
// before it should have caught, without quoting any value.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &Error{Field: te.Field, Problem: "has the wrong JSON type", Fix: fixExample}
	}
	return &Error{Field: "document", Problem: "cannot be decoded", Fix: fixExample}
}

// kindName names a JSON value's type in this package's messages.
func kindName(k strictjson.Kind) string {
	switch k {
	case strictjson.None:
		return "empty"
	case strictjson.Array:
		return "a list"
	}
	return k.String()
}

func rawKind(raw json.RawMessage) string { return kindName(strictjson.KindOf(raw)) }
