package custody

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// How Ensure came by the rotation's key.
const (
	FoundByAlias = "alias"   // an earlier attempt of this version made and aliased it
	FoundByTags  = "orphan"  // an earlier attempt made it and crashed before aliasing it
	Created      = "created" // this call made it
)

// Key is a custody key as DescribeKey reports it.
type Key struct {
	ARN, ID               string
	State                 types.KeyState
	Spec                  types.KeySpec
	Usage                 types.KeyUsageType
	Account               string
	Created, DeletionDate time.Time
}

func keyOf(md *types.KeyMetadata) *Key {
	if md == nil {
		return nil
	}
	return &Key{ARN: aws.ToString(md.Arn), ID: aws.ToString(md.KeyId), State: md.KeyState, Spec: md.KeySpec, Usage: md.KeyUsage,
		Account: aws.ToString(md.AWSAccountId), Created: aws.ToTime(md.CreationDate), DeletionDate: aws.ToTime(md.DeletionDate)}
}

// Request names the key of one rotation, and how to record its creation.
type Request struct {
	SecretARN, Token string
	// Recorded is the secret's SecretTagCreation tag, "" when it has none.
	Recorded string
	// Record tags the secret SecretTagCreation = Token. Ensure calls it
	// before CreateKey, never after.
	Record func(ctx context.Context) error
	// Keep reports whether a labelled version of the secret names the key
	// (by key ID). The unaliased keys of an abandoned earlier version are
	// retired unless kept.
	Keep func(keyID string) bool
}

// Ensured is the rotation's key, checked, with its public key.
type Ensured struct {
	Key *Key
	// PublicDER is the key's public key (PKIX DER) as GetPublicKey gave it.
	PublicDER []byte
	// How is FoundByAlias, FoundByTags or Created.
	How string
}

// Ensure returns the key of version req.Token, creating it only when no
// earlier attempt can have (see "One key per rotation"). The key is
// checked: tagged for this secret and version, RSA_2048, ENCRYPT_DECRYPT,
// enabled, in the secret's account and region.
func (m *Manager) Ensure(ctx context.Context, req Request) (*Ensured, error) {
	alias := AliasName(req.SecretARN, req.Token)
	k, err := m.byAlias(ctx, alias)
	if err != nil {
		return nil, err
	}
	how := FoundByAlias
	if k != nil {
		if err := m.checkTags(ctx, k, alias, req); err != nil {
			return nil, err
		}
	} else if k, how, err = m.findOrCreate(ctx, req, alias); err != nil {
		return nil, err
	}
	if err := checkUsable(k, req.SecretARN, alias); err != nil {
		return nil, err
	}
	der, err := m.publicKey(ctx, k)
	if err != nil {
		return nil, err
	}
	return &Ensured{Key: k, PublicDER: der, How: how}, nil
}

// findOrCreate is Ensure without an alias: aliases the orphan of a crashed
// attempt of this version, or records the creation, creates the key and
// aliases it.
func (m *Manager) findOrCreate(ctx context.Context, req Request, alias string) (*Key, string, error) {
	if req.Recorded == req.Token {
		found, err := m.scan(ctx, req.SecretARN, req.Token)
		if err != nil {
			return nil, "", fmt.Errorf("%w (looking for the key an earlier attempt of version %s may have created; no key is created while that is unknown)", err, req.Token)
		}
		if len(found) > 0 {
			for _, extra := range found[1:] {
				m.retireQuietly(ctx, extra, "a second key made for the same version by concurrent attempts")
			}
			m.opts.Logger.Info("custody key of an interrupted attempt found by its tags", "key_arn", found[0].ARN, "alias", alias)
			k, err := m.alias(ctx, alias, found[0])
			return k, FoundByTags, err
		}
	} else if req.Recorded != "" {
		m.sweep(ctx, req)
	}
	if err := req.Record(ctx); err != nil {
		return nil, "", fmt.Errorf("record the key creation on the secret (tag %s=%s) before creating the key: %w", SecretTagCreation, req.Token, err)
	}
	k, err := m.create(ctx, req)
	if err != nil {
		return nil, "", err
	}
	// A failure from here leaves the key findable by its tags: the next
	// attempt of this version aliases it (and an abandoned version's key
	// is retired by the next version's sweep).
	k, err = m.alias(ctx, alias, k)
	return k, Created, err
}

