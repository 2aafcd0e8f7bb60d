// Package keypair generates and validates the RSA-2048 key pairs that
// WhatsApp Flows uses to encrypt data-exchange requests.
//
// A Pair never prints its private half: String, GoString, LogValue and
// MarshalJSON show only the fingerprint, so a stray %v or slog attribute
// cannot leak key material.
package keypair

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
)

// Bits and PublicExponent are what Meta accepts for a business public key.
const (
	Bits           = 2048
	PublicExponent = 65537
)

// Fingerprint is the SHA-256 of a public key's PKIX (SubjectPublicKeyInfo) DER.
type Fingerprint [sha256.Size]byte

// FingerprintOf hashes PKIX DER.
func FingerprintOf(pkixDER []byte) Fingerprint { return sha256.Sum256(pkixDER) }

// String is lowercase hex, 64 characters: the form stored in the secret document.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Short is the first 16 hex characters, enough to tell keys apart in logs and tables.
func (f Fingerprint) Short() string { return f.String()[:16] }

// Pair is a validated RSA-2048, e=65537 key pair.
type Pair struct {
	private     *rsa.PrivateKey
	publicDER   []byte
	fingerprint Fingerprint
}

// Error says which input was wrong, what is wrong with it and how to fix it.
// It never carries key material.
type Error struct {
	Field   string // e.g. "private_key_pem", "kms GenerateDataKeyPair PublicKey"
	Problem string
	Fix     string
}

func (e *Error) Error() string { panic("TODO") }

// ParsePublicPEM parses a PKIX "PUBLIC KEY" PEM and checks it is RSA-2048, e=65537.
// It returns the key and its PKIX DER.
func ParsePublicPEM(field, pemText string) (*rsa.PublicKey, []byte, error) { panic("TODO") }

// ParsePublicDER parses PKIX DER and checks it is RSA-2048, e=65537.
func ParsePublicDER(field string, der []byte) (*rsa.PublicKey, error) { panic("TODO") }

// ParsePrivatePEM parses a PKCS#8 "PRIVATE KEY" PEM (and, for keys imported by
// hand, PKCS#1 "RSA PRIVATE KEY") into a validated Pair.
func ParsePrivatePEM(field, pemText string) (*Pair, error) { panic("TODO") }

// FromPKCS8 validates PKCS#8 DER (as KMS returns it) and builds a Pair.
func FromPKCS8(field string, der []byte) (*Pair, error) { panic("TODO") }

// FromPrivateKey validates key and builds a Pair.
func FromPrivateKey(field string, key *rsa.PrivateKey) (*Pair, error) { panic("TODO") }

// Generate makes a fresh pair with crypto/rsa.
func Generate(random io.Reader) (*Pair, error) { panic("TODO") }

// Public returns the public key.
func (p *Pair) Public() *rsa.PublicKey { return &p.private.PublicKey }

// PublicDER returns the PKIX DER of the public key.
func (p *Pair) PublicDER() []byte { return p.publicDER }

// Fingerprint returns the SHA-256 of PublicDER.
func (p *Pair) Fingerprint() Fingerprint { return p.fingerprint }

// PrivatePEM returns the private key as unencrypted PKCS#8 PEM ("PRIVATE KEY"),
// the form Meta's Node example and any PEM reader load.
func (p *Pair) PrivatePEM() string { panic("TODO") }

// PublicPEM returns the public key as PKIX PEM ("PUBLIC KEY"), the form Meta accepts.
func (p *Pair) PublicPEM() string { panic("TODO") }

// MatchesPublicDER reports whether der is this pair's public key, byte for byte.
func (p *Pair) MatchesPublicDER(der []byte) bool { panic("TODO") }

// ProveDecrypt encrypts a random 16-byte AES key to pub with RSA-OAEP-SHA256
// (SHA-256 for both hash and MGF1), as a WhatsApp client does, and checks that
// this pair's private key recovers it.
func (p *Pair) ProveDecrypt(random io.Reader, pub *rsa.PublicKey) error { panic("TODO") }

func (p *Pair) String() string                { return "keypair.Pair{fingerprint:" + p.fingerprint.Short() + "}" }
func (p *Pair) GoString() string              { return p.String() }
func (p *Pair) LogValue() slog.Value          { return slog.StringValue(p.fingerprint.Short()) }
func (p *Pair) MarshalJSON() ([]byte, error)  { return []byte(`"` + p.fingerprint.String() + `"`), nil }
