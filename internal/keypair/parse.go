package keypair

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

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

// ParsePrivatePEM parses an unencrypted PKCS#8 "PRIVATE KEY" PEM into a
// validated Pair. PKCS#1 ("RSA PRIVATE KEY") is refused with the command
// that converts it: PKCS#8 is the one format flowkey stores, the one Meta's
// Node example loads and the one KMS returns, so a document never holds
// two encodings of a private key.
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
		return nil, &Error{Field: field,
			Problem: fmt.Sprintf("is a PKCS#1 RSA private key (%q); the document holds PKCS#8 (%q)", pemPrivatePKCS1, pemPrivatePKCS8),
			Fix:     fixPKCS1}
	default:
		return nil, wrongPrivateType(field, block.Type)
	}
}

// fixPKCS1 converts a PKCS#1 RSA private key to what flowkey stores.
const fixPKCS1 = "convert it with `openssl pkcs8 -topk8 -nocrypt -in rsa.pem -out private.pem` and store private.pem"

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
				Fix:     fixPKCS1, Err: err}
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
