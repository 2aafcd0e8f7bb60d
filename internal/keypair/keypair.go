// Package keypair generates and validates the RSA-2048 key pairs that
// WhatsApp Flows uses to encrypt data-exchange requests.
//
// A Pair never prints its private half: String, GoString, LogValue and
// MarshalJSON show only the fingerprint, so a stray %v or slog attribute
// cannot leak key material.
package keypair

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
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

// ParsePublicPEM parses a PKIX "PUBLIC KEY" PEM and checks it is RSA-2048, e=65537.
// It returns the key and its PKIX DER.
func ParsePublicPEM(field, pemText string) (*rsa.PublicKey, []byte, error) {
	block, err := decodeOne(field, pemText)
	if err != nil {
		return nil, nil, err
	}
	if block.Type != pemPublicPKIX {
		return nil, nil, wrongPublicType(field, block.Type)
	}
	if err := noHeaders(field, block); err != nil {
		return nil, nil, err
	}
	pub, err := ParsePublicDER(field, block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	// Re-encode so that the DER (and so the fingerprint) is canonical even if
	// a future parser accepts more encodings than today's strict one.
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, &Error{Field: field, Problem: "cannot be re-encoded as PKIX DER", Fix: fixGenerate, Err: err}
	}
	return pub, der, nil
}

// ParsePublicDER parses PKIX DER and checks it is RSA-2048, e=65537.
func ParsePublicDER(field string, der []byte) (*rsa.PublicKey, error) {
	if len(der) == 0 {
		return nil, &Error{Field: field, Problem: "is empty", Fix: fixPublicOf}
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		if _, err1 := x509.ParsePKCS1PublicKey(der); err1 == nil {
			return nil, &Error{Field: field,
				Problem: "is a PKCS#1 RSAPublicKey, expected PKIX SubjectPublicKeyInfo",
				Fix:     "convert it with `openssl rsa -RSAPublicKey_in -in public.pem -pubout`", Err: err}
		}
		return nil, &Error{Field: field, Problem: "is not a PKIX SubjectPublicKeyInfo (" + err.Error() + ")", Fix: fixPublicOf, Err: err}
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, &Error{Field: field, Problem: "is an " + keyTypeName(key) + " key, must be RSA-2048", Fix: fixGenerate}
	}
	if err := checkPublic(field, pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// ParsePrivatePEM parses a PKCS#8 "PRIVATE KEY" PEM (and, for keys imported by
// hand, PKCS#1 "RSA PRIVATE KEY") into a validated Pair.
func ParsePrivatePEM(field, pemText string) (*Pair, error) {
	block, err := decodeOne(field, pemText)
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case pemPrivatePKCS8:
		if err := noHeaders(field, block); err != nil {
			return nil, err
		}
		return FromPKCS8(field, block.Bytes)
	case pemPrivatePKCS1:
		// Legacy OpenSSL encryption lives in PEM headers of a PKCS#1 block.
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, &Error{Field: field, Problem: "is an encrypted PEM (Proc-Type ENCRYPTED)", Fix: fixEncrypted}
		}
		if err := noHeaders(field, block); err != nil {
			return nil, err
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, &Error{Field: field, Problem: "is not a valid PKCS#1 RSA private key (" + err.Error() + ")", Fix: fixGenerate, Err: err}
		}
		return FromPrivateKey(field, key)
	default:
		return nil, wrongPrivateType(field, block.Type)
	}
}

// FromPKCS8 validates PKCS#8 DER (as KMS returns it) and builds a Pair.
// PKCS#8 carries the modulus and exponent inside the private key, so
// rsa.PrivateKey.Validate is what proves the public half belongs to it.
func FromPKCS8(field string, der []byte) (*Pair, error) {
	if len(der) == 0 {
		return nil, &Error{Field: field, Problem: "is empty", Fix: fixGenerate}
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
			return nil, &Error{Field: field,
				Problem: "holds a PKCS#1 RSA private key where PKCS#8 is expected",
				Fix:     "convert it with `openssl pkcs8 -topk8 -nocrypt -in rsa.pem -out private.pem`", Err: err}
		}
		return nil, &Error{Field: field, Problem: "is not a valid PKCS#8 private key (" + err.Error() + ")", Fix: fixGenerate, Err: err}
	}
	// ParsePKCS8PrivateKey ignores bytes after the structure; a copy that
	// picked up extra bytes is damaged, so say so rather than guess.
	if rest, err := asn1.Unmarshal(der, new(asn1.RawValue)); err != nil || len(rest) != 0 {
		return nil, &Error{Field: field, Problem: "is not a valid PKCS#8 private key (trailing data after the DER structure)", Fix: fixGenerate}
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, &Error{Field: field, Problem: "is an " + keyTypeName(key) + " key, must be RSA-2048", Fix: fixGenerate}
	}
	return FromPrivateKey(field, priv)
}

