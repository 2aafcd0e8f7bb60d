package custody

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/wait"
)

// DecryptAPI is the one KMS call the Flows endpoint makes.
type DecryptAPI interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

func decryptInput(keyARN string, block []byte) *kms.DecryptInput {
	// The key ARN, never an alias: an alias can be re-pointed.
	return &kms.DecryptInput{KeyId: aws.String(keyARN), CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256}
}

// ProveDecrypt encrypts a random 16-byte AES key to pub with RSA-OAEP-SHA256,
// as a WhatsApp client does with the key Meta returned, and checks that
// kms:Decrypt with keyARN recovers it. A nil random means crypto/rand.
func (m *Manager) ProveDecrypt(ctx context.Context, keyARN string, random io.Reader, pub *rsa.PublicKey) error {
	if random == nil {
		random = rand.Reader
	}
	if pub == nil || pub.N == nil {
		return &Error{Op: "Decrypt", Key: keyARN, Problem: "no public key to encrypt the proof to", Fix: "pass the key Meta returned"}
	}
	aesKey := make([]byte, 16)
	defer clear(aesKey)
	if _, err := io.ReadFull(random, aesKey); err != nil {
		return fmt.Errorf("custody: random source: %w", err)
	}
	block, err := rsa.EncryptOAEP(sha256.New(), random, pub, aesKey, nil)
	if err != nil {
		return fmt.Errorf("custody: encrypt the proof with RSA-OAEP-SHA256: %w", err)
	}
	out, err := call(ctx, m, "Decrypt", keyARN, func(ctx context.Context) (*kms.DecryptOutput, error) {
		return m.kms.Decrypt(ctx, decryptInput(keyARN, block))
	})
	if err != nil {
		return err
	}
	defer clear(out.Plaintext)
	if subtle.ConstantTimeCompare(out.Plaintext, aesKey) != 1 {
		return &Error{Op: "Decrypt", Key: keyARN, Problem: "a block encrypted to the public key did not decrypt to what was encrypted: the public key is not this KMS key's",
			Fix: "upload and store the KMS key's own public key (kms:GetPublicKey)"}
	}
	return nil
}

// Decrypter decrypts Flows blocks with kms:Decrypt for the endpoint. A
// throttled request is retried once after a short wait, if the caller's
// deadline leaves room for it: each wrong or failed try delays a user, and
// the WhatsApp client retries a 421 itself with a fresh encryption.
type Decrypter struct {
	kms   DecryptAPI
	wait  time.Duration
	sleep func(ctx context.Context, d time.Duration) error
	log   *slog.Logger
}

// DecrypterOptions tune a Decrypter; zero values take the defaults noted.
type DecrypterOptions struct {
	// RetryWait is the wait before the one retry of a throttled request (50ms).
	RetryWait time.Duration
	Sleep     func(ctx context.Context, d time.Duration) error
	Logger    *slog.Logger
}

// NewDecrypter returns a Decrypter over client, which needs only
// kms:Decrypt. Build the client without SDK retries, so that the one retry
// here is the only one.
func NewDecrypter(client DecryptAPI, opts DecrypterOptions) *Decrypter {
	if opts.RetryWait <= 0 {
		opts.RetryWait = 50 * time.Millisecond
	}
	if opts.Sleep == nil {
		opts.Sleep = wait.Sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Decrypter{kms: client, wait: opts.RetryWait, sleep: opts.Sleep, log: opts.Logger}
}

// Decrypt recovers what a WhatsApp client encrypted to keyARN's public key.
// A block that is not the key's is an *Error wrapping
// InvalidCiphertextException; a disabled or deleted key, a throttled
// request or any other failure is an *Error too, logged once (without the
// block). The plaintext is the caller's to clear.
func (d *Decrypter) Decrypt(ctx context.Context, keyARN string, block []byte) ([]byte, error) {
	out, err := d.kms.Decrypt(ctx, decryptInput(keyARN, block))
	if IsThrottled(err) {
		wait := jitter(d.wait)
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 4*wait {
			if d.sleep(ctx, wait) == nil {
				out, err = d.kms.Decrypt(ctx, decryptInput(keyARN, block))
			}
		}
	}
	if err != nil {
		e := wrap("Decrypt", keyARN, err, 0)
		if IsThrottled(err) {
			e.Throttled = 1
		}
		if c := code(err); c != codeInvalidCipher {
			d.log.Warn("custody: kms:Decrypt failed", "key_arn", keyARN, "code", c, "error", e.Error())
		}
		return nil, e
	}
	if out.EncryptionAlgorithm != "" && out.EncryptionAlgorithm != types.EncryptionAlgorithmSpecRsaesOaepSha256 {
		clear(out.Plaintext)
		return nil, &Error{Op: "Decrypt", Key: keyARN, Problem: fmt.Sprintf("answered with algorithm %s", out.EncryptionAlgorithm), Fix: "check the KMS endpoint"}
	}
	return out.Plaintext, nil
}
