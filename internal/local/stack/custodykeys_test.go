package stack_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// custodyKey is a KMS key tagged for a secret, as local-kms holds it.
type custodyKey struct {
	ARN   string
	Token string // its flowkey:rotation-token tag
	State kmstypes.KeyState
	Spec  kmstypes.KeySpec
	Usage kmstypes.KeyUsageType
}

// custodyKeys lists every key of local-kms tagged for the secret, by the
// tags flowkey puts on its keys (not by alias: a stranded key may have
// none). The stack's own client reads local-kms directly, uncounted.
func (e *env) custodyKeys(t testing.TB) []custodyKey {
	t.Helper()
	ctx := context.Background()
	var out []custodyKey
	p := kms.NewListKeysPaginator(e.KMS, &kms.ListKeysInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		for _, k := range page.Keys {
			tags := map[string]string{}
			tp := kms.NewListResourceTagsPaginator(e.KMS, &kms.ListResourceTagsInput{KeyId: k.KeyArn})
			for tp.HasMorePages() {
				tpage, err := tp.NextPage(ctx)
				if err != nil {
					t.Fatalf("ListResourceTags: %v", err)
				}
				for _, tag := range tpage.Tags {
					tags[aws.ToString(tag.TagKey)] = aws.ToString(tag.TagValue)
				}
			}
			if tags[custody.TagSecretARN] != e.arn {
				continue
			}
			d, err := e.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyArn})
			if err != nil {
				t.Fatalf("DescribeKey: %v", err)
			}
			m := d.KeyMetadata
			out = append(out, custodyKey{ARN: aws.ToString(m.Arn), Token: tags[custody.TagRotationToken], State: m.KeyState, Spec: m.KeySpec, Usage: m.KeyUsage})
		}
	}
	return out
}

// labelledKeys maps the KMS key ARN each version with a staging label
// names to its labels.
func (e *env) labelledKeys(t testing.TB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	desc, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for v, labels := range desc.VersionIdsToStages {
		if len(labels) == 0 {
			continue
		}
		val, err := e.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arn), VersionId: aws.String(v)})
		if err != nil {
			continue // AWSPENDING before createSecret stored a value
		}
		d, err := secretdoc.Parse([]byte(aws.ToString(val.SecretString)))
		if err != nil || !d.Key.InKMS() {
			continue
		}
		out[d.Key.KMSKeyARN] = append(out[d.Key.KMSKeyARN], labels...)
	}
	return out
}

// checkCustodyKeys is the KMS part of the invariants, run after every
// scenario: no stranded key. Every key tagged for the secret is named by a
// labelled version (and then, if the label is one the endpoint decrypts
// with, enabled), or was made for the rotation in progress, or is retired
// (pending deletion); and no version has more than one live key. Keys a
// test broke on purpose (disabledOnPurpose) may be in any state. A secret
// that never recorded a key creation (the flowkey:kms-key-creation tag,
// written before any CreateKey) can have no key, and local-kms is not
// asked: a test may have stopped it.
func (e *env) checkCustodyKeys(t testing.TB, inProgress string) {
	t.Helper()
	desc, err := e.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(desc.Tags, func(tag smtypes.Tag) bool { return aws.ToString(tag.Key) == custody.SecretTagCreation }) {
		return
	}
	named := e.labelledKeys(t)
	live := map[string]int{}
	for _, k := range e.custodyKeys(t) {
		if k.State != kmstypes.KeyStatePendingDeletion {
			live[k.Token]++
		}
		labels, isNamed := named[k.ARN]
		switch {
		case e.disabledOnPurpose[k.ARN]:
		case isNamed && decryptsWith(labels) && k.State != kmstypes.KeyStateEnabled:
			t.Errorf("invariant: KMS key %s of version %s is %s, but %v names it: the endpoint cannot decrypt with it", k.ARN, k.Token, k.State, labels)
		case isNamed, k.Token == inProgress && inProgress != "":
		case k.State != kmstypes.KeyStatePendingDeletion:
			t.Errorf("invariant: stranded KMS key %s (version %s, %s): no labelled version names it and it is not retired", k.ARN, k.Token, k.State)
		}
	}
	for token, n := range live {
		if n > 1 {
			t.Errorf("invariant: version %s has %d live KMS keys, want at most one", token, n)
		}
	}
	for arn, labels := range named {
		if !strings.Contains(arn, ":"+stack.AccountID+":") {
			continue // another account's key, named by a test's hand edit
		}
		if _, err := e.KMS.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(arn)}); err != nil && !e.disabledOnPurpose[arn] {
			t.Errorf("invariant: %v names KMS key %s, which local-kms cannot describe: %v", labels, arn, err)
		}
	}
}

// decryptsWith reports whether labels hold one the endpoint's key ring
// loads.
func decryptsWith(labels []string) bool {
	return slices.ContainsFunc(labels, func(l string) bool { return l == "AWSCURRENT" || l == "AWSPENDING" || l == "AWSPREVIOUS" })
}