// byAlias describes the key alias names; nil when there is no such alias.
func (m *Manager) byAlias(ctx context.Context, alias string) (*Key, error) {
	out, err := call(ctx, m, "DescribeKey", alias, func(ctx context.Context) (*kms.DescribeKeyOutput, error) {
		return m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	})
	if code(err) == codeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return keyOf(out.KeyMetadata), nil
}

func (m *Manager) create(ctx context.Context, req Request) (*Key, error) {
	policy, err := m.Policy(req.SecretARN)
	if err != nil {
		return nil, err
	}
	out, err := call(ctx, m, "CreateKey", "", func(ctx context.Context) (*kms.CreateKeyOutput, error) {
		return m.kms.CreateKey(ctx, &kms.CreateKeyInput{
			KeySpec:     types.KeySpecRsa2048,
			KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
			Description: aws.String("flowkey: WhatsApp Flows private key of secret " + req.SecretARN + ", version " + req.Token),
			Policy:      aws.String(policy),
			// The rotator must not be able to change the policy (see
			// "The key policy"); the account principal can.
			BypassPolicyLockoutSafetyCheck: true,
			Tags: []types.Tag{
				{TagKey: aws.String(TagSecretARN), TagValue: aws.String(req.SecretARN)},
				{TagKey: aws.String(TagRotationToken), TagValue: aws.String(req.Token)},
			},
		})
	})
	if err != nil {
		return nil, err
	}
	k := keyOf(out.KeyMetadata)
	if k == nil || k.ARN == "" || k.ID == "" {
		return nil, &Error{Op: "CreateKey", Problem: "returned no key metadata", Fix: "check that the KMS endpoint is AWS KMS or a faithful emulator"}
	}
	m.opts.Logger.Info("custody key created", "secret_arn", req.SecretARN, "version", req.Token, "key_arn", k.ARN)
	return k, nil
}

// alias points alias at k. When another attempt aliased its own key first,
// that key wins and k, which nothing names, is retired.
func (m *Manager) alias(ctx context.Context, alias string, k *Key) (*Key, error) {
	_, err := call(ctx, m, "CreateAlias", alias, func(ctx context.Context) (*kms.CreateAliasOutput, error) {
		return m.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(k.ID)})
	})
	if code(err) != codeAlreadyExists {
		return k, err
	}
	other, derr := m.byAlias(ctx, alias)
	switch {
	case derr != nil:
		return nil, derr
	case other == nil:
		return nil, err
	case other.ID != k.ID:
		m.retireQuietly(ctx, k, "another attempt of the same version aliased its own key first")
	}
	return other, nil
}

// scan finds the keys tagged for secretARN and token that are not pending
// deletion, oldest first: every key of the account is listed, and its tags
// read (ListResourceTags). A key whose tags cannot be read is not flowkey's.
func (m *Manager) scan(ctx context.Context, secretARN, token string) ([]*Key, error) {
	var found []*Key
	var marker *string
	for {
		page, err := call(ctx, m, "ListKeys", "", func(ctx context.Context) (*kms.ListKeysOutput, error) {
			return m.kms.ListKeys(ctx, &kms.ListKeysInput{Marker: marker, Limit: aws.Int32(1000)})
		})
		if err != nil {
			return nil, err
		}
		for _, e := range page.Keys {
			id := aws.ToString(e.KeyId)
			tags, err := m.tags(ctx, id)
			switch c := code(err); {
			case c == codeAccessDenied || c == codeNotFound:
				continue
			case err != nil:
				return nil, err
			case tags[TagSecretARN] != secretARN || tags[TagRotationToken] != token:
				continue
			}
			k, err := m.describe(ctx, id)
			if err != nil {
				return nil, err
			}
			if k.State != types.KeyStatePendingDeletion {
				found = append(found, k)
			}
		}
		if !page.Truncated || page.NextMarker == nil {
			break
		}
		marker = page.NextMarker
	}
	slices.SortFunc(found, func(a, b *Key) int { return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ARN, b.ARN)) })
	return found, nil
}

