package custody

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
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
	"github.com/flowkey/flowkey/internal/keypair"
)

// localKMSBinary is set once by TestMain before any test runs.
var localKMSBinary string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "custody-local-kms-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FATAL: temp dir for local-kms:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if localKMSBinary, err = buildLocalKMS(dir); err != nil {
		fmt.Fprintln(os.Stderr, "FATAL:", err)
		return 1
	}
	return m.Run()
}

// buildLocalKMS builds the local-kms tool pinned in go.mod, from the module
// root so the module's versions apply (as internal/keypair's tests do).
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
	cmd.Env = append(os.Environ(), "PORT="+port, "KMS_REGION=us-east-1", "KMS_ACCOUNT_ID=111122223333",
		"KMS_DATA_PATH="+dataDir, "KMS_SEED_PATH="+filepath.Join(dataDir, "no-seed.yaml"))
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
	return kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCALKMS", "local-kms-secret", "")})
}

// TestCustodyAgainstLocalKMS runs a custody key's whole life on local-kms:
// creation with tags, policy and alias, a repeated Ensure, a WhatsApp-style
// RSA-OAEP-SHA256 block decrypted by the endpoint's Decrypter, listing, and
// retirement; and what a crash between CreateKey and CreateAlias leaves.
func TestCustodyAgainstLocalKMS(t *testing.T) {
	client := startLocalKMS(t)
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := New(client, Options{RotatorRoleARN: rotatorRole, DecryptRoleARNs: []string{endpoint}, DeletionDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	recorded := ""
	req := func(token string) Request {
		return Request{SecretARN: testSecret, Token: token, Recorded: recorded, Record: func(context.Context) error { recorded = token; return nil }}
	}
	first, err := m.Ensure(c, req("v1"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keypair.ParsePublicDER("local-kms GetPublicKey", first.PublicDER)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Ensure(c, req("v1"))
	if err != nil || again.How != FoundByAlias || again.Key.ARN != first.Key.ARN {
		t.Fatalf("repeated Ensure = %+v, %v", again, err)
	}
	tags, err := client.ListResourceTags(c, &kms.ListResourceTagsInput{KeyId: aws.String(first.Key.ID)})
	if err != nil || len(tags.Tags) != 2 {
		t.Fatalf("tags = %+v, %v", tags, err)
	}

	aesKey := []byte("0123456789abcdef")
	block, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewDecrypter(client, DecrypterOptions{}).Decrypt(c, first.Key.ARN, block)
	if err != nil || !bytes.Equal(plain, aesKey) {
		t.Fatalf("Decrypt = %v", err)
	}
	if err := m.ProveDecrypt(c, first.Key.ARN, nil, pub); err != nil {
		t.Fatal(err)
	}

	// A crash right after CreateKey: the next attempt finds the key by its tags.
	crashing := &crashAfterCreateKey{KMSAPI: client}
	mc, err := New(crashing, Options{RotatorRoleARN: rotatorRole, DecryptRoleARNs: []string{endpoint}, DeletionDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.Ensure(c, req("v2")); !errors.Is(err, errCrashed) {
		t.Fatalf("Ensure with a crash = %v", err)
	}
	second, err := m.Ensure(c, req("v2"))
	if err != nil || second.How != FoundByTags || second.Key.ARN != crashing.created {
		t.Fatalf("after the crash: %+v, %v (created %s)", second, err, crashing.created)
	}

	listed, err := m.List(c, testSecret)
	if err != nil || len(listed) != 2 {
		t.Fatalf("List = %+v, %v", listed, err)
	}
	retired, err := m.Retire(c, testSecret, func(id string) bool { return id == second.Key.ID })
	if err != nil || len(retired) != 1 || retired[0].Key.ID != first.Key.ID || retired[0].DeletionDate.IsZero() {
		t.Fatalf("Retire = %+v, %v", retired, err)
	}
	k, err := m.Check(c, first.Key.ARN, testSecret)
	if u := asUnusable(t, err); k.State != types.KeyStatePendingDeletion || !strings.Contains(u.Problem, "pending deletion") {
		t.Errorf("retired key: %+v, %v", k, err)
	}
	if _, err := NewDecrypter(client, DecrypterOptions{}).Decrypt(c, first.Key.ARN, block); code(err) != codeInvalidState {
		t.Errorf("Decrypt with a key pending deletion: %v", err)
	}
	if again, err := m.Retire(c, testSecret, func(id string) bool { return id == second.Key.ID }); err != nil || again[0].Skipped != "already pending deletion" {
		t.Errorf("second Retire = %+v, %v", again, err)
	}
}

// TestLocalKMSDoesNotCheckKeyUsage: local-kms decrypts with a SIGN_VERIFY
// RSA key; flowkey's Check refuses it all the same.
func TestLocalKMSDoesNotCheckKeyUsage(t *testing.T) {
	client := startLocalKMS(t)
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := client.CreateKey(c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Check(c, aws.ToString(out.KeyMetadata.Arn), testSecret)
	if u := asUnusable(t, err); !strings.Contains(u.Problem, "KeyUsage SIGN_VERIFY") {
		t.Errorf("Check = %v", err)
	}
	pubOut, err := client.GetPublicKey(c, &kms.GetPublicKeyInput{KeyId: out.KeyMetadata.Arn})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(pubOut.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	block, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDecrypter(client, DecrypterOptions{}).Decrypt(c, aws.ToString(out.KeyMetadata.Arn), block); err != nil {
		t.Logf("local-kms now checks the key usage on Decrypt (%v): the caveat in platform-facts §4 is out of date", err)
	}
}

var errCrashed = errors.New("test: crashed after CreateKey")

// crashAfterCreateKey lets CreateKey reach local-kms, then fails as if the
// function had died before its next call.
type crashAfterCreateKey struct {
	KMSAPI
	created string
}

func (c *crashAfterCreateKey) CreateKey(ctx context.Context, in *kms.CreateKeyInput, optFns ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	out, err := c.KMSAPI.CreateKey(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	c.created = aws.ToString(out.KeyMetadata.Arn)
	return nil, errCrashed
}
