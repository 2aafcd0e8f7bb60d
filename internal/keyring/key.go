package keyring

import (
	"context"

	"github.com/flowkey/flowkey/internal/keypair"
)

// PrivateKey is one version's private-key operation: the only thing the
// ring needs from a key. A key held in the secret's document is a LocalKey;
// a key held in KMS (kms:Decrypt with RSAES_OAEP_SHA_256, issue 12) is
// another implementation beside it, chosen where a version is read.
type PrivateKey interface {
	// DecryptOAEP recovers the plaintext of an RSA-OAEP block made with
	// SHA-256 for the hash and MGF1 and an empty label. Any error counts
	// as "this key does not decrypt the block": the ring tries the next
	// key, and refreshes when none does.
	DecryptOAEP(ctx context.Context, block []byte) ([]byte, error)
}

// localKey decrypts with a private key parsed from the secret document.
type localKey struct{ pair *keypair.Pair }

// LocalKey is the PrivateKey of a pair held in memory.
func LocalKey(p *keypair.Pair) PrivateKey { return localKey{pair: p} }

func (k localKey) DecryptOAEP(_ context.Context, block []byte) ([]byte, error) {
	return k.pair.DecryptOAEP(block)
}

// String never shows the key, should a key end up in a format call.
func (k localKey) String() string { return "keyring.LocalKey(" + k.pair.Fingerprint().Short() + ")" }