// sweep retires the unaliased keys of req.Recorded, an earlier version
// whose createSecret was interrupted before aliasing its key and that was
// then abandoned. Best effort: a failure is logged, the rotation goes on.
func (m *Manager) sweep(ctx context.Context, req Request) {
	log := m.opts.Logger.With("earlier_version", req.Recorded)
	if k, err := m.byAlias(ctx, AliasName(req.SecretARN, req.Recorded)); err != nil || k != nil {
		if err != nil {
			log.Warn("custody: cannot tell whether an earlier version left an unaliased key", "error", err.Error())
		}
		return
	}
	found, err := m.scan(ctx, req.SecretARN, req.Recorded)
	if err != nil {
		log.Warn("custody: cannot look for the unaliased key of an earlier version", "error", err.Error())
		return
	}
	for _, k := range found {
		if req.Keep != nil && req.Keep(k.ID) {
			continue
		}
		m.retireQuietly(ctx, k, "made by an earlier version that was abandoned before its key was aliased")
	}
}

func (m *Manager) tags(ctx context.Context, keyID string) (map[string]string, error) {
	tags := map[string]string{}
	var marker *string
	for {
		out, err := call(ctx, m, "ListResourceTags", keyID, func(ctx context.Context) (*kms.ListResourceTagsOutput, error) {
			return m.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(keyID), Marker: marker})
		})
		if err != nil {
			return nil, err
		}
		for _, t := range out.Tags {
			tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
		}
		if !out.Truncated || out.NextMarker == nil {
			return tags, nil
		}
		marker = out.NextMarker
	}
}

// checkTags refuses a key, found by its alias, that is not tagged for this
// secret and version: the alias was pointed elsewhere by hand.
func (m *Manager) checkTags(ctx context.Context, k *Key, alias string, req Request) error {
	tags, err := m.tags(ctx, k.ID)
	if err != nil {
		return err
	}
	if tags[TagSecretARN] != req.SecretARN || tags[TagRotationToken] != req.Token {
		return &Error{Op: "ListResourceTags", Key: k.ARN,
			Problem: fmt.Sprintf("alias %s names a key that is not tagged %s=<this secret>, %s=%s", alias, TagSecretARN, TagRotationToken, req.Token),
			Fix:     "flowkey uses only the keys it created for the version: delete the alias (`aws kms delete-alias`) and run the step again, which creates the version's key"}
	}
	return nil
}

// publicKey reads k's public key and checks what GetPublicKey says of it.
func (m *Manager) publicKey(ctx context.Context, k *Key) ([]byte, error) {
	out, err := call(ctx, m, "GetPublicKey", k.ARN, func(ctx context.Context) (*kms.GetPublicKeyOutput, error) {
		return m.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(k.ARN)})
	})
	if err != nil {
		return nil, err
	}
	// local-kms leaves EncryptionAlgorithms out: only what is there is checked.
	if (out.KeySpec != "" && out.KeySpec != types.KeySpecRsa2048) || (out.KeyUsage != "" && out.KeyUsage != types.KeyUsageTypeEncryptDecrypt) ||
		(len(out.EncryptionAlgorithms) > 0 && !slices.Contains(out.EncryptionAlgorithms, types.EncryptionAlgorithmSpecRsaesOaepSha256)) {
		return nil, &Error{Op: "GetPublicKey", Key: k.ARN, Problem: fmt.Sprintf("reports KeySpec %q, KeyUsage %q, algorithms %v", out.KeySpec, out.KeyUsage, out.EncryptionAlgorithms),
			Fix: "flowkey needs an RSA_2048 ENCRYPT_DECRYPT key that supports RSAES_OAEP_SHA_256"}
	}
	if len(out.PublicKey) == 0 {
		return nil, &Error{Op: "GetPublicKey", Key: k.ARN, Problem: "returned no public key", Fix: "check that the KMS endpoint is AWS KMS or a faithful emulator"}
	}
	return out.PublicKey, nil
}