// FromPrivateKey validates key and builds a Pair.
func FromPrivateKey(field string, key *rsa.PrivateKey) (*Pair, error) {
	if key == nil {
		return nil, &Error{Field: field, Problem: "is missing (nil RSA private key)", Fix: fixGenerate}
	}
	if err := checkPublic(field, &key.PublicKey); err != nil {
		return nil, err
	}
	if key.D == nil {
		return nil, &Error{Field: field, Problem: "has no private exponent", Fix: fixGenerate}
	}
	// KMS, OpenSSL and crypto/rsa all make two-prime keys; anything else was
	// built by hand and Go only does constant-time CRT for two primes.
	if n := len(key.Primes); n != 2 {
		return nil, &Error{Field: field, Problem: fmt.Sprintf("has %d prime factors, must have 2", n), Fix: fixGenerate}
	}
	if err := key.Validate(); err != nil {
		return nil, &Error{Field: field,
			Problem: "is not a consistent RSA private key (" + err.Error() + ")",
			Fix:     "the key is corrupt or its parts do not belong together; " + fixGenerate, Err: err}
	}
	key.Precompute()
	publicDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, &Error{Field: field, Problem: "public half cannot be encoded as PKIX DER", Fix: fixGenerate, Err: err}
	}
	privateDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, &Error{Field: field, Problem: "cannot be encoded as PKCS#8", Fix: fixGenerate, Err: err}
	}
	return &Pair{
		private:     key,
		publicDER:   publicDER,
		fingerprint: FingerprintOf(publicDER),
		privateDER:  privateDER,
	}, nil
}

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

// checkPublic enforces what Meta accepts. Sizes and exponents are public
// facts about a key, so they may appear in messages; the modulus never does.
func checkPublic(field string, pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil {
		return &Error{Field: field, Problem: "has no RSA modulus", Fix: fixGenerate}
	}
	if bits := pub.N.BitLen(); bits != Bits {
		return &Error{Field: field, Problem: fmt.Sprintf("is RSA-%d, must be RSA-%d", bits, Bits), Fix: fixGenerate}
	}
	if pub.E != PublicExponent {
		return &Error{Field: field, Problem: fmt.Sprintf("has public exponent %d, must be %d", pub.E, PublicExponent), Fix: fixGenerate}
	}
	return nil
}

// decodeOne accepts exactly one PEM block, optionally surrounded by
// whitespace. pem.Decode alone would skip text before the block and ignore
// what follows it, which hides pasting mistakes.
func decodeOne(field, text string) (*pem.Block, error) {
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return nil, &Error{Field: field, Problem: "is empty", Fix: "paste the whole PEM, from the -----BEGIN line to the -----END line"}
	}
	if !strings.HasPrefix(trimmed, "-----BEGIN ") {
		if strings.Contains(trimmed, "-----BEGIN ") {
			return nil, &Error{Field: field, Problem: "has text before the -----BEGIN line", Fix: "remove everything before the -----BEGIN line"}
		}
		return nil, &Error{Field: field, Problem: "is not PEM (no -----BEGIN line)", Fix: "paste the whole PEM, from the -----BEGIN line to the -----END line"}
	}
	block, rest := pem.Decode([]byte(trimmed))
	if block == nil {
		return nil, &Error{Field: field,
			Problem: "is not a well-formed PEM block (BEGIN/END lines do not match, the END line is missing or the body is not base64)",
			Fix:     "paste the whole PEM unchanged, with its line breaks (\\n in JSON)"}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		if n := bytes.Count(rest, []byte("-----BEGIN ")); n > 0 {
			return nil, &Error{Field: field, Problem: fmt.Sprintf("holds %d PEM blocks, expected exactly one", n+1),
				Fix: "keep only the one block this field is for"}
		}
		return nil, &Error{Field: field, Problem: "has trailing data after the -----END line", Fix: "remove everything after the -----END line"}
	}
	return block, nil
}

