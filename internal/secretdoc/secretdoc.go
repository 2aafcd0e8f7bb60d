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
//	    "private_key_pem": "-----BEGIN PRIVATE KEY-----...",   // PKCS#8, unencrypted
//	    "public_key_pem": "-----BEGIN PUBLIC KEY-----...",     // PKIX
//	    "fingerprint_sha256": "<64 hex chars of SHA-256(PKIX DER)>",
//	    "created_at": "2026-11-25T10:00:00Z",
//	    "generated_by": "kms:GenerateDataKeyPair" | "crypto/rsa" | "imported",
//	    "kms_key_id": "arn:aws:kms:..."                // with kms:GenerateDataKeyPair
//	  }
//	}
package secretdoc

import (
	"log/slog"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
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

func (e *Error) Error() string { panic("TODO") }

// Parse decodes and validates a document strictly: unknown fields, an unknown
// schema_version, invalid configuration, or key material that is not a
// matching RSA-2048/e=65537 pair with the right fingerprint are errors.
// A document without "key" is valid (the first rotation creates the key).
// Errors wrap *Error (or *keypair.Error) so callers can errors.As them.
func Parse(data []byte) (*Document, error) { panic("TODO") }

// Validate checks configuration rules: exactly one of phone_number_ids and
// waba_id; IDs are non-empty decimal digits without duplicates; include and
// exclude lists only with waba_id; graph_api_version like "v24.0".
func (c Config) Validate() error { panic("TODO") }

// NewKey records a freshly generated pair.
func NewKey(g *keypair.Generated, now time.Time) *Key { panic("TODO") }

// Pair returns the validated key pair.
func (k *Key) Pair() *keypair.Pair { return k.pair }

// Marshal encodes the document (validating it first).
func (d *Document) Marshal() ([]byte, error) { panic("TODO") }

func (k *Key) String() string       { panic("TODO") }
func (k *Key) GoString() string     { return k.String() }
func (k *Key) LogValue() slog.Value { panic("TODO") }
func (d *Document) String() string  { panic("TODO") }
func (d *Document) GoString() string { return d.String() }
