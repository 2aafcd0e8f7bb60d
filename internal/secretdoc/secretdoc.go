// Package secretdoc defines the JSON document that each version of the
// rotated secret holds: configuration carried from version to version, and
// the key material of that version.
//
//	{
//	  "schema_version": 1,
//	  "config": {
//	    "phone_number_ids": ["106540352242922"],      // or "waba_id"
//	    "waba_id": "",
//	    "include_phone_number_ids": [],              // only with waba_id
//	    "exclude_phone_number_ids": [],              // only with waba_id
//	    "access_token_secret_id": "flowkey/graph-token",  // optional
//	    "graph_api_version": "v24.0"                  // optional
//	  },
//	  "key": {                                        // absent in a config-only first version
//	    "private_key_pem": "<PEM>",                   // PKCS#8, unencrypted
//	    "public_key_pem": "-----BEGIN PUBLIC KEY-----...",     // PKIX
//	    "fingerprint_sha256": "<64 hex chars of SHA-256(PKIX DER)>",
//	    "created_at": "2026-11-25T10:00:00Z",
//	    "generated_by": "kms:GenerateDataKeyPair" | "crypto/rsa" | "imported",
//	    "kms_key_id": "arn:aws:kms:..."                // with kms:GenerateDataKeyPair
//	  }
//	}
package secretdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/strictjson"
)

// SchemaVersion is the only schema this build reads and writes.
const SchemaVersion = 1

// MethodImported marks a key that an operator put in the first version by hand.
const MethodImported = "imported"

// Document is one parsed and validated version of the secret.
type Document struct {
	SchemaVersion int    `json:"schema_version"`
	Config        Config `json:"config"`
	Key           *Key   `json:"key,omitempty"`
}

// Config is carried unchanged from AWSCURRENT to each new version.
type Config struct {
	PhoneNumberIDs        []string `json:"phone_number_ids,omitempty"`
	WABAID                string   `json:"waba_id,omitempty"`
	IncludePhoneNumberIDs []string `json:"include_phone_number_ids,omitempty"`
	ExcludePhoneNumberIDs []string `json:"exclude_phone_number_ids,omitempty"`
	AccessTokenSecretID   string   `json:"access_token_secret_id,omitempty"`
	GraphAPIVersion       string   `json:"graph_api_version,omitempty"`
}

