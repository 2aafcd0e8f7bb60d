package kmsfake

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// validation is KMS's answer to a malformed request.
func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}

// CreateKey makes a key (RSA keys with real key material) with the tags,
// policy and description asked for.
func (f *Fake) CreateKey(ctx context.Context, in *kms.CreateKeyInput, _ ...func(*kms.Options)) (*kms.CreateKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpCreateKey); err != nil {
		return nil, err
	}
	spec := in.KeySpec
	if spec == "" {
		spec = types.KeySpecSymmetricDefault
	}
	if strings.HasPrefix(string(spec), "RSA_") && in.KeyUsage == "" {
		return nil, validation("You must specify a KeyUsage value for an asymmetric KMS key.")
	}
	for _, t := range in.Tags {
		if aws.ToString(t.TagKey) == "" {
			return nil, &types.TagException{Message: aws.String("tag keys must not be empty")}
		}
	}
	k, err := f.newKey(spec, in.KeyUsage, "", nil)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Tags {
		k.Tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
	}
	k.Policy, k.Bypass, k.Description = aws.ToString(in.Policy), in.BypassPolicyLockoutSafetyCheck, aws.ToString(in.Description)
	out := &kms.CreateKeyOutput{KeyMetadata: k.metadata()}
	f.done(OpCreateKey)
	return out, nil
}

// DescribeKey describes a key named by ID, ARN, alias name or alias ARN,
// whatever its state.
func (f *Fake) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpDescribeKey); err != nil {
		return nil, err
	}
	k, err := f.reachable(aws.ToString(in.KeyId), true)
	if err != nil {
		return nil, err
	}
	out := &kms.DescribeKeyOutput{KeyMetadata: k.metadata()}
	f.done(OpDescribeKey)
	return out, nil
}

// GetPublicKey returns an enabled asymmetric key's public key (PKIX DER).
func (f *Fake) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpGetPublicKey); err != nil {
		return nil, err
	}
	k, err := f.usable(aws.ToString(in.KeyId), true)
	if err != nil {
		return nil, err
	}
	if k.private == nil {
		return nil, &types.UnsupportedOperationException{Message: aws.String(k.ARN + " is not an asymmetric KMS key")}
	}
	md := k.metadata()
	out := &kms.GetPublicKeyOutput{KeyId: aws.String(k.ARN), PublicKey: k.Public(), KeySpec: k.Spec, KeyUsage: k.Usage, EncryptionAlgorithms: md.EncryptionAlgorithms}
	f.done(OpGetPublicKey)
	return out, nil
}

// Decrypt decrypts RSAES_OAEP_SHA_256 with an enabled RSA ENCRYPT_DECRYPT
// key; anything else is refused as KMS refuses it.
func (f *Fake) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpDecrypt); err != nil {
		return nil, err
	}
	if in.KeyId == nil {
		return nil, validation("KeyId is required to decrypt with an asymmetric key")
	}
	k, err := f.usable(aws.ToString(in.KeyId), true)
	if err != nil {
		return nil, err
	}
	if k.Usage != types.KeyUsageTypeEncryptDecrypt || k.private == nil {
		return nil, &types.InvalidKeyUsageException{Message: aws.String(k.ARN + " key usage is " + string(k.Usage) + ", not ENCRYPT_DECRYPT with an RSA key")}
	}
	if in.EncryptionAlgorithm != types.EncryptionAlgorithmSpecRsaesOaepSha256 {
		return nil, &types.InvalidKeyUsageException{Message: aws.String("this fake decrypts only RSAES_OAEP_SHA_256, not " + string(in.EncryptionAlgorithm))}
	}
	plain, err := k.decryptOAEP(in.CiphertextBlob)
	if err != nil {
		return nil, &types.InvalidCiphertextException{Message: aws.String("")}
	}
	out := &kms.DecryptOutput{KeyId: aws.String(k.ARN), Plaintext: plain, EncryptionAlgorithm: in.EncryptionAlgorithm}
	f.done(OpDecrypt)
	return out, nil
}

// CreateAlias names a key (by ID or ARN) that is not pending deletion.
func (f *Fake) CreateAlias(ctx context.Context, in *kms.CreateAliasInput, _ ...func(*kms.Options)) (*kms.CreateAliasOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpCreateAlias); err != nil {
		return nil, err
	}
	name := aws.ToString(in.AliasName)
	if !strings.HasPrefix(name, "alias/") || strings.HasPrefix(name, "alias/aws/") || len(name) > 256 {
		return nil, &types.InvalidAliasNameException{Message: aws.String("Alias must start with the prefix \"alias/\" and not \"alias/aws/\"")}
	}
	if _, ok := f.aliases[name]; ok {
		return nil, &types.AlreadyExistsException{Message: aws.String("An alias with the name arn:aws:kms:" + Region + ":" + Account + ":" + name + " already exists")}
	}
	k, err := f.live(aws.ToString(in.TargetKeyId))
	if err != nil {
		return nil, err
	}
	f.aliases[name] = k.ID
	f.done(OpCreateAlias)
	return &kms.CreateAliasOutput{}, nil
}

