package secretsemu

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// AWS: "If you forcibly delete an already deleted or nonexistent secret,
// the operation does not return ResourceNotFoundException."
func TestForcedDeleteOfAMissingSecretSucceeds(t *testing.T) {
	e := newEmu(t, Options{})
	arn, _ := e.create(t, "gone", "v")
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	for _, tc := range []struct{ id, wantARN, wantName string }{
		{id: "never-existed", wantARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:never-existed", wantName: "never-existed"},
		{id: arn, wantARN: arn, wantName: "gone"}, // already deleted
		{id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbCdEf", wantARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbCdEf", wantName: "a/b"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			out, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(tc.id), ForceDeleteWithoutRecovery: aws.Bool(true)})
			if err != nil {
				t.Fatalf("forced DeleteSecret of a missing secret: %v", err)
			}
			if aws.ToString(out.ARN) != tc.wantARN || aws.ToString(out.Name) != tc.wantName || out.DeletionDate == nil || !out.DeletionDate.Equal(now) {
				t.Errorf("DeleteSecret = ARN %q Name %q DeletionDate %v; want %q, %q, %v", aws.ToString(out.ARN), aws.ToString(out.Name), out.DeletionDate, tc.wantARN, tc.wantName, now)
			}
		})
	}
	// Without ForceDeleteWithoutRecovery a missing secret is still an error.
	_, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("never-existed")})
	wantAPIError(t, err, "ResourceNotFoundException", msgSecretNotFound)
}

func TestForcedDeleteOfAScheduledSecretRemovesIt(t *testing.T) {
	e := newEmu(t, Options{})
	arn, _ := e.create(t, "soft", "v")
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Hour)
	out, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("soft"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if err != nil {
		t.Fatalf("forced DeleteSecret of a secret scheduled for deletion: %v", err)
	}
	if aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "soft" || !out.DeletionDate.Equal(e.clock.Now()) {
		t.Errorf("DeleteSecret = %q %q %v, want the secret's ARN and name, deleted now", aws.ToString(out.ARN), aws.ToString(out.Name), out.DeletionDate)
	}
	_, err = e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("soft")})
	wantAPIError(t, err, "ResourceNotFoundException", msgSecretNotFound)
	e.create(t, "soft", "again") // the name is free at once
}
