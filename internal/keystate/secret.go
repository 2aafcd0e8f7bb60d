package keystate

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Secret is what DescribeSecret reports about the secret.
type Secret struct {
	// ARN is the secret's ARN as DescribeSecret returns it, or the ID asked
	// for when it returns none. Callers name the secret by it from then on,
	// so every later call of one invocation names the same secret.
	ARN string
	// RotationEnabled is false also when DescribeSecret reports nothing:
	// rotation was never turned on.
	RotationEnabled bool
	// Stages maps each version ID to its staging labels.
	Stages map[string][]string
	// LastRotated is when a rotation last succeeded, and Created when the
	// secret was made; each is zero when DescribeSecret reports none
	// (Secrets Manager reports no LastRotatedDate for a secret never
	// rotated, nor while rotation is off).
	LastRotated, Created time.Time
	// Tags are the secret's tags (the rotation records a KMS key creation
	// in one before the key exists); nil when it has none.
	Tags map[string]string
	// Name is the secret's name; "" when DescribeSecret reports none.
	Name string
	// RotationLambdaARN, Schedule and Window are the rotation
	// configuration (RotationRules' ScheduleExpression and Duration); ""
	// when none is set.
	RotationLambdaARN, Schedule, Window string
	// Deleted is when the secret was scheduled for deletion; zero when it
	// is not.
	Deleted time.Time
}

// VersionWith returns the version that holds label, or "". Should several
// hold it, it is the smallest version ID, whatever the map order.
func (s *Secret) VersionWith(label string) string {
	for _, id := range slices.Sorted(maps.Keys(s.Stages)) {
		if slices.Contains(s.Stages[id], label) {
			return id
		}
	}
	return ""
}

// Describe reads the secret's labels.
func (r *Reader) Describe(ctx context.Context, secretID string) (*Secret, error) {
	out, err := r.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fmt.Errorf("describe secret %s: %w", secretID, err)
	}
	s := &Secret{
		ARN:               aws.ToString(out.ARN),
		RotationEnabled:   aws.ToBool(out.RotationEnabled),
		Stages:            out.VersionIdsToStages,
		LastRotated:       aws.ToTime(out.LastRotatedDate),
		Created:           aws.ToTime(out.CreatedDate),
		Name:              aws.ToString(out.Name),
		RotationLambdaARN: aws.ToString(out.RotationLambdaARN),
		Deleted:           aws.ToTime(out.DeletedDate),
	}
	if r := out.RotationRules; r != nil {
		s.Schedule, s.Window = aws.ToString(r.ScheduleExpression), aws.ToString(r.Duration)
	}
	if s.ARN == "" {
		s.ARN = secretID
	}
	for _, t := range out.Tags {
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		s.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return s, nil
}

// Load reads one version of the secret and parses it strictly
// (secretdoc.Parse). An empty versionID reads the version that holds
// stage; an empty stage reads versionID whatever its labels (also none:
// the operator re-reads a version whose label it has just removed). A
// version without a value fails with an error that wraps
// *types.ResourceNotFoundException, as Secrets Manager reports it.
func (r *Reader) Load(ctx context.Context, secretID, versionID, stage string) (*secretdoc.Document, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	label := stage + " "
	if stage == "" {
		label = ""
	}
	out, err := r.sm.GetSecretValue(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("read %sversion %s: %w", label, versionID, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("read %sversion %s: %w", label, aws.ToString(out.VersionId),
			&secretdoc.Error{Field: "SecretString", Problem: "is empty (the version holds SecretBinary or nothing)", Fix: "store the flowkey JSON document as SecretString"})
	}
	doc, err := secretdoc.Parse([]byte(*out.SecretString))
	if err != nil {
		return nil, fmt.Errorf("%sversion %s of %s: %w", label, aws.ToString(out.VersionId), secretID, err)
	}
	return doc, nil
}