// Key is the key material of one version. Its String and LogValue show only
// the fingerprint.
type Key struct {
	PrivateKeyPEM     string    `json:"private_key_pem"`
	PublicKeyPEM      string    `json:"public_key_pem"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	CreatedAt         time.Time `json:"created_at"`
	GeneratedBy       string    `json:"generated_by"`
	KMSKeyID          string    `json:"kms_key_id,omitempty"`

	pair *keypair.Pair // set by Parse and NewKey
}

// Error names the field, what is wrong with its value and how to fix it. It
// never quotes key material.
type Error struct {
	Field   string // JSON path, e.g. "config.phone_number_ids[2]", "key.public_key_pem"
	Problem string
	Fix     string
}

// Error renders "<field>: <problem>; fix: <fix>".
func (e *Error) Error() string {
	if e.Fix == "" {
		return e.Field + ": " + e.Problem
	}
	return e.Field + ": " + e.Problem + "; fix: " + e.Fix
}

// JSON field names, one list per object. Parse matches them exactly: the
// standard decoder's case-insensitive matching would accept "Waba_ID".
var (
	documentFields = []string{"schema_version", "config", "key"}
	configFields   = []string{"phone_number_ids", "waba_id", "include_phone_number_ids", "exclude_phone_number_ids", "access_token_secret_id", "graph_api_version"}
	keyFields      = []string{"private_key_pem", "public_key_pem", "fingerprint_sha256", "created_at", "generated_by", "kms_key_id"}
)

// maxIDLen bounds Graph object IDs as internal/graph does; Meta's are 15-17 digits.
const maxIDLen = 32

// versionRE is the Graph API version form internal/graph accepts.
var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// fingerprintRE is the stored fingerprint form: keypair.Fingerprint.String.
var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// fieldNameRE is the shape of a name worth repeating in an error. Anything
// else is described, not quoted, since it could be pasted key material.
var fieldNameRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

const fixExample = `see the format in the secretdoc package documentation, e.g. {"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`

// Parse decodes and validates a document strictly: unknown fields, an unknown
// schema_version, invalid configuration, or key material that is not a
// matching RSA-2048/e=65537 pair with the right fingerprint are errors.
// A document without "key" is valid (the first rotation creates the key).
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
	if raw, ok := present(top, "key"); ok {
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

// Validate checks configuration rules: exactly one of phone_number_ids and
// waba_id; IDs are non-empty decimal digits without duplicates; include and
// exclude lists only with waba_id; graph_api_version like "v24.0".
//
// An empty list counts as absent, as it does when the document is written
// (omitempty). The include and exclude lists must not share an ID.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, problem, fix string) {
		errs = append(errs, &Error{Field: field, Problem: problem, Fix: fix})
	}

	switch {
	case len(c.PhoneNumberIDs) == 0 && c.WABAID == "":
		bad("config.phone_number_ids", "has no phone number IDs and config.waba_id is not set",
			"list at least one phone number ID in config.phone_number_ids, or set config.waba_id to rotate every number of the WhatsApp Business Account")
	case len(c.PhoneNumberIDs) > 0 && c.WABAID != "":
		bad("config.waba_id", "is set together with config.phone_number_ids; exactly one of them may be set",
			"keep config.phone_number_ids for a fixed list of numbers, or config.waba_id to list the account's numbers at each rotation")
	}
	errs = append(errs, checkIDList("config.phone_number_ids", c.PhoneNumberIDs)...)
	if c.WABAID != "" {
		if err := checkID("config.waba_id", c.WABAID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.WABAID == "" {
		for _, l := range []struct {
			field string
			ids   []string
		}{{"config.include_phone_number_ids", c.IncludePhoneNumberIDs}, {"config.exclude_phone_number_ids", c.ExcludePhoneNumberIDs}} {
			if len(l.ids) > 0 {
				bad(l.field, "is only allowed with config.waba_id", "remove it and list the numbers in config.phone_number_ids, or set config.waba_id instead of config.phone_number_ids")
			}
		}
	}
	errs = append(errs, checkIDList("config.include_phone_number_ids", c.IncludePhoneNumberIDs)...)
	errs = append(errs, checkIDList("config.exclude_phone_number_ids", c.ExcludePhoneNumberIDs)...)
	for i, id := range c.ExcludePhoneNumberIDs {
		if j := slices.Index(c.IncludePhoneNumberIDs, id); j >= 0 && isDigits(id) {
			bad(fmt.Sprintf("config.exclude_phone_number_ids[%d]", i),
				fmt.Sprintf("%q is also in config.include_phone_number_ids[%d]", id, j),
				"remove it from one of the two lists")
		}
	}
	if c.AccessTokenSecretID != "" {
		if err := checkSecretID(c.AccessTokenSecretID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.GraphAPIVersion != "" && !versionRE.MatchString(c.GraphAPIVersion) {
		// Not quoted: free text could be anything an operator pasted.
		bad("config.graph_api_version", fmt.Sprintf("is not a Graph API version of the form v<major>.<minor> (%d characters)", len(c.GraphAPIVersion)),
			`use a live version like "v24.0", or remove it to use the function's default`)
	}
	return errors.Join(errs...)
}

// NewKey records a freshly generated pair. CreatedAt is now in UTC, to the
// second. A nil g gives an empty Key that Marshal refuses, so a generation
// bug cannot store a version without key material.
func NewKey(g *keypair.Generated, now time.Time) *Key {
	if g == nil || g.Pair == nil {
		return &Key{}
	}
	p := g.Pair
	return &Key{
		PrivateKeyPEM:     p.PrivatePEM(),
		PublicKeyPEM:      p.PublicPEM(),
		FingerprintSHA256: p.Fingerprint().String(),
		CreatedAt:         now.UTC().Truncate(time.Second),
		GeneratedBy:       g.Method,
		KMSKeyID:          g.KMSKeyID,
		pair:              p,
	}
}

// Pair returns the validated key pair.
func (k *Key) Pair() *keypair.Pair { return k.pair }

// Marshal encodes the document (validating it first).
func (d *Document) Marshal() ([]byte, error) {
	if d == nil {
		return nil, &Error{Field: "document", Problem: "is nil", Fix: "build a Document before marshalling it"}
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	out, err := json.Marshal(d)
	if err != nil {
		// Unreachable for these field types; the message holds no values.
		return nil, &Error{Field: "document", Problem: "cannot be encoded as JSON (" + err.Error() + ")", Fix: "report this as a bug"}
	}
	return out, nil
}

// String shows the fingerprint, how and when the key was made; never PEM.
func (k *Key) String() string {
	if k == nil {
		return "secretdoc.Key(nil)"
	}
	return fmt.Sprintf("secretdoc.Key{fingerprint:%s generated_by:%s created_at:%s}",
		k.fingerprintShort(), k.method(), k.CreatedAt.UTC().Format(time.RFC3339))
}

func (k *Key) GoString() string { return k.String() }

// Format makes every fmt verb print String, also for a Key value (whose
// method set lacks the pointer-receiver String): %v of a dereferenced Key
// would otherwise print the PEM fields.
func (k Key) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue logs the same facts as String.
func (k *Key) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("fingerprint", k.fingerprintShort()),
		slog.String("generated_by", k.method()),
		slog.String("created_at", k.CreatedAt.UTC().Format(time.RFC3339)),
	)
}

// String shows the schema, a configuration summary and the key fingerprint; never PEM.
func (d *Document) String() string {
	if d == nil {
		return "secretdoc.Document(nil)"
	}
	key := "none"
	if d.Key != nil {
		key = d.Key.fingerprintShort()
	}
	return fmt.Sprintf("secretdoc.Document{schema_version:%d config:{%s} key:%s}", d.SchemaVersion, d.Config.summary(), key)
}

func (d *Document) GoString() string { return d.String() }

// LogValue logs the same facts as String, so a *Document passed to slog
// is never encoded as JSON with its PEM fields.
func (d *Document) LogValue() slog.Value {
	if d == nil {
		return slog.StringValue("none")
	}
	attrs := []slog.Attr{slog.Int("schema_version", d.SchemaVersion), slog.String("config", d.Config.summary())}
	if d.Key != nil {
		attrs = append(attrs, slog.Any("key", d.Key))
	}
	return slog.GroupValue(attrs...)
}

// validate is the whole-document check shared by Parse and Marshal.
func (d *Document) validate() error {
	if d.SchemaVersion != SchemaVersion {
		if d.SchemaVersion == 0 {
			return &Error{Field: "schema_version", Problem: "is missing", Fix: fmt.Sprintf("set it to %d", SchemaVersion)}
		}
		return unsupportedVersion(d.SchemaVersion)
	}
	var errs []error
	if err := d.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d.Key != nil {
		pair, err := d.Key.validate()
		if err != nil {
			errs = append(errs, err)
		} else {
			d.Key.pair = pair
		}
	}
	return errors.Join(errs...)
}

// validate checks the key material and returns its pair. Every field is
// checked that can be on its own, so one run names every problem.
func (k *Key) validate() (*keypair.Pair, error) {
	var errs []error
	missing := func(field, fix string) {
		errs = append(errs, &Error{Field: "key." + field, Problem: "is missing", Fix: fix})
	}
	if k.PrivateKeyPEM == "" {
		missing("private_key_pem", "put the unencrypted PKCS#8 PEM of the private key here, or remove \"key\" to let the first rotation generate one")
	}
	if k.PublicKeyPEM == "" {
		missing("public_key_pem", "derive it with `openssl pkey -in private.pem -pubout`")
	}
	if k.FingerprintSHA256 == "" {
		missing("fingerprint_sha256", "set it to the SHA-256 of the public key's DER: `openssl pkey -pubin -in public.pem -outform DER | sha256sum`")
	}
	if k.CreatedAt.IsZero() {
		missing("created_at", `set it to when the key was made, in RFC 3339, e.g. "2026-11-25T10:00:00Z"`)
	}
	if k.GeneratedBy == "" {
		missing("generated_by", fmt.Sprintf("set it to %q for a key you made yourself", MethodImported))
	}

	var pair *keypair.Pair
	if k.PrivateKeyPEM != "" {
		p, err := keypair.ParsePrivatePEM("key.private_key_pem", k.PrivateKeyPEM)
		if err != nil {
			errs = append(errs, err)
		} else {
			pair = p
		}
	}
	var pubDER []byte
	if k.PublicKeyPEM != "" {
		_, der, err := keypair.ParsePublicPEM("key.public_key_pem", k.PublicKeyPEM)
		if err != nil {
			errs = append(errs, err)
		} else {
			pubDER = der
		}
	}
	if pair != nil && pubDER != nil && !pair.MatchesPublicDER(pubDER) {
		errs = append(errs, &Error{Field: "key.public_key_pem", Problem: "does not match key.private_key_pem",
			Fix: fmt.Sprintf("store the public key of the same pair (fingerprint %s, not %s): `openssl pkey -in private.pem -pubout`",
				pair.Fingerprint().Short(), keypair.FingerprintOf(pubDER).Short())})
	}

	if k.FingerprintSHA256 != "" {
		switch {
		case !fingerprintRE.MatchString(k.FingerprintSHA256):
			// Not quoted: a misplaced PEM would be echoed otherwise.
			errs = append(errs, &Error{Field: "key.fingerprint_sha256",
				Problem: fmt.Sprintf("is not 64 lowercase hex characters (%d characters)", len(k.FingerprintSHA256)),
				Fix:     "set it to the lowercase hex SHA-256 of the public key's DER: `openssl pkey -pubin -in public.pem -outform DER | sha256sum`"})
		case pubDER != nil:
			if want := keypair.FingerprintOf(pubDER).String(); k.FingerprintSHA256 != want {
				errs = append(errs, &Error{Field: "key.fingerprint_sha256",
					Problem: fmt.Sprintf("is %s..., but the SHA-256 of key.public_key_pem is %s", k.FingerprintSHA256[:16], want),
					Fix:     "set it to " + want})
			}
		}
	}

	switch k.GeneratedBy {
	case "", keypair.MethodKMS, keypair.MethodCrypto, MethodImported:
	default:
		errs = append(errs, &Error{Field: "key.generated_by",
			Problem: fmt.Sprintf("is not one of %q, %q, %q", keypair.MethodKMS, keypair.MethodCrypto, MethodImported),
			Fix:     fmt.Sprintf("use %q for a key you made yourself", MethodImported)})
	}
	switch {
	case k.GeneratedBy == keypair.MethodKMS && k.KMSKeyID == "":
		errs = append(errs, &Error{Field: "key.kms_key_id", Problem: "is missing; key.generated_by is " + strconv.Quote(keypair.MethodKMS),
			Fix: "set it to the ARN of the KMS key that generated the pair"})
	case k.GeneratedBy != keypair.MethodKMS && k.KMSKeyID != "":
		errs = append(errs, &Error{Field: "key.kms_key_id", Problem: fmt.Sprintf("is set, but only a key with key.generated_by %q has one", keypair.MethodKMS),
			Fix: "remove it"})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pair, nil
}

func (k *Key) fingerprintShort() string {
	if k.pair != nil {
		return k.pair.Fingerprint().Short()
	}
	if fingerprintRE.MatchString(k.FingerprintSHA256) {
		return k.FingerprintSHA256[:16]
	}
	return "invalid"
}

// method is GeneratedBy if it is a known method: an unvalidated Key's
// free text is not printed.
func (k *Key) method() string {
	switch k.GeneratedBy {
	case keypair.MethodKMS, keypair.MethodCrypto, MethodImported:
		return k.GeneratedBy
	case "":
		return "none"
	}
	return "invalid"
}

func (c Config) summary() string {
	var parts []string
	if len(c.PhoneNumberIDs) > 0 {
		parts = append(parts, fmt.Sprintf("phone_number_ids:%d", len(c.PhoneNumberIDs)))
	}
	if c.WABAID != "" {
		waba := "invalid"
		if checkID("", c.WABAID) == nil {
			waba = c.WABAID
		}
		parts = append(parts, "waba_id:"+waba)
	}
	if len(c.IncludePhoneNumberIDs) > 0 {
		parts = append(parts, fmt.Sprintf("include:%d", len(c.IncludePhoneNumberIDs)))
	}
	if len(c.ExcludePhoneNumberIDs) > 0 {
		parts = append(parts, fmt.Sprintf("exclude:%d", len(c.ExcludePhoneNumberIDs)))
	}
	return strings.Join(parts, " ")
}

func checkIDList(field string, ids []string) []error {
	var errs []error
	for i, id := range ids {
		path := fmt.Sprintf("%s[%d]", field, i)
		if err := checkID(path, id); err != nil {
			errs = append(errs, err)
			continue
		}
		if j := slices.Index(ids[:i], id); j >= 0 {
			errs = append(errs, &Error{Field: path, Problem: fmt.Sprintf("%q duplicates %s[%d]", id, field, j), Fix: "remove the duplicate"})
		}
	}
	return errs
}

// checkID shows the ID up to its first bad character: IDs are not secret,
// but whatever follows a non-digit may not be an ID at all.
func checkID(field, id string) error {
	const fix = "use the numeric ID as WhatsApp Manager shows it, e.g. 106540352242922"
	if id == "" {
		return &Error{Field: field, Problem: "is empty", Fix: fix}
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		_, size := utf8.DecodeRuneInString(id[i:])
		shown := id[:i+size]
		if i > 20 {
			shown = id[:20]
		}
		return &Error{Field: field, Problem: fmt.Sprintf("%q is not decimal digits only (character %d is not a digit)", shown+"...", utf8.RuneCountInString(id[:i])+1), Fix: fix}
	}
	if len(id) > maxIDLen {
		return &Error{Field: field, Problem: fmt.Sprintf("has %d digits, more than any Graph ID (%d)", len(id), maxIDLen), Fix: fix}
	}
	return nil
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// checkSecretID accepts a Secrets Manager secret name or ARN. It never
// quotes the value: a token pasted here by mistake must not reach the logs.
func checkSecretID(id string) error {
	const field = "config.access_token_secret_id"
	if strings.HasPrefix(id, "EAA") && len(id) > 100 {
		return &Error{Field: field, Problem: "looks like a Graph access token, not the ID of the secret that holds one",
			Fix: "store the token in its own secret and put that secret's name or ARN here; then revoke the exposed token"}
	}
	if len(id) > 2048 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r))
	}) {
		return &Error{Field: field, Problem: fmt.Sprintf("is not a Secrets Manager secret name or ARN (%d characters; allowed: letters, digits and /_+=.@-:)", len(id)),
			Fix: "give the name or ARN of the secret that holds the Graph system user token"}
	}
	return nil
}

func unsupportedVersion(v int) error {
	return &Error{Field: "schema_version", Problem: fmt.Sprintf("%d is not supported by this build (supports %d)", v, SchemaVersion),
		Fix: fmt.Sprintf("deploy a flowkey build that reads schema %d, or write the document in schema %d", v, SchemaVersion)}
}

// checkStructure checks that data is one JSON object and nothing else, and
// returns its members.
func checkStructure(data []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{Field: "document", Problem: "is empty", Fix: fixExample}
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
	for _, name := range []string{"waba_id", "access_token_secret_id", "graph_api_version"} {
		errs = append(errs, checkString("config."+name, m[name])...)
	}
	for _, name := range []string{"phone_number_ids", "include_phone_number_ids", "exclude_phone_number_ids"} {
		errs = append(errs, checkStringList("config."+name, m[name])...)
	}
	return errs
}

func checkKeyTypes(m map[string]json.RawMessage) []error {
	var errs []error
	for _, name := range []string{"private_key_pem", "public_key_pem", "fingerprint_sha256", "generated_by", "kms_key_id"} {
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

func syntaxError(path string, err error) error {
	fix := "store valid JSON"
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if strings.Contains(se.Error(), "in string literal") {
			fix = `escape the line breaks inside PEM strings as \n`
		}
		return &Error{Field: path, Problem: fmt.Sprintf("is not valid JSON at byte %d (%s)", se.Offset, se.Error()), Fix: fix}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
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
