package secretsemu

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"
)

// testBinaries are built once by TestMain: the pinned RIE and the throwaway
// bootstrap in testdata/bootstrap.
var testBinaries struct {
	rie, bootstrap string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "secretsemu-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "secretsemu tests: making a temp dir:", err)
		os.Exit(1)
	}
	testBinaries.rie = filepath.Join(dir, "aws-lambda-rie")
	testBinaries.bootstrap = filepath.Join(dir, "bootstrap")
	builds := [][]string{
		{"build", "-o", testBinaries.rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"},
		{"build", "-o", testBinaries.bootstrap, "./testdata/bootstrap"},
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "secretsemu tests: go %s failed: %v\n%s\n", strings.Join(args, " "), err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// emu is an emulator behind httptest with a real SDK client.
type emu struct {
	srv    *Server
	url    string
	client *secretsmanager.Client
	clock  *clock
}

func newEmu(t *testing.T, opts Options) *emu {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return &emu{srv: srv, url: hs.URL, client: newClient(hs.URL), clock: c}
}

// newClient is how flowkey builds its client: BaseEndpoint and static
// credentials, nothing emulator-specific. Retries are off so that each
// test sees exactly one request per call.
func newClient(url string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		Retryer:      aws.NopRetryer{},
	})
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// token derives a valid ClientRequestToken (a UUID) from s.
func token(s string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(s)).String()
}

// wantAPIError checks err is the AWS error code with a message containing want.
func wantAPIError(t *testing.T, err error, code, want string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v (%T), want %s", err, err, code)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), want) {
		t.Fatalf("got %s %q, want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, want)
	}
}

// create makes a secret with a string value and returns its ARN and version id.
func (e *emu) create(t *testing.T, name, value string) (arn, versionID string) {
	t.Helper()
	out, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value), ClientRequestToken: aws.String(token(name + "-v1")),
	})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return aws.ToString(out.ARN), aws.ToString(out.VersionId)
}

func (e *emu) put(t *testing.T, id, tok, value string, stages ...string) {
	t.Helper()
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), ClientRequestToken: aws.String(tok), SecretString: aws.String(value)}
	if len(stages) > 0 {
		in.VersionStages = stages
	}
	if _, err := e.client.PutSecretValue(ctxT(t), in); err != nil {
		t.Fatalf("PutSecretValue %s: %v", tok, err)
	}
}

func (e *emu) stages(t *testing.T, id string) map[string][]string {
	t.Helper()
	out, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", id, err)
	}
	return out.VersionIdsToStages
}

func (e *emu) value(t *testing.T, id, stage string) string {
	t.Helper()
	out, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetSecretValue %s %s: %v", id, stage, err)
	}
	return aws.ToString(out.SecretString)
}
