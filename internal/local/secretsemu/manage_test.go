package secretsemu

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestTagAndUntagResource(t *testing.T) {
	e := newEmu(t, Options{})
	if _, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String("k"), SecretString: aws.String("v"), Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("flowkey")}},
	}); err != nil {
		t.Fatal(err)
	}
	tags := func() map[string]string {
		d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		return tagMap(d.Tags)
	}
	if got := tags(); !sameTags(got, map[string]string{"app": "flowkey"}) {
		t.Errorf("after CreateSecret: %v", got)
	}
	// TagResource appends, and replaces the value of a key already there.
	if _, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: []types.Tag{
		{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("app"), Value: aws.String("flowkey-2")}, {Key: aws.String("empty"), Value: aws.String("")},
	}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); !sameTags(got, map[string]string{"app": "flowkey-2", "env": "prod", "empty": ""}) {
		t.Errorf("after TagResource: %v", got)
	}
	// UntagResource is idempotent: a key that is not there is no error.
	if _, err := e.client.UntagResource(ctxT(t), &secretsmanager.UntagResourceInput{SecretId: aws.String("k"), TagKeys: []string{"env", "never"}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); !sameTags(got, map[string]string{"app": "flowkey-2", "empty": ""}) {
		t.Errorf("after UntagResource: %v", got)
	}

	many := make([]types.Tag, 49)
	for i := range many {
		many[i] = types.Tag{Key: aws.String("k" + strconv.Itoa(i)), Value: aws.String("v")}
	}
	bad := []struct {
		name string
		call func() error
		code string
		want string
	}{
		{"more than 50 tags", func() error {
			_, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: many})
			return err
		}, "InvalidParameterException", "at most 50 tags"},
		{"aws: prefix", func() error {
			_, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
			return err
		}, "InvalidParameterException", "reserved for AWS use"},
		{"key too long", func() error {
			_, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}})
			return err
		}, "InvalidParameterException", "must be 1 to 128 characters"},
		{"a key twice", func() error {
			_, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}})
			return err
		}, "InvalidParameterException", "more than once"},
		{"missing secret", func() error {
			_, err := e.client.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("nope"), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
			return err
		}, "ResourceNotFoundException", msgSecretNotFound},
		{"untag a missing secret", func() error {
			_, err := e.client.UntagResource(ctxT(t), &secretsmanager.UntagResourceInput{SecretId: aws.String("nope"), TagKeys: []string{"a"}})
			return err
		}, "ResourceNotFoundException", msgSecretNotFound},
		{"CreateSecret with a reserved key", func() error {
			_, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("x"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
			return err
		}, "InvalidParameterException", "reserved for AWS use"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) { wantAPIError(t, b.call(), b.code, b.want) })
	}
	if got := tags(); !sameTags(got, map[string]string{"app": "flowkey-2", "empty": ""}) {
		t.Errorf("rejected requests changed the tags: %v", got)
	}
}

