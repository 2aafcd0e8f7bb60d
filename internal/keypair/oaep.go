package keypair

import (
	"crypto/rsa"
	"crypto/sha256"
)

// DecryptOAEP recovers what a WhatsApp client encrypted to this pair's public
// key: RSA-OAEP with SHA-256 for both the hash and MGF1 and an empty label.
//
// A failure is always rsa.ErrDecryption and nothing more: an error that told
// a padding failure from a length failure would be an oracle for whoever
// sends the ciphertext.
func (p *Pair) DecryptOAEP(ciphertext []byte) ([]byte, error) {
	if p == nil || p.private == nil {
		return nil, rsa.ErrDecryption
	}
	// The random argument is ignored by crypto/rsa (blinding is internal).
	out, err := rsa.DecryptOAEP(sha256.New(), nil, p.private, ciphertext, nil)
	if err != nil {
		return nil, rsa.ErrDecryption
	}
	return out, nil
}
