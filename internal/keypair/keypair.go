// Package keypair generates and validates the RSA-2048 key pairs that
// WhatsApp Flows uses to encrypt data-exchange requests.
//
// A Pair never prints its private half: String, GoString, LogValue and
// MarshalJSON show only the fingerprint, so a stray %v or slog attribute
// cannot leak key material.
package keypair

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"strings"
)

// Bits and PublicExponent are what Meta accepts for a business public key.
const (
	Bits           = 2048
	PublicExponent = 65537
)

// PEM block types this package reads and writes.
const (
	pemPrivatePKCS8 = "PRIVATE KEY"
	pemPrivatePKCS1 = "RSA PRIVATE KEY"
	pemPublicPKIX   = "PUBLIC KEY"
)

// Fixes shared by several errors. Each is a command an operator can run.
const (
	fixGenerate = "generate a new pair with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out private.pem` " +
		"(e=65537 is the default) or let the rotation generate one"
	fixEncrypted = "export it unencrypted with `openssl pkcs8 -topk8 -nocrypt` (the secret itself is encrypted by Secrets Manager)"
	fixPublicOf  = "derive the public key from the private key with `openssl pkey -in private.pem -pubout`"
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
	// privateDER is computed once so PrivatePEM cannot fail later.
	privateDER []byte
}

// Error says which input was wrong, what is wrong with it and how to fix it.
// It never carries key material.
type Error struct {
	Field   string // e.g. "private_key_pem", "kms GenerateDataKeyPair PublicKey"
	Problem string
	Fix     string
	// Err is the underlying cause (an SDK or crypto/x509 error) for errors.Is
	// and errors.As. Its text is already part of Problem where it helps.
	Err error
}

// Error renders "<field>: <problem>; fix: <fix>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Generate makes a fresh pair with crypto/rsa.
//
// Since Go 1.26 rsa.GenerateKey ignores random and always uses a secure source
// unless GODEBUG=cryptocustomrand=1; random is still passed for that case.
// A nil random means crypto/rand.Reader.
func Generate(random io.Reader) (*Pair, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := rsa.GenerateKey(random, Bits)
	if err != nil {
		return nil, &Error{Field: "crypto/rsa GenerateKey", Problem: "failed (" + err.Error() + ")",
			Fix: "check the random source; crypto/rand.Reader is the right one", Err: err}
	}
	return FromPrivateKey("crypto/rsa GenerateKey", key)
}

// Public returns the public key.
func (p *Pair) Public() *rsa.PublicKey { return &p.private.PublicKey }

// PublicDER returns the PKIX DER of the public key.
func (p *Pair) PublicDER() []byte { return p.publicDER }

// Fingerprint returns the SHA-256 of PublicDER.
func (p *Pair) Fingerprint() Fingerprint { return p.fingerprint }

// PrivatePEM returns the private key as unencrypted PKCS#8 PEM ("PRIVATE KEY"),
// the form Meta's Node example and any PEM reader load.
func (p *Pair) PrivatePEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPrivatePKCS8, Bytes: p.privateDER}))
}

// PublicPEM returns the public key as PKIX PEM ("PUBLIC KEY"), the form Meta accepts.
func (p *Pair) PublicPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: pemPublicPKIX, Bytes: p.publicDER}))
}

// MatchesPublicDER reports whether der is this pair's public key, byte for byte.
func (p *Pair) MatchesPublicDER(der []byte) bool { return bytes.Equal(p.publicDER, der) }

// ProveDecrypt encrypts a random 16-byte AES key to pub with RSA-OAEP-SHA256
// (SHA-256 for both hash and MGF1), as a WhatsApp client does, and checks that
// this pair's private key recovers it.
// A nil random means crypto/rand.Reader.
func (p *Pair) ProveDecrypt(random io.Reader, pub *rsa.PublicKey) error {
	const field = "public key"
	if p == nil || p.private == nil {
		return &Error{Field: "key pair", Problem: "is missing", Fix: "build the pair with Generate, ParsePrivatePEM or FromPKCS8"}
	}
	if random == nil {
		random = rand.Reader
	}
	if pub == nil || pub.N == nil {
		return &Error{Field: field, Problem: "is missing", Fix: "pass the public key that clients encrypt to"}
	}
	aesKey := make([]byte, 16)
	defer clear(aesKey)
	if _, err := io.ReadFull(random, aesKey); err != nil {
		return &Error{Field: "random source", Problem: "failed (" + err.Error() + ")", Fix: "use crypto/rand.Reader", Err: err}
	}
	ciphertext, err := rsa.EncryptOAEP(sha256.New(), random, pub, aesKey, nil)
	if err != nil {
		return &Error{Field: field, Problem: "cannot encrypt with RSA-OAEP-SHA256 (" + err.Error() + ")", Fix: "use an RSA-2048 public key", Err: err}
	}
	plain, err := rsa.DecryptOAEP(sha256.New(), nil, p.private, ciphertext, nil)
	defer clear(plain)
	if err != nil || subtle.ConstantTimeCompare(plain, aesKey) != 1 {
		return &Error{Field: field,
			Problem: "does not belong to private key " + p.fingerprint.Short() + ": an RSA-OAEP-SHA256 round trip failed",
			Fix:     "upload and store the public key of the same pair; " + fixPublicOf, Err: err}
	}
	return nil
}

func (p *Pair) String() string               { return "keypair.Pair{fingerprint:" + p.fingerprint.Short() + "}" }
func (p *Pair) GoString() string             { return p.String() }
func (p *Pair) LogValue() slog.Value         { return slog.StringValue(p.fingerprint.Short()) }
func (p *Pair) MarshalJSON() ([]byte, error) { return []byte(`"` + p.fingerprint.String() + `"`), nil }