func TestUpdateSecret(t *testing.T) {
	e := newEmu(t, Options{})
	arn, v1 := e.create(t, "k", "one")
	// Metadata only: no new version.
	out, err := e.client.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), Description: aws.String("new description"), KmsKeyId: aws.String("alias/other")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "k" || out.VersionId != nil {
		t.Errorf("UpdateSecret without a value = %+v, want ARN and name, no VersionId", out)
	}
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("k")})
	if aws.ToString(d.Description) != "new description" || aws.ToString(d.KmsKeyId) != "alias/other" || len(d.VersionIdsToStages) != 1 {
		t.Errorf("after the metadata update: %+v", d)
	}
	// A value: a new AWSCURRENT version, the old one AWSPREVIOUS.
	v2 := token("k-v2")
	out, err = e.client.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String(arn), SecretString: aws.String("two"), ClientRequestToken: aws.String(v2)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != v2 {
		t.Errorf("VersionId = %q, want %q", aws.ToString(out.VersionId), v2)
	}
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}; !equalStages(e.stages(t, "k"), want) {
		t.Errorf("stages = %v, want %v", e.stages(t, "k"), want)
	}
	if got := e.value(t, "k", "AWSCURRENT"); got != "two" {
		t.Errorf("AWSCURRENT = %q", got)
	}
	// Without a token the SDK makes one: a third version.
	if out, err = e.client.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), SecretBinary: []byte{1, 2}}); err != nil || len(aws.ToString(out.VersionId)) != 36 {
		t.Fatalf("UpdateSecret with a binary value: %+v %v", out, err)
	}

	bad := []struct {
		name string
		in   secretsmanager.UpdateSecretInput
		code string
		want string
	}{
		{"an existing version's token, same value", secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), SecretString: aws.String("two"), ClientRequestToken: aws.String(v2)}, "ResourceExistsException", "You can't modify an existing version"},
		{"both values", secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), SecretString: aws.String("s"), SecretBinary: []byte("b")}, "InvalidParameterException", "You can't specify both"},
		{"value too large", secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), SecretString: aws.String(strings.Repeat("x", 65537))}, "InvalidParameterException", "SecretString is 65537 bytes"},
		{"short token", secretsmanager.UpdateSecretInput{SecretId: aws.String("k"), SecretString: aws.String("s"), ClientRequestToken: aws.String("t")}, "InvalidParameterException", "ClientRequestToken is 1 characters"},
		{"missing secret", secretsmanager.UpdateSecretInput{SecretId: aws.String("nope"), Description: aws.String("d")}, "ResourceNotFoundException", msgSecretNotFound},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := e.client.UpdateSecret(ctxT(t), &b.in)
			wantAPIError(t, err, b.code, b.want)
		})
	}
}

// UpdateSecret with a value is a hand-written version, as PutSecretValue's:
// it ends an incomplete rotation and drops AWSPENDING.
func TestUpdateSecretAbandonsAnIncompleteRotation(t *testing.T) {
	e := newEmu(t, Options{RotationAttempts: 1, Invoker: InvokerFunc(func(context.Context, string, []byte) ([]byte, error) {
		return nil, &FunctionError{Type: "errorString", Message: "createSecret failed"}
	})})
	arn, _ := e.create(t, "k", "one")
	r, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool { return ev.Type == RotationFailed && ev.Final }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String(arn), SecretString: aws.String("by hand")}); err != nil {
		t.Fatal(err)
	}
	for id, stages := range e.stages(t, arn) {
		if slices.Contains(stages, "AWSPENDING") {
			t.Errorf("AWSPENDING stays on %s after UpdateSecret wrote a new current version", id)
		}
	}
	ab, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool { return ev.Type == RotationAbandoned })
	if err != nil || ab.Token != aws.ToString(r.VersionId) || !strings.Contains(ab.Error, "UpdateSecret moved AWSCURRENT") {
		t.Errorf("RotationAbandoned = %+v, %v", ab, err)
	}
}

func TestRestoreSecret(t *testing.T) {
	e := newEmu(t, Options{})
	arn, _ := e.create(t, "k", "v")
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("k")})
	if err != nil || aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "k" {
		t.Fatalf("RestoreSecret = %+v, %v", out, err)
	}
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("k")})
	if d.DeletedDate != nil {
		t.Errorf("DeletedDate = %v after RestoreSecret", d.DeletedDate)
	}
	if got := e.value(t, "k", "AWSCURRENT"); got != "v" {
		t.Errorf("value after restore = %q", got)
	}
	// Restoring a secret that is not scheduled for deletion changes nothing.
	if _, err := e.client.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("k")}); err != nil {
		t.Errorf("RestoreSecret of a live secret: %v", err)
	}
	_, err = e.client.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("nope")})
	wantAPIError(t, err, "ResourceNotFoundException", msgSecretNotFound)
	// A forced delete cannot be undone.
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("k"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("k")})
	wantAPIError(t, err, "ResourceNotFoundException", msgSecretNotFound)
}
