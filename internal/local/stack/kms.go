package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
)

// The functions reach KMS through the stack's KMS proxy
// (internal/local/kmsproxy) and sign with their own access key IDs, so the
// proxy counts and faults the rotator's calls apart from the endpoint's.
const (
	RotatorAccessKeyID  = "local-rotator"
	EndpointAccessKeyID = "local-endpoint"
)

// The roles the functions stand for, as infra/ names them
// (<stack>-rotator-<region>, <stack>-endpoint-<region>): the custody keys'
// policies name them, and the proxy's lockout check knows the rotator by
// its role.
const (
	RotatorRoleARN  = "arn:aws:iam::111122223333:role/flowkey-rotator-us-east-1"
	EndpointRoleARN = "arn:aws:iam::111122223333:role/flowkey-endpoint-us-east-1"
)

// Rotator environment for KMS custody (internal/config's names): the
// rotator's role for the keys' policies, and the roles that may decrypt.
const (
	envCustodyRotatorRole  = "CUSTODY_KEY_ROTATOR_ROLE_ARN"
	envCustodyDecryptRoles = "CUSTODY_KEY_DECRYPT_ROLE_ARNS"
)

// rotatorIAMActions are the KMS actions infra/'s rotator policy allows,
// for the proxy's lockout safety check (conditions are not modelled).
var rotatorIAMActions = []string{
	"kms:GenerateDataKeyPair", "kms:CreateKey", "kms:TagResource", "kms:GetPublicKey", "kms:Decrypt",
	"kms:DescribeKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CreateAlias",
	"kms:ListAliases", "kms:ListKeys", "kms:ListResourceTags",
}

// LocalKMS is local-kms running as a child process, the way the stack
// runs it: on a free loopback port, with a data folder of its own.
type LocalKMS struct {
	// URL is its endpoint, e.g. http://127.0.0.1:4599.
	URL string

	binary string
	port   int
	env    []string
	out    io.Writer
	proc   *process
	procs  []*process // every run, restarts included
}

// StartLocalKMS runs binary (see BuildLocalKMS) with its data in dataDir
// and returns once it accepts connections. Its output goes to out,
// prefixed "[local-kms] ".
func StartLocalKMS(ctx context.Context, binary, dataDir string, out io.Writer) (*LocalKMS, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if out == nil {
		out = io.Discard
	}
	k := &LocalKMS{
		URL: "http://127.0.0.1:" + strconv.Itoa(port), binary: binary, port: port, out: out,
		env: []string{"PORT=" + strconv.Itoa(port), "KMS_REGION=" + Region, "KMS_ACCOUNT_ID=" + AccountID,
			"KMS_DATA_PATH=" + dataDir, "KMS_SEED_PATH=" + filepath.Join(dataDir, "no-seed.yaml")},
	}
	if err := k.Start(ctx); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// Start starts local-kms again after Stop, on the same port and data.
func (k *LocalKMS) Start(ctx context.Context) error {
	p, err := startProcess("local-kms", k.out, k.env, k.binary)
	if err != nil {
		return err
	}
	k.proc = p
	k.procs = append(k.procs, p)
	return waitListening(ctx, p, "127.0.0.1:"+strconv.Itoa(k.port))
}

// Stop stops local-kms, so that KMS calls fail as when KMS is unreachable.
func (k *LocalKMS) Stop() {
	if k != nil {
		k.proc.stop(5 * time.Second)
	}
}

// OutputErr reports output of local-kms that did not reach the writer
// (see Stack.OutputErr).
func (k *LocalKMS) OutputErr() error {
	var errs []error
	for _, p := range k.procs {
		errs = append(errs, p.outputErr())
	}
	return errors.Join(errs...)
}

// BuildLocalKMS builds the local-kms pinned in go.mod into dir.
func BuildLocalKMS(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "local-kms")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/nsmithuk/local-kms")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build github.com/nsmithuk/local-kms: %w\n%s", err, out)
	}
	return bin, nil
}

// startKMSProxy puts the fault-injecting proxy in front of local-kms.
func (s *Stack) startKMSProxy() error {
	p, err := kmsproxy.New(kmsproxy.Options{
		Target: s.KMSURL, AccountID: AccountID, Region: Region,
		Principals: map[string]kmsproxy.Principal{
			RotatorAccessKeyID:  {ARN: RotatorRoleARN, IAMActions: rotatorIAMActions},
			EndpointAccessKeyID: {ARN: EndpointRoleARN, IAMActions: []string{"kms:Decrypt"}},
		},
	})
	if err != nil {
		return err
	}
	s.KMSProxy = p
	s.KMSProxyURL, err = s.serve(p)
	return err
}
