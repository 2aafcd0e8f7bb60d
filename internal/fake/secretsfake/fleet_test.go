package secretsfake_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

func create(f *secretsfake.Fake, name, token, value string, tags map[string]string) (*secretsmanager.CreateSecretOutput, error) {
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(token), SecretString: aws.String(value), KmsKeyId: aws.String("arn:aws:kms:us-east-1:111122223333:key/k")}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return f.CreateSecret(ctx, in)
}

func TestCreateSecretMakesTheFirstVersionCurrentWithItsTagsAndKey(t *testing.T) {
	f := secretsfake.New(t)
	out, err := create(f, "flowkey/tenants/acme", "11111111-1111-5111-8111-111111111111", "cfg", map[string]string{"flowkey:fleet": "prod", "flowkey:tenant": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != "11111111-1111-5111-8111-111111111111" || aws.ToString(out.Name) != "flowkey/tenants/acme" {
		t.Errorf("output %+v", out)
	}
	d, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: out.ARN})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Name) != "flowkey/tenants/acme" || aws.ToString(d.KmsKeyId) != "arn:aws:kms:us-east-1:111122223333:key/k" || len(d.Tags) != 2 ||
		!slices.Equal(d.VersionIdsToStages["11111111-1111-5111-8111-111111111111"], []string{"AWSCURRENT"}) || d.RotationEnabled != nil {
		t.Errorf("described %+v", d)
	}
	// The name is taken: a retry is ResourceExistsException, as in AWS.
	_, err = create(f, "flowkey/tenants/acme", "11111111-1111-5111-8111-111111111111", "cfg", nil)
	assertAPIError(t, err, &types.ResourceExistsException{}, "The operation failed because the secret flowkey/tenants/acme already exists.")
	f.Secret("flowkey/tenants/acme").DeletedDate = aws.Time(time.Now())
	_, err = create(f, "flowkey/tenants/acme", "t2", "cfg", nil)
	assertAPIError(t, err, &types.InvalidRequestException{}, "You can't create this secret because a secret with this name is already scheduled for deletion.")
	f.ReadOnly = true
	_, err = create(f, "flowkey/tenants/other", "t3", "cfg", nil)
	assertAPIError(t, err, &types.InvalidRequestException{}, "test fake: operator commands never create secrets")
	if got := f.Writes(); !slices.Equal(got, []string{"CreateSecret", "CreateSecret", "CreateSecret", "CreateSecret"}) {
		t.Errorf("writes %v", got)
	}
}

func TestRotateSecretRecordsTheConfigurationAndATestOnlyRunStagesNothing(t *testing.T) {
	f, s := newSecret(t)
	s.RotationEnabled = nil
	rules := &types.RotationRulesType{ScheduleExpression: aws.String("cron(0 9 15 * ? *)"), Duration: aws.String("2h")}
	out, err := f.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("k"), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:111122223333:function:f"),
		RotationRules: rules, RotateImmediately: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if out.VersionId != nil {
		t.Errorf("a test-only run returned version %s", aws.ToString(out.VersionId))
	}
	assertLabels(t, f, "k", map[string][]string{"v0": {"AWSCURRENT"}})
	d, _ := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("k")})
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != "arn:aws:lambda:us-east-1:111122223333:function:f" ||
		aws.ToString(d.RotationRules.ScheduleExpression) != "cron(0 9 15 * ? *)" || aws.ToString(d.RotationRules.Duration) != "2h" {
		t.Errorf("described %+v", d)
	}
}

func TestCancelRotateSecretTurnsRotationOffAndKeepsTheLabels(t *testing.T) {
	f, s := newSecret(t)
	f.Put(s, "v1", aws.String("one"), secretsfake.StagePending)
	out, err := f.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != "v1" || aws.ToBool(s.RotationEnabled) {
		t.Errorf("output %+v, rotation enabled %v", out, aws.ToBool(s.RotationEnabled))
	}
	assertLabels(t, f, "k", map[string][]string{"v0": {"AWSCURRENT"}, "v1": {"AWSPENDING"}})
	_, err = f.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("missing")})
	assertAPIError(t, err, &types.ResourceNotFoundException{}, "Secrets Manager can't find the specified secret.")
	if f.Calls(secretsfake.OpCancelRotateSecret) != 2 || !slices.Contains(f.Writes(), secretsfake.OpCancelRotateSecret) {
		t.Errorf("calls %d, writes %v", f.Calls(secretsfake.OpCancelRotateSecret), f.Writes())
	}
}

func list(t *testing.T, f *secretsfake.Fake, in *secretsmanager.ListSecretsInput) []string {
	t.Helper()
	var names []string
	for {
		out, err := f.ListSecrets(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.SecretList {
			names = append(names, aws.ToString(e.Name))
		}
		if out.NextToken == nil {
			return names
		}
		next := *in
		next.NextToken = out.NextToken
		in = &next
	}
}

func TestListSecretsFiltersAndPages(t *testing.T) {
	f := secretsfake.New(t)
	for i := range 7 {
		s := f.Add(fmt.Sprintf("flowkey/tenants/t%d", i))
		s.Tags["flowkey:fleet"] = "prod"
	}
	f.Add("flowkey/tenants/other").Tags["flowkey:fleet"] = "prod-2" // a prefix match of "prod"
	f.Add("flowkey/key")
	gone := f.Add("flowkey/tenants/t9")
	gone.Tags["flowkey:fleet"] = "prod"
	gone.DeletedDate = aws.Time(time.Now())

	fleet := []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"flowkey:fleet"}}, {Key: types.FilterNameStringTypeTagValue, Values: []string{"prod"}}}
	got := list(t, f, &secretsmanager.ListSecretsInput{Filters: fleet, MaxResults: aws.Int32(3)})
	want := []string{"flowkey/tenants/other", "flowkey/tenants/t0", "flowkey/tenants/t1", "flowkey/tenants/t2", "flowkey/tenants/t3", "flowkey/tenants/t4", "flowkey/tenants/t5", "flowkey/tenants/t6"}
	if !slices.Equal(got, want) {
		t.Errorf("fleet filter, 3 a page: %v\nwant %v", got, want)
	}
	if n := f.Calls(secretsfake.OpListSecrets); n != 3 {
		t.Errorf("%d pages for 8 secrets at 3 a page", n)
	}
	got = list(t, f, &secretsmanager.ListSecretsInput{Filters: append(fleet, types.Filter{Key: types.FilterNameStringTypeName, Values: []string{"flowkey/tenants/t"}}), IncludePlannedDeletion: aws.Bool(true)})
	if len(got) != 8 || got[7] != "flowkey/tenants/t9" {
		t.Errorf("name filter with deleted secrets: %v", got)
	}
	out, err := f.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: fleet, MaxResults: aws.Int32(1)})
	if err != nil || len(out.SecretList) != 1 {
		t.Fatal(err)
	}
	if e := out.SecretList[0]; len(e.Tags) != 1 || aws.ToString(e.Tags[0].Value) != "prod-2" || !aws.ToBool(e.RotationEnabled) {
		t.Errorf("entry %+v", e)
	}
	_, err = f.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("forged")})
	var bad *types.InvalidNextTokenException
	if !errors.As(err, &bad) {
		t.Errorf("a forged NextToken: %v", err)
	}
	_, err = f.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeAll, Values: []string{"x"}}}})
	assertAPIError(t, err, &types.InvalidParameterException{}, `test fake: filter key "all" is not supported (name, tag-key, tag-value)`)
}
