package keypair

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// EncryptionContextKey names the secret a KMS-generated pair is for. IAM
// policies condition kms:GenerateDataKeyPair on
// kms:EncryptionContext:flowkey-secret-arn.
const EncryptionContextKey = "flowkey-secret-arn"

// Generation methods recorded in the secret document.
const (
	MethodKMS    = "kms:GenerateDataKeyPair"
	MethodCrypto = "crypto/rsa"
)

// KMSAPI is the one KMS call flowkey makes.
type KMSAPI interface {
	GenerateDataKeyPair(ctx context.Context, in *kms.GenerateDataKeyPairInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyPairOutput, error)
}

// Generated is a new pair and how it was made.
type Generated struct {
	Pair     *Pair
	Method   string // MethodKMS or MethodCrypto
	KMSKeyID string // the KeyId KMS reported, for MethodKMS
}

// KMSGenerator asks KMS for the pair, so its generation is logged in CloudTrail.
type KMSGenerator struct {
	client KMSAPI
	keyID  string
}

// NewKMSGenerator returns a generator that asks KMS key keyID (key ID, key
// ARN, alias name or alias ARN) for each pair.
func NewKMSGenerator(client KMSAPI, keyID string) *KMSGenerator {
	return &KMSGenerator{client: client, keyID: keyID}
}

// Generate calls GenerateDataKeyPair(RSA_2048) with the encryption context
// {EncryptionContextKey: secretARN} and validates PublicKey and
// PrivateKeyPlaintext as strictly as a stored document: RSA-2048, e=65537,
// and the public key must be the private key's.
func (g *KMSGenerator) Generate(ctx context.Context, secretARN string) (*Generated, error) {
	const call = "kms GenerateDataKeyPair"
	if g == nil || g.client == nil {
		return nil, &Error{Field: call, Problem: "has no KMS client", Fix: "build the generator with NewKMSGenerator and a kms.Client"}
	}
	if g.keyID == "" {
		return nil, &Error{Field: call + " KeyId", Problem: "is empty",
			Fix: "configure the ID, ARN or alias of a SYMMETRIC_DEFAULT KMS key, or leave KMS out to generate with crypto/rsa"}
	}
	if secretARN == "" {
		return nil, &Error{Field: call + " EncryptionContext", Problem: "secret ARN is empty",
			Fix: "pass the ARN of the secret being rotated; IAM conditions on kms:EncryptionContext:" + EncryptionContextKey}
	}
	out, err := g.client.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{
		KeyId:             &g.keyID,
		KeyPairSpec:       types.DataKeyPairSpecRsa2048,
		EncryptionContext: map[string]string{EncryptionContextKey: secretARN},
	})
	if err != nil {
		return nil, &Error{Field: call,
			Problem: fmt.Sprintf("failed for KeyId %q: %v", g.keyID, err),
			Fix:     kmsFix(err, g.keyID, secretARN), Err: err}
	}
	if out == nil {
		return nil, &Error{Field: call, Problem: "returned no output", Fix: "retry; if it persists, check the KMS endpoint configuration"}
	}
	// The plaintext private key must not outlive this call in the SDK's
	// buffer, whatever happens below.
	defer clear(out.PrivateKeyPlaintext)

	if out.KeyPairSpec != "" && out.KeyPairSpec != types.DataKeyPairSpecRsa2048 {
		return nil, &Error{Field: call + " KeyPairSpec",
			Problem: fmt.Sprintf("is %q, requested %q", out.KeyPairSpec, types.DataKeyPairSpecRsa2048),
			Fix:     fixKMSOutput}
	}
	if len(out.PublicKey) == 0 {
		return nil, &Error{Field: call + " PublicKey", Problem: "is empty", Fix: fixKMSOutput}
	}
	if len(out.PrivateKeyPlaintext) == 0 {
		return nil, &Error{Field: call + " PrivateKeyPlaintext", Problem: "is empty",
			Fix: "KMS omits it only for a Recipient (attestation), which flowkey never sends; " + fixKMSOutput}
	}
	pair, err := FromPKCS8(call+" PrivateKeyPlaintext", out.PrivateKeyPlaintext)
	if err != nil {
		return nil, kmsOutputError(err)
	}
	pub, err := ParsePublicDER(call+" PublicKey", out.PublicKey)
	if err != nil {
		return nil, kmsOutputError(err)
	}
	if !pub.Equal(pair.Public()) {
		return nil, &Error{Field: call + " PublicKey",
			Problem: "does not match PrivateKeyPlaintext (public key fingerprint " + FingerprintOf(out.PublicKey).Short() +
				", private key's " + pair.Fingerprint().Short() + ")",
			Fix: fixKMSOutput}
	}
	keyID := g.keyID
	if out.KeyId != nil && *out.KeyId != "" {
		// KMS reports the key ARN even when asked by alias: record that.
		keyID = *out.KeyId
	}
	return &Generated{Pair: pair, Method: MethodKMS, KMSKeyID: keyID}, nil
}

const fixKMSOutput = "the request asked for RSA_2048; check that the KMS endpoint is AWS KMS or a faithful emulator, then retry"

// kmsOutputError keeps the parser's diagnosis but replaces its fix, which is
// written for operators importing keys: nobody can regenerate a KMS answer by hand.
func kmsOutputError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Field: e.Field, Problem: e.Problem, Fix: fixKMSOutput, Err: e.Err}
	}
	return err
}

// kmsFix turns the KMS error code into the one thing to check.
func kmsFix(err error, keyID, secretARN string) string {
	permission := fmt.Sprintf("allow kms:GenerateDataKeyPair on %s for the function's role with encryption context %s=%s "+
		"(condition key kms:EncryptionContext:%s) in the key policy or IAM policy", keyID, EncryptionContextKey, secretARN, EncryptionContextKey)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "the call ran out of time; raise the function timeout or check network access to KMS (VPC endpoint or NAT)"
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return "check network access to the KMS endpoint and the region; then " + permission
	}
	switch apiErr.ErrorCode() {
	case "AccessDeniedException":
		return permission
	case "NotFoundException", "InvalidArnException":
		return "check that KMS key " + keyID + " exists in this account and region"
	case "DisabledException", "KMSInvalidStateException":
		return "enable KMS key " + keyID + " (it is disabled, pending deletion or pending import)"
	case "InvalidKeyUsageException", "UnsupportedOperationException":
		return "use a KMS key with key spec SYMMETRIC_DEFAULT and key usage ENCRYPT_DECRYPT; GenerateDataKeyPair cannot use asymmetric or HMAC keys"
	case "DependencyTimeoutException", "KMSInternalException", "KeyUnavailableException", "ThrottlingException":
		return "retry later; KMS was temporarily unable to serve the request"
	default:
		return "check that KMS key " + keyID + " has key spec SYMMETRIC_DEFAULT and is enabled, then " + permission
	}
}

// LocalGenerator uses crypto/rsa when no KMS key is configured.
type LocalGenerator struct{}

// Generate makes the pair in process. secretARN is unused: there is no
// encryption context without KMS.
func (LocalGenerator) Generate(ctx context.Context, secretARN string) (*Generated, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Field: "crypto/rsa GenerateKey", Problem: "not started: " + err.Error(), Fix: "raise the function timeout", Err: err}
	}
	pair, err := Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Generated{Pair: pair, Method: MethodCrypto}, nil
}
