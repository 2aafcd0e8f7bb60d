package keypair

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
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

func NewKMSGenerator(client KMSAPI, keyID string) *KMSGenerator {
	return &KMSGenerator{client: client, keyID: keyID}
}

// Generate calls GenerateDataKeyPair(RSA_2048) with the encryption context
// {EncryptionContextKey: secretARN} and validates PublicKey and
// PrivateKeyPlaintext as strictly as a stored document: RSA-2048, e=65537,
// and the public key must be the private key's.
func (g *KMSGenerator) Generate(ctx context.Context, secretARN string) (*Generated, error) {
	panic("TODO")
}

// LocalGenerator uses crypto/rsa when no KMS key is configured.
type LocalGenerator struct{}

func (LocalGenerator) Generate(ctx context.Context, secretARN string) (*Generated, error) {
	panic("TODO")
}
