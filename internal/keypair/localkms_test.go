package keypair

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

// localKMSBinary is set once by TestMain before any test runs.
var localKMSBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keypair-local-kms-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FATAL: temp dir for local-kms:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	localKMSBinary, err = buildLocalKMS(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FATAL:", err)
		return 1
	}
	return m.Run()
}

// buildLocalKMS builds the local-kms tool pinned in go.mod, from the module
// root so the module's versions apply.
func buildLocalKMS(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the flowkey module")
	}
	bin := filepath.Join(dir, "local-kms")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nsmithuk/local-kms")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build github.com/nsmithuk/local-kms: %w\n%s", err, out)
	}
	return bin, nil
}

// startLocalKMS runs local-kms on a free port with its own data folder and
// returns a real SDK client for it. The process dies with the test.
func startLocalKMS(t *testing.T) *kms.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()

	dataDir := t.TempDir()
	logs := &logbuf.Buffer{}
	cmd := exec.Command(localKMSBinary)
	cmd.Env = append(os.Environ(),
		"PORT="+port,
		"KMS_REGION=us-east-1",
		"KMS_ACCOUNT_ID=111122223333",
		"KMS_DATA_PATH="+dataDir,
		"KMS_SEED_PATH="+filepath.Join(dataDir, "no-seed.yaml"),
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start local-kms: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local-kms did not accept connections on %s within 20s: %v\n%s", addr, err, logs.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("local-kms exited before it listened: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}

	return kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCALKMS", "local-kms-secret", ""),
	})
}

// capturingKMS passes calls to the real client and keeps the output, so the
// test can check what Generate did with it.
type capturingKMS struct {
	KMSAPI
	out *kms.GenerateDataKeyPairOutput
}

func (c *capturingKMS) GenerateDataKeyPair(ctx context.Context, in *kms.GenerateDataKeyPairInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyPairOutput, error) {
	out, err := c.KMSAPI.GenerateDataKeyPair(ctx, in, optFns...)
	c.out = out
	return out, err
}

func TestKMSGeneratorAgainstLocalKMS(t *testing.T) {
	client := startLocalKMS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	created, err := client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:  types.KeySpecSymmetricDefault,
		KeyUsage: types.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID, keyARN := aws.ToString(created.KeyMetadata.KeyId), aws.ToString(created.KeyMetadata.Arn)
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/flowkey-test"), TargetKeyId: &keyID}); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}

	for name, requested := range map[string]string{"key id": keyID, "key ARN": keyARN, "alias": "alias/flowkey-test"} {
		t.Run(name, func(t *testing.T) {
			capture := &capturingKMS{KMSAPI: client}
			g, err := NewKMSGenerator(capture, requested).Generate(ctx, testSecretARN)
			if err != nil {
				t.Fatal(err)
			}
			// local-kms, like KMS, reports the key ARN whatever the caller named.
			if g.Method != MethodKMS || g.KMSKeyID != keyARN {
				t.Errorf("Method, KMSKeyID = %q, %q; want %q, %q", g.Method, g.KMSKeyID, MethodKMS, keyARN)
			}
			if capture.out.KeyPairSpec != types.DataKeyPairSpecRsa2048 {
				t.Errorf("local-kms reported KeyPairSpec %q", capture.out.KeyPairSpec)
			}
			if !bytes.Equal(capture.out.PrivateKeyPlaintext, make([]byte, len(capture.out.PrivateKeyPlaintext))) {
				t.Error("PrivateKeyPlaintext was not zeroed")
			}
			if err := g.Pair.ProveDecrypt(nil, g.Pair.Public()); err != nil {
				t.Fatal(err)
			}
			pub, _, err := ParsePublicPEM("public", g.Pair.PublicPEM())
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Pair.ProveDecrypt(nil, pub); err != nil {
				t.Fatal(err)
			}

			// The encryption context really reached KMS: the encrypted copy of
			// the private key opens with it and only with it.
			dec, err := client.Decrypt(ctx, &kms.DecryptInput{
				CiphertextBlob:    capture.out.PrivateKeyCiphertextBlob,
				EncryptionContext: map[string]string{EncryptionContextKey: testSecretARN},
			})
			if err != nil {
				t.Fatalf("Decrypt with the encryption context: %v", err)
			}
			back, err := FromPKCS8("decrypted", dec.Plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if back.Fingerprint() != g.Pair.Fingerprint() {
				t.Error("ciphertext blob holds another key")
			}
			_, err = client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: capture.out.PrivateKeyCiphertextBlob})
			var invalid *types.InvalidCiphertextException
			if !errors.As(err, &invalid) {
				t.Errorf("Decrypt without the encryption context: err = %v, want InvalidCiphertextException", err)
			}
		})
	}

	t.Run("unknown key", func(t *testing.T) {
		const missing = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"
		_, err := NewKMSGenerator(client, missing).Generate(ctx, testSecretARN)
		e := asError(t, err)
		var nf *types.NotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("err = %v, want a wrapped NotFoundException", err)
		}
		if !strings.Contains(e.Problem, missing) || !strings.Contains(e.Fix, "exists in this account and region") {
			t.Errorf("error = %q", err)
		}
	})

	t.Run("asymmetric key", func(t *testing.T) {
		signing, err := client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		_, err = NewKMSGenerator(client, aws.ToString(signing.KeyMetadata.KeyId)).Generate(ctx, testSecretARN)
		e := asError(t, err)
		var iu *types.InvalidKeyUsageException
		if !errors.As(err, &iu) {
			t.Fatalf("err = %v, want a wrapped InvalidKeyUsageException", err)
		}
		if !strings.Contains(e.Fix, "SYMMETRIC_DEFAULT") {
			t.Errorf("Fix = %q", e.Fix)
		}
	})
}
