package custody

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Check describes the key keyARN and checks that it can serve secretARN:
// in the secret's account and region, RSA_2048, ENCRYPT_DECRYPT (local-kms
// does not check the usage on Decrypt, so flowkey does) and enabled. The
// Key comes back with the error when DescribeKey answered, so that a
// status can show its state.
func (m *Manager) Check(ctx context.Context, keyARN, secretARN string) (*Key, error) {
	k, err := m.describe(ctx, keyARN)
	if err != nil {
		return nil, err
	}
	return k, checkUsable(k, secretARN, keyARN)
}

func (m *Manager) describe(ctx context.Context, keyID string) (*Key, error) {
	out, err := call(ctx, m, "DescribeKey", keyID, func(ctx context.Context) (*kms.DescribeKeyOutput, error) {
		return m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	})
	if err != nil {
		return nil, err
	}
	k := keyOf(out.KeyMetadata)
	if k == nil || k.ARN == "" {
		return nil, &Error{Op: "DescribeKey", Key: keyID, Problem: "returned no key metadata", Fix: "check that the KMS endpoint is AWS KMS or a faithful emulator"}
	}
	return k, nil
}

// UnusableError is a key that exists but cannot serve the secret: another
// account or region, another spec or usage, or a state other than Enabled.
type UnusableError struct {
	Key     *Key
	Name    string // how the key was named (ARN or alias)
	Problem string
	Fix     string
}

func (e *UnusableError) Error() string {
	return fmt.Sprintf("kms key %s: %s; fix: %s", e.Name, e.Problem, e.Fix)
}

// checkUsable applies Check's rules to a described key.
func checkUsable(k *Key, secretARN, name string) error {
	bad := func(problem, fix string) error { return &UnusableError{Key: k, Name: name, Problem: problem, Fix: fix} }
	home, ok := secretdoc.ParseKMSKeyARN(k.ARN)
	secret := secretARNRE.FindStringSubmatch(secretARN)
	switch {
	case !ok:
		return bad(fmt.Sprintf("KMS reports ARN %q, which is not a key ARN", k.ARN), "check that the KMS endpoint is AWS KMS or a faithful emulator")
	case secret == nil:
		return bad("cannot be checked against the secret, which is not named by its ARN", "name the secret by its ARN")
	case home.Partition != secret[1] || home.Region != secret[2] || home.Account != secret[3]:
		return bad(fmt.Sprintf("is in account %s, region %s, but the secret is in account %s, region %s", home.Account, home.Region, secret[3], secret[2]),
			"flowkey uses only custody keys of the secret's own account and region; rotate, which creates one there")
	case k.Spec != types.KeySpecRsa2048 || k.Usage != types.KeyUsageTypeEncryptDecrypt:
		return bad(fmt.Sprintf("is KeySpec %s, KeyUsage %s; flowkey needs RSA_2048, ENCRYPT_DECRYPT", k.Spec, k.Usage),
			"flowkey uses only the keys its rotation creates: rotate, which creates one")
	}
	switch k.State {
	case types.KeyStateEnabled:
		return nil
	case types.KeyStateDisabled:
		return bad("is disabled, so it cannot decrypt (disabled behind flowkey's back?)",
			"enable it with `aws kms enable-key --key-id "+k.ARN+"` while a labelled version names it, or rotate away from it")
	case types.KeyStatePendingDeletion:
		when := ""
		if !k.DeletionDate.IsZero() {
			when = " on " + k.DeletionDate.UTC().Format(time.RFC3339)
		}
		return bad("is pending deletion"+when+", so it cannot decrypt",
			"cancel the deletion with `aws kms cancel-key-deletion --key-id "+k.ARN+"`, then `aws kms enable-key`, while a labelled version names it")
	}
	return bad(fmt.Sprintf("is in state %s, so it cannot decrypt", k.State), "wait for the key to become Enabled, or rotate away from it")
}
