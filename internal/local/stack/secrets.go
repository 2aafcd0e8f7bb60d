package stack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// CreateTokenSecret stores the simulator's token as the Graph token secret.
func (s *Stack) CreateTokenSecret(ctx context.Context) (string, error) {
	out, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(TokenSecretName), SecretString: aws.String(s.opts.GraphToken),
	})
	if err != nil {
		return "", fmt.Errorf("create token secret: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// CreateKeySecret stores a configuration-only first version and returns
// the secret's ARN. cfg is validated as the function will read it, so a
// configuration it would refuse (more than secretdoc.MaxPhoneNumbers
// numbers, say) fails here, before any rotation.
func (s *Stack) CreateKeySecret(ctx context.Context, name string, cfg secretdoc.Config) (string, error) {
	body, err := (&secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: cfg}).Marshal()
	if err != nil {
		return "", fmt.Errorf("create key secret: %w", err)
	}
	out, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(string(body)),
	})
	if err != nil {
		return "", fmt.Errorf("create key secret: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// PhoneNumberIDs are the simulated WABA's numbers.
func (s *Stack) PhoneNumberIDs() []string {
	var ids []string
	for _, n := range s.Graph.PhoneNumbers(DefaultWABAID) {
		ids = append(ids, n.ID)
	}
	return ids
}

// Rotate starts a rotation through RotateSecret, as an operator or the
// schedule would, and returns the new version's ID.
func (s *Stack) Rotate(ctx context.Context, arn string, immediately bool) (string, error) {
	out, err := s.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(arn),
		RotationLambdaARN: aws.String(FunctionARN),
		RotationRules:     &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)"), Duration: aws.String("2h")},
		RotateImmediately: aws.Bool(immediately),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.VersionId), nil
}

// WaitRotation blocks until the rotation of token ends: it succeeded, or
// failed with no reattempt left, or was abandoned or cancelled.
func (s *Stack) WaitRotation(ctx context.Context, arn, token string) (secretsemu.Event, error) {
	return s.Secrets.WaitEvent(ctx, func(e secretsemu.Event) bool {
		if e.SecretARN != arn || e.Token != token {
			return false
		}
		switch e.Type {
		case secretsemu.RotationSucceeded, secretsemu.RotationAbandoned, secretsemu.RotationCancelled:
			return true
		case secretsemu.RotationFailed:
			return e.Final
		}
		return false
	})
}
