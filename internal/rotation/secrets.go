package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// secretState is what DescribeSecret told this invocation.
type secretState struct {
	arn             string
	rotationEnabled bool
	stages          map[string][]string // version ID → labels
}

// versionWith returns the version that holds label, or "".
func (s *secretState) versionWith(label string) string {
	for id, labels := range s.stages {
		if has(labels, label) {
			return id
		}
	}
	return ""
}

func (r *Rotator) describe(ctx context.Context, secretID string) (*secretState, error) {
	out, err := r.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fmt.Errorf("describe secret %s: %w", secretID, err)
	}
	s := &secretState{
		arn: aws.ToString(out.ARN),
		// A nil RotationEnabled means rotation was never turned on.
		rotationEnabled: aws.ToBool(out.RotationEnabled),
		stages:          out.VersionIdsToStages,
	}
	if s.arn == "" {
		s.arn = secretID
	}
	return s, nil
}

// loadDocument reads and validates one version. An empty versionID reads
// the version that holds stage.
func (r *Rotator) loadDocument(ctx context.Context, arn, versionID, stage string) (*secretdoc.Document, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := r.sm.GetSecretValue(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("read %s version %s: %w", stage, versionID, err)
	}
	if out.SecretString == nil {
		return nil, fmt.Errorf("read %s version %s: %w", stage, aws.ToString(out.VersionId),
			&secretdoc.Error{Field: "SecretString", Problem: "is empty (the version holds SecretBinary or nothing)", Fix: "store the flowkey JSON document as SecretString"})
	}
	doc, err := secretdoc.Parse([]byte(*out.SecretString))
	if err != nil {
		return nil, fmt.Errorf("%s version %s of %s: %w", stage, aws.ToString(out.VersionId), arn, err)
	}
	return doc, nil
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// authFor resolves the Graph token and version for cfg, fetching the token
// at most once per invocation.
func (r *Rotator) authFor(ctx context.Context, inv *invocation, cfg secretdoc.Config) (graph.Auth, error) {
	if inv.auth != nil {
		return *inv.auth, nil
	}
	id := cfg.AccessTokenSecretID
	if id == "" {
		id = r.opts.AccessTokenSecretID
	}
	if id == "" {
		return graph.Auth{}, &InputError{Field: "config.access_token_secret_id", Problem: "is not set, and neither is ACCESS_TOKEN_SECRET_ID",
			Fix: "name the secret that holds the Graph system user token in one of them"}
	}
	tok, err := r.fetchToken(ctx, id)
	if err != nil {
		return graph.Auth{}, err
	}
	version := cfg.GraphAPIVersion
	if version == "" {
		version = r.opts.GraphVersion
	}
	inv.auth = &graph.Auth{Token: tok, Version: version}
	return *inv.auth, nil
}

// fetchToken reads the access token secret: either the bare token, or a
// JSON object with an "access_token" field. Errors never quote the value.
func (r *Rotator) fetchToken(ctx context.Context, secretID string) (graph.Token, error) {
	out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return graph.Token{}, fmt.Errorf("read access token secret %s: %w", secretID, err)
	}
	raw := strings.TrimSpace(aws.ToString(out.SecretString))
	if strings.HasPrefix(raw, "{") {
		var v struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(raw), &v) != nil || strings.TrimSpace(v.AccessToken) == "" {
			return graph.Token{}, &InputError{Field: "access token secret " + secretID,
				Problem: `holds a JSON object without a non-empty "access_token" string`,
				Fix:     `store the bare token, or {"access_token":"<token>"}`}
		}
		raw = strings.TrimSpace(v.AccessToken)
	}
	if raw == "" || strings.ContainsAny(raw, " \t\r\n") {
		return graph.Token{}, &InputError{Field: "access token secret " + secretID,
			Problem: "is empty or contains white space", Fix: `store the bare token, or {"access_token":"<token>"}`}
	}
	return graph.NewToken(raw), nil
}
