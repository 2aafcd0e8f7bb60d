package graphsim

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// requiredBits is the only RSA modulus size Meta accepts for the business key.
const requiredBits = 2048

// Fingerprint is the lowercase hex SHA-256 of PKIX DER, the same form
// internal/keypair stores in the secret document, so state dumps can be
// compared with it directly.
func Fingerprint(pkixDER []byte) string {
	sum := sha256.Sum256(pkixDER)
	return hex.EncodeToString(sum[:])
}

// parsePublicKeyPEM applies Meta's rule for business_public_key: one PEM
// "PUBLIC KEY" (PKIX) block holding an RSA 2048-bit key. The problem text it
// returns never quotes the input, so it is safe for logs and responses.
func parsePublicKeyPEM(s string) (der []byte, problem string) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, "it is not PEM: expected a -----BEGIN PUBLIC KEY----- block"
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Sprintf("the PEM block is %q, expected \"PUBLIC KEY\" (PKIX SubjectPublicKeyInfo)", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, "there is data after the PEM block; send exactly one PUBLIC KEY block"
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "the PEM block does not hold a parseable PKIX public key"
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Sprintf("the key is %s, expected RSA", keyKind(pub))
	}
	if bits := rk.N.BitLen(); bits != requiredBits {
		return nil, fmt.Sprintf("the RSA key is %d bits, expected %d", bits, requiredBits)
	}
	return block.Bytes, ""
}

func keyKind(pub any) string {
	switch fmt.Sprintf("%T", pub) {
	case "*ecdsa.PublicKey":
		return "ECDSA"
	case "ed25519.PublicKey":
		return "Ed25519"
	case "*ecdh.PublicKey":
		return "ECDH"
	default:
		return fmt.Sprintf("%T", pub)
	}
}