// noHeaders rejects PEM headers, which no format this package accepts uses.
// Only well-known header names are repeated: anything else in the input
// could be a fragment of the key.
func noHeaders(field string, block *pem.Block) error {
	if len(block.Headers) == 0 {
		return nil
	}
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Headers["DEK-Info"] != "" {
		return &Error{Field: field, Problem: "is an encrypted PEM", Fix: fixEncrypted}
	}
	var names []string
	for k := range block.Headers {
		if slices.Contains(knownHeaders, k) {
			names = append(names, k)
		} else {
			names = append(names, "(unrecognised)")
		}
	}
	slices.Sort(names)
	return &Error{Field: field, Problem: fmt.Sprintf("has PEM header lines %s, which PEM blocks of %s do not have", strings.Join(names, ", "), labelName(block.Type)),
		Fix: "remove the header lines between -----BEGIN and the base64 body"}
}

// knownHeaders are RFC 1421/7468 header names worth repeating.
var knownHeaders = []string{"Proc-Type", "DEK-Info", "Comment", "Content-Domain", "Originator-ID-Symmetric", "Recipient-ID-Symmetric", "Key-Info"}

// knownLabels are PEM types an operator is likely to paste. Other labels are
// described, not quoted: they are copied from the input.
var knownLabels = []string{
	pemPrivatePKCS8, pemPrivatePKCS1, pemPublicPKIX, "RSA PUBLIC KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY",
	"DSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "CERTIFICATE", "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST",
	"TRUSTED CERTIFICATE", "X509 CRL", "EC PARAMETERS", "PKCS7", "SSH2 PUBLIC KEY",
	"PGP PUBLIC KEY BLOCK", "PGP PRIVATE KEY BLOCK", "PGP MESSAGE", "PGP SIGNATURE",
}

func labelName(label string) string {
	if slices.Contains(knownLabels, label) {
		return "type " + strconv.Quote(label)
	}
	return fmt.Sprintf("an unrecognised type (%d characters)", len(label))
}

func wrongPublicType(field, found string) error {
	e := &Error{Field: field, Problem: fmt.Sprintf("is a PEM block of %s, expected %q", labelName(found), pemPublicPKIX), Fix: fixPublicOf}
	switch found {
	case "RSA PUBLIC KEY":
		e.Problem += " (PKCS#1)"
		e.Fix = "convert it with `openssl rsa -RSAPublicKey_in -in public.pem -pubout`"
	case "CERTIFICATE":
		e.Fix = "extract the public key with `openssl x509 -pubkey -noout -in cert.pem`"
	case pemPrivatePKCS8, pemPrivatePKCS1, "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		e.Problem += ": this is a private key in the public key field"
	}
	return e
}

func wrongPrivateType(field, found string) error {
	e := &Error{Field: field,
		Problem: fmt.Sprintf("is a PEM block of %s, expected %q (PKCS#8) or %q (PKCS#1)", labelName(found), pemPrivatePKCS8, pemPrivatePKCS1),
		Fix:     "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out private.pem`"}
	switch found {
	case "ENCRYPTED PRIVATE KEY":
		e.Problem = "is an encrypted PKCS#8 PEM (\"ENCRYPTED PRIVATE KEY\")"
		e.Fix = fixEncrypted
	case pemPublicPKIX, "RSA PUBLIC KEY", "CERTIFICATE":
		e.Problem += ": this is a public key or certificate in the private key field"
		e.Fix = "put the private key of the pair here"
	case "EC PRIVATE KEY":
		e.Problem += ": this is an EC key"
		e.Fix = fixGenerate
	case "OPENSSH PRIVATE KEY":
		e.Fix = "convert it with `ssh-keygen -p -m PKCS8 -N '' -f key` (on a copy), or " + fixGenerate
	}
	return e
}

func keyTypeName(key any) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + curveName(k)
	case *ecdsa.PrivateKey:
		return "ECDSA " + curveName(&k.PublicKey)
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "ECDH " + fmt.Sprint(k.Curve())
	case *ecdh.PrivateKey:
		return "ECDH " + fmt.Sprint(k.Curve())
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	default:
		return fmt.Sprintf("unsupported (%T)", key)
	}
}

func curveName(k *ecdsa.PublicKey) string {
	if k.Curve == nil || k.Curve.Params() == nil {
		return "(unknown curve)"
	}
	return k.Curve.Params().Name
}
