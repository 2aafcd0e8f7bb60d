package kmsproxy_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// localKMSBinary is built once by TestMain and only read afterwards.
var localKMSBinary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kmsproxy-local-kms-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir for local-kms:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if localKMSBinary, err = stack.BuildLocalKMS(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, "these tests run local-kms:", err)
		return 1
	}
	return m.Run()
}

// Callers of the tests, as the stack names the functions'.
const (
	rotator  = stack.RotatorAccessKeyID
	endpoint = stack.EndpointAccessKeyID
)

// startLocalKMS runs local-kms as the stack does, with its own data.
func startLocalKMS(t *testing.T) *stack.LocalKMS {
	t.Helper()
	logs := &logbuf.Buffer{}
	k, err := stack.StartLocalKMS(context.Background(), localKMSBinary, t.TempDir(), logs)
	if err != nil {
		t.Fatalf("start local-kms: %v", err)
	}
	t.Cleanup(func() {
		k.Stop()
		if t.Failed() {
			t.Logf("local-kms output:\n%s", logs.String())
		}
	})
	return k
}

// client is a real SDK client for url, signing as accessKey. Retries keep
// the SDK's standard policy (3 attempts, throttling retried) without its
// backoff, so tests that throttle do not wait.
func client(url, accessKey string) *kms.Client {
	return kms.New(kms.Options{
		Region: stack.Region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, "local", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	})
}

// proxied is local-kms behind a proxy, with clients for both.
type proxied struct {
	kms   *stack.LocalKMS
	proxy *kmsproxy.Proxy
	url   string
	// direct reaches local-kms itself, as the stack's own client does.
	direct *kms.Client
}

func startProxied(t *testing.T) *proxied {
	t.Helper()
	k := startLocalKMS(t)
	p, err := kmsproxy.New(kmsproxy.Options{
		Target: k.URL, AccountID: stack.AccountID, Region: stack.Region,
		Principals: map[string]kmsproxy.Principal{
			rotator:  {ARN: stack.RotatorRoleARN, IAMActions: []string{"kms:CreateKey", "kms:Decrypt", "kms:GetPublicKey"}},
			endpoint: {ARN: stack.EndpointRoleARN, IAMActions: []string{"kms:Decrypt"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &proxied{kms: k, proxy: p, url: serve(t, p), direct: client(k.URL, "local")}
}

// serve runs p until the test ends and returns its URL.
func serve(t *testing.T, p *kmsproxy.Proxy) string {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// as is a client of the proxy signing as caller.
func (p *proxied) as(caller string) *kms.Client { return client(p.url, caller) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rsaKey creates an RSA key of spec and usage and returns its ARN.
func rsaKey(t *testing.T, c *kms.Client, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	out, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		t.Fatalf("CreateKey %s %s: %v", spec, usage, err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// publicKey is the key's public half from GetPublicKey.
func publicKey(t *testing.T, c *kms.Client, keyID string) *rsa.PublicKey {
	t.Helper()
	out, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("GetPublicKey: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatalf("GetPublicKey's PublicKey is not DER SubjectPublicKeyInfo: %v", err)
	}
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("GetPublicKey's PublicKey is a %T, want RSA", pub)
	}
	return rpub
}

// decrypt asks KMS to decrypt block with key under RSAES_OAEP_SHA_256.
func decrypt(ctx context.Context, c *kms.Client, keyID string, block []byte) ([]byte, error) {
	out, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(keyID), CiphertextBlob: block, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
	if err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// errorCode is an API error's code ("" for none): ThrottlingException and
// AccessDeniedException have no type of their own in the KMS SDK.
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// encryptOAEP is RSA-OAEP (RFC 8017 §7.1.1) with separate hashes for the
// label and for MGF1, so a test can make what a client with the wrong
// MGF1 would send (Java's OAEPWithSHA-256AndMGF1Padding defaults MGF1 to
// SHA-1); crypto/rsa uses one hash for both.
func encryptOAEP(t *testing.T, pub *rsa.PublicKey, h, mgf hash.Hash, msg, label []byte) []byte {
	t.Helper()
	k := pub.Size()
	hLen := h.Size()
	h.Reset()
	h.Write(label)
	lHash := h.Sum(nil)
	db := make([]byte, k-hLen-1)
	copy(db, lHash)
	db[len(db)-len(msg)-1] = 1
	copy(db[len(db)-len(msg):], msg)
	seed := make([]byte, hLen)
	rand.Read(seed)
	xor(db, mgf1(mgf, seed, len(db)))
	xor(seed, mgf1(mgf, db, hLen))
	em := append(append([]byte{0}, seed...), db...)
	c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, k))
}

func mgf1(h hash.Hash, seed []byte, n int) []byte {
	var out []byte
	for i := uint32(0); len(out) < n; i++ {
		h.Reset()
		h.Write(seed)
		h.Write([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		out = h.Sum(out)
	}
	return out[:n]
}

func xor(dst, mask []byte) {
	for i := range dst {
		dst[i] ^= mask[i]
	}
}
