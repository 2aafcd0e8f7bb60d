package secretsfake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The calls a fleet of secrets needs: CreateSecret, ListSecrets with
// filters and pages, and CancelRotateSecret.

// ListPageSize is ListSecrets' page size when MaxResults is not set (AWS
// documents no default; 100 is its maximum).
const ListPageSize = 100

// configureRotation records what RotateSecret sets. The caller holds f.mu.
func (f *Fake) configureRotation(s *Secret, in *secretsmanager.RotateSecretInput) {
	if in.RotationLambdaARN != nil {
		s.RotationLambdaARN = *in.RotationLambdaARN
	}
	if in.RotationRules != nil {
		r := *in.RotationRules
		s.RotationRules = &r
	}
	s.RotationEnabled = aws.Bool(true)
}

// CreateSecret creates a secret with its first version (AWSCURRENT) when
// SecretString is set, its tags and its KMS key. The version's ID is
// ClientRequestToken. A name in use is ResourceExistsException, as in AWS,
// and a name scheduled for deletion InvalidRequestException; under
// ReadOnly it refuses.
func (f *Fake) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpCreateSecret); err != nil {
		return nil, err
	}
	if f.ReadOnly {
		return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never create secrets")}
	}
	name := aws.ToString(in.Name)
	if name == "" || strings.HasPrefix(name, "arn:") {
		return nil, &types.InvalidParameterException{Message: aws.String("test fake: Name must be a secret name")}
	}
	if arn, ok := f.byName[name]; ok {
		if f.secrets[arn].DeletedDate != nil {
			return nil, &types.InvalidRequestException{Message: aws.String("You can't create this secret because a secret with this name is already scheduled for deletion.")}
		}
		return nil, &types.ResourceExistsException{Message: aws.String("The operation failed because the secret " + name + " already exists.")}
	}
	arn := arnPrefix + name + "-AbCdEf"
	s := &Secret{ARN: arn, Name: name, Values: map[string]*string{}, Stages: map[string][]string{}, Tags: map[string]string{}, KmsKeyID: aws.ToString(in.KmsKeyId)}
	for _, t := range in.Tags {
		s.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	out := &secretsmanager.CreateSecretOutput{ARN: aws.String(arn), Name: aws.String(name)}
	if in.SecretString != nil {
		token := aws.ToString(in.ClientRequestToken)
		if token == "" {
			return nil, &types.InvalidParameterException{Message: aws.String("test fake: ClientRequestToken must be set")}
		}
		s.Values[token] = aws.String(*in.SecretString)
		s.Stages[token] = []string{StageCurrent}
		out.VersionId = aws.String(token)
	}
	f.secrets[arn] = s
	f.byName[name] = arn
	return out, nil
}

// CancelRotateSecret turns rotation off and leaves every label where it
// is, as AWS does; it reports the incomplete rotation's version, if any.
func (f *Fake) CancelRotateSecret(_ context.Context, in *secretsmanager.CancelRotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CancelRotateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpCancelRotateSecret); err != nil {
		return nil, err
	}
	if f.ReadOnly {
		return nil, &types.InvalidRequestException{Message: aws.String("test fake: operator commands never cancel rotation")}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	if s.DeletedDate != nil {
		return nil, &types.InvalidRequestException{Message: aws.String("You can't perform this operation on the secret because it was marked for deletion.")}
	}
	s.RotationEnabled = aws.Bool(false)
	out := &secretsmanager.CancelRotateSecretOutput{ARN: aws.String(s.ARN), Name: aws.String(s.Name)}
	if p := s.Holder(StagePending); p != "" && p != s.Holder(StageCurrent) {
		out.VersionId = aws.String(p)
	}
	return out, nil
}

// ListSecrets lists the secrets in name order, MaxResults (ListPageSize)
// at a time, NextToken continuing where the last page stopped. Filters
// are AWS's for the keys "name", "tag-key" and "tag-value": each value is
// a case-sensitive prefix, a filter matches when one of its values does
// ("tag-key" and "tag-value" look at any tag, each on its own), and every
// filter must match. Secrets scheduled for deletion are left out unless
// IncludePlannedDeletion is set. Each entry carries what flowkey reads:
// ARN, Name, Tags, RotationEnabled, the rotation configuration and the
// dates.
func (f *Fake) ListSecrets(_ context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(OpListSecrets); err != nil {
		return nil, err
	}
	size := ListPageSize
	if in.MaxResults != nil {
		if n := int(*in.MaxResults); n < 1 || n > 100 {
			return nil, &types.InvalidParameterException{Message: aws.String("test fake: MaxResults must be 1 to 100")}
		} else {
			size = n
		}
	}
	for _, fl := range in.Filters {
		switch fl.Key {
		case types.FilterNameStringTypeName, types.FilterNameStringTypeTagKey, types.FilterNameStringTypeTagValue:
		default:
			return nil, &types.InvalidParameterException{Message: aws.String(fmt.Sprintf("test fake: filter key %q is not supported (name, tag-key, tag-value)", fl.Key))}
		}
	}
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-after-"))
		if !strings.HasPrefix(tok, "page-after-") || err != nil || n < 0 {
			return nil, &types.InvalidNextTokenException{Message: aws.String("test fake: NextToken is not one this fake gave")}
		}
		start = n
	}
	var names []string
	for _, name := range slices.Sorted(maps.Keys(f.byName)) {
		s := f.secrets[f.byName[name]]
		if (s.DeletedDate == nil || aws.ToBool(in.IncludePlannedDeletion)) && s.passes(name, in.Filters) {
			names = append(names, name)
		}
	}
	out := &secretsmanager.ListSecretsOutput{}
	end := min(start+size, len(names))
	for _, name := range names[min(start, len(names)):end] {
		out.SecretList = append(out.SecretList, f.secrets[f.byName[name]].entry(name))
	}
	if end < len(names) {
		out.NextToken = aws.String("page-after-" + strconv.Itoa(end))
	}
	return out, nil
}

func (s *Secret) passes(name string, filters []types.Filter) bool {
	for _, fl := range filters {
		hit := slices.ContainsFunc(fl.Values, func(v string) bool {
			switch fl.Key {
			case types.FilterNameStringTypeName:
				return strings.HasPrefix(name, v)
			case types.FilterNameStringTypeTagKey:
				return slices.ContainsFunc(slices.Collect(maps.Keys(s.Tags)), func(k string) bool { return strings.HasPrefix(k, v) })
			default:
				return slices.ContainsFunc(slices.Collect(maps.Values(s.Tags)), func(tv string) bool { return strings.HasPrefix(tv, v) })
			}
		})
		if !hit {
			return false
		}
	}
	return true
}

func (s *Secret) entry(name string) types.SecretListEntry {
	e := types.SecretListEntry{ARN: aws.String(s.ARN), Name: aws.String(name), RotationEnabled: s.RotationEnabled, RotationRules: s.RotationRules,
		LastRotatedDate: s.LastRotatedDate, CreatedDate: s.CreatedDate, DeletedDate: s.DeletedDate}
	if s.RotationLambdaARN != "" {
		e.RotationLambdaARN = aws.String(s.RotationLambdaARN)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		e.Tags = append(e.Tags, types.Tag{Key: aws.String(k), Value: aws.String(s.Tags[k])})
	}
	return e
}
