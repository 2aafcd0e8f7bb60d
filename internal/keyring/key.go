package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/flowkey/flowkey/internal/keypair"
)

// PrivateKey is one version's private-key operation: the only thing the
// ring needs from a key. A key held in the secret's document is a LocalKey;
// a key held in KMS is a KMSKey (kms:Decrypt with RSAES_OAEP_SHA_256),
// chosen where a version is read, by the document's key custody.
type PrivateKey interface {
	// DecryptOAEP recovers the plaintext of an RSA-OAEP block made with
	// SHA-256 for the hash and MGF1 and an empty label. An error counts as
	// "this key does not decrypt the block" unless it wraps ErrUnavailable
	// ("this key could not be asked"); either way the ring tries the next
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

// KMSDecrypter decrypts a block with the KMS key keyARN (a
// *custody.Decrypter): kms:Decrypt with RSAES_OAEP_SHA_256.
type KMSDecrypter interface {
	Decrypt(ctx context.Context, keyARN string, block []byte) ([]byte, error)
}

// kmsKey decrypts with a private key that never leaves KMS.
type kmsKey struct {
	kms    KMSDecrypter
	keyARN string
}

// KMSKey is the PrivateKey of a version whose private key is KMS key keyARN.
// A transient failure (throttling, KMS's own errors, no answer) wraps
// ErrUnavailable: the block may well be this key's. Any other refusal (a
// block for another key, a key disabled or pending deletion, as retired
// keys are) says this key will not decrypt it.
func KMSKey(d KMSDecrypter, keyARN string) PrivateKey { return kmsKey{kms: d, keyARN: keyARN} }

func (k kmsKey) DecryptOAEP(ctx context.Context, block []byte) ([]byte, error) {
	out, err := k.kms.Decrypt(ctx, k.keyARN, block)
	if err != nil && transient(err) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return out, err
}

// transient reports a KMS failure that another try could get past. By the
// error code, as KMS names it: the SDK gives a typed error only for the
// codes its model lists, and a proxy or emulator may send a generic one.
func transient(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return true // no answer from KMS at all
	}
	switch apiErr.ErrorCode() {
	case "ThrottlingException", "KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException":
		return true
	}
	return false
}

func (k kmsKey) String() string { return "keyring.KMSKey(" + k.keyARN + ")" }
