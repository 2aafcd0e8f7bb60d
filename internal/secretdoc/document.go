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
//	    "graph_api_version": "v24.0",                 // optional
//	    "key_custody": "secrets_manager" | "kms",     // optional; absent means "secrets_manager"
//	    "app_secret_id": "flowkey/app-secrets/acme"   // optional; a fleet tenant's own Meta app secret
//	  },
//	  "key": {                                        // absent (never null) in a config-only first version
//	    "private_key_pem": "<PEM>",                   // PKCS#8, unencrypted
//	    "public_key_pem": "-----BEGIN PUBLIC KEY-----...",     // PKIX
//	    "fingerprint_sha256": "<64 hex chars of SHA-256(PKIX DER)>",
//	    "created_at": "2026-11-25T10:00:00Z",
//	    "generated_by": "kms:GenerateDataKeyPair" | "crypto/rsa" | "imported",
//	    "kms_key_id": "arn:aws:kms:..."                // with kms:GenerateDataKeyPair
//	  }
//	}
//
// # Key custody
//
// config.key_custody says where the NEXT rotation keeps the private key:
// "secrets_manager" (the default, and the meaning of an absent value) puts
// the PKCS#8 PEM in the version, as above; "kms" creates an RSA_2048
// ENCRYPT_DECRYPT key in AWS KMS, whose private half never leaves KMS.
// Changing it is a configuration change; the key of each version says which
// custody that version's key is in. A KMS-held key has no private_key_pem
// (its presence is an error) and names the KMS key instead:
//
//	"key": {
//	  "custody": "kms",
//	  "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/...",
//	  "public_key_pem": "-----BEGIN PUBLIC KEY-----...",  // from kms:GetPublicKey
//	  "fingerprint_sha256": "<64 hex chars>",
//	  "created_at": "2026-11-25T10:00:00Z",
//	  "generated_by": "kms:CreateKey"
//	}
//
// Parse checks the ARN's form; that the key is in the secret's own account
// and region is checked where the secret's ARN is known (Key.CheckHome).
// Documents without these fields parse, and marshal, exactly as before.
package secretdoc

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
)

// SchemaVersion is the only schema this build reads and writes.
const SchemaVersion = 1

// MethodImported marks a key that an operator put in the first version by hand.
const MethodImported = "imported"

// MethodKMSCustody marks a key created in KMS (CustodyKMS) by the rotation.
const MethodKMSCustody = "kms:CreateKey"

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
	// KeyCustody is CustodySecretsManager, CustodyKMS, or "" (which means
	// CustodySecretsManager): where the next rotation keeps the private key.
	KeyCustody string `json:"key_custody,omitempty"`
	// AppSecretID names the secret holding the Meta app secret of a fleet
	// tenant whose app is not the fleet's: the Flows endpoint checks the
	// tenant's X-Hub-Signature-256 with it. The rotation never reads it.
	AppSecretID string `json:"app_secret_id,omitempty"`
}

// Key custodies: config.key_custody's values, and key.custody's.
const (
	// CustodySecretsManager keeps the private key in the version as PEM.
	CustodySecretsManager = "secrets_manager"
	// CustodyKMS keeps it in an AWS KMS key; the version names the key.
	CustodyKMS = "kms"
)

// Custody is the custody the next rotation uses: KeyCustody, with the
// absent value read as CustodySecretsManager.
func (c Config) Custody() string {
	if c.KeyCustody == "" {
		return CustodySecretsManager
	}
	return c.KeyCustody
}

// Key is the key material of one version. Its String and LogValue show only
// the fingerprint.
type Key struct {
	// Custody is "" for a key held here (PrivateKeyPEM), or CustodyKMS.
	Custody string `json:"custody,omitempty"`
	// KMSKeyARN is the KMS key that holds the private half (CustodyKMS only).
	KMSKeyARN string `json:"kms_key_arn,omitempty"`
	// PrivateKeyPEM is required for a key held here, and absent in KMS
	// custody. omitempty never drops it from a valid PEM-custody key.
	PrivateKeyPEM     string    `json:"private_key_pem,omitempty"`
	PublicKeyPEM      string    `json:"public_key_pem"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	CreatedAt         time.Time `json:"created_at"`
	GeneratedBy       string    `json:"generated_by"`
	// KMSKeyID is the GenerateDataKeyPair key of a PEM-custody key.
	KMSKeyID string `json:"kms_key_id,omitempty"`

	pair   *keypair.Pair  // set by Parse and NewKey for a key held here
	public *rsa.PublicKey // set by Parse, NewKey and NewKMSKey
	pubDER []byte         // PKIX DER of public
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
		public:            p.Public(),
		pubDER:            p.PublicDER(),
	}
}

// Pair returns the validated key pair of a key held here; nil for a key in
// KMS custody, whose private half is not in the document.
func (k *Key) Pair() *keypair.Pair { return k.pair }

// PublicKey returns the validated public key, whatever the custody; nil for
// a Key that neither Parse nor a constructor validated.
func (k *Key) PublicKey() *rsa.PublicKey { return k.public }

// PublicDER returns the PKIX DER of PublicKey (nil with it).
func (k *Key) PublicDER() []byte { return k.pubDER }

// InKMS reports whether the private key is held by KMS (KMSKeyARN).
func (k *Key) InKMS() bool { return k != nil && k.Custody == CustodyKMS }

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

func (k *Key) fingerprintShort() string {
	if k.pubDER != nil {
		return keypair.FingerprintOf(k.pubDER).Short()
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
	case keypair.MethodKMS, keypair.MethodCrypto, MethodImported, MethodKMSCustody:
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
	switch c.KeyCustody {
	case "":
	case CustodySecretsManager, CustodyKMS:
		parts = append(parts, "key_custody:"+c.KeyCustody)
	default:
		parts = append(parts, "key_custody:invalid")
	}
	return strings.Join(parts, " ")
}