// page returns the slice of n items a Marker and Limit ask for, and the
// next marker ("" on the last page).
func (f *Fake) page(n int, marker *string, limit *int32) (from, to int, next string) {
	size := 50
	if limit != nil {
		size = int(*limit)
	}
	if f.PageSize > 0 && f.PageSize < size {
		size = f.PageSize
	}
	from, _ = strconv.Atoi(aws.ToString(marker))
	to = min(from+size, n)
	if to < n {
		next = strconv.Itoa(to)
	}
	return min(from, n), to, next
}

// ListAliases lists every alias, by name, in pages.
func (f *Fake) ListAliases(ctx context.Context, in *kms.ListAliasesInput, _ ...func(*kms.Options)) (*kms.ListAliasesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpListAliases); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.aliases))
	for a := range f.aliases {
		names = append(names, a)
	}
	slices.Sort(names)
	from, to, next := f.page(len(names), in.Marker, in.Limit)
	out := &kms.ListAliasesOutput{Truncated: next != ""}
	if next != "" {
		out.NextMarker = aws.String(next)
	}
	for _, a := range names[from:to] {
		out.Aliases = append(out.Aliases, types.AliasListEntry{AliasName: aws.String(a),
			AliasArn: aws.String("arn:aws:kms:" + Region + ":" + Account + ":" + a), TargetKeyId: aws.String(f.aliases[a])})
	}
	f.done(OpListAliases)
	return out, nil
}

// ListKeys lists every key, in creation order, in pages.
func (f *Fake) ListKeys(ctx context.Context, in *kms.ListKeysInput, _ ...func(*kms.Options)) (*kms.ListKeysOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpListKeys); err != nil {
		return nil, err
	}
	from, to, next := f.page(len(f.order), in.Marker, in.Limit)
	out := &kms.ListKeysOutput{Truncated: next != ""}
	if next != "" {
		out.NextMarker = aws.String(next)
	}
	for _, id := range f.order[from:to] {
		out.Keys = append(out.Keys, types.KeyListEntry{KeyId: aws.String(id), KeyArn: aws.String(f.keys[id].ARN)})
	}
	f.done(OpListKeys)
	return out, nil
}

// ListResourceTags lists a key's tags (by ID or ARN), sorted by key.
func (f *Fake) ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, _ ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpListResourceTags); err != nil {
		return nil, err
	}
	k, err := f.reachable(aws.ToString(in.KeyId), false)
	if err != nil {
		return nil, err
	}
	out := &kms.ListResourceTagsOutput{}
	keys := make([]string, 0, len(k.Tags))
	for t := range k.Tags {
		keys = append(keys, t)
	}
	slices.Sort(keys)
	for _, t := range keys {
		out.Tags = append(out.Tags, types.Tag{TagKey: aws.String(t), TagValue: aws.String(k.Tags[t])})
	}
	f.done(OpListResourceTags)
	return out, nil
}

// DisableKey disables a key that is not pending deletion; a disabled key
// stays disabled.
func (f *Fake) DisableKey(ctx context.Context, in *kms.DisableKeyInput, _ ...func(*kms.Options)) (*kms.DisableKeyOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpDisableKey); err != nil {
		return nil, err
	}
	k, err := f.live(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	k.State = types.KeyStateDisabled
	f.done(OpDisableKey)
	return &kms.DisableKeyOutput{}, nil
}

// ScheduleKeyDeletion makes a key PendingDeletion for 7-30 days (30 when
// unset).
func (f *Fake) ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, _ ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(ctx, OpScheduleKeyDeletion); err != nil {
		return nil, err
	}
	days := int32(30)
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	if days < 7 || days > 30 {
		return nil, validation("PendingWindowInDays must be between 7 and 30")
	}
	k, err := f.live(aws.ToString(in.KeyId))
	if err != nil {
		return nil, err
	}
	k.State, k.Deletion = types.KeyStatePendingDeletion, f.now().Add(time.Duration(days)*24*time.Hour)
	out := &kms.ScheduleKeyDeletionOutput{KeyId: aws.String(k.ARN), KeyState: k.State, DeletionDate: aws.Time(k.Deletion), PendingWindowInDays: aws.Int32(days)}
	f.done(OpScheduleKeyDeletion)
	return out, nil
}
