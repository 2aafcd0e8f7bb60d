package keystate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Auth resolves the Graph token and version for cfg: the document's
// access_token_secret_id and graph_api_version first, then the Reader's
// defaults. It reads the token secret on every call; a caller that needs
// the token twice keeps the result. The secret's ID goes into
// graph.Auth.TokenSecret, so that Graph's auth errors name it in their fix.
func (r *Reader) Auth(ctx context.Context, cfg secretdoc.Config) (graph.Auth, error) {
	id := cfg.AccessTokenSecretID
	if id == "" {
		id = r.opts.AccessTokenSecretID
	}
	if id == "" {
		return graph.Auth{}, &InputError{Field: "config.access_token_secret_id", Problem: "is not set, and neither is ACCESS_TOKEN_SECRET_ID",
			Fix: "name the secret that holds the Graph system user token in one of them"}
	}
	tok, err := r.token(ctx, id)
	if err != nil {
		return graph.Auth{}, err
	}
	version := cfg.GraphAPIVersion
	if version == "" {
		version = r.opts.GraphVersion
	}
	return graph.Auth{Token: tok, Version: version, TokenSecret: id}, nil
}

// TokenSecretError is a token secret that gave no token: reading it failed
// (Err wraps the Secrets Manager error) or its value is not a token (Err
// is an *InputError). It tells a failure to read the token secret from a
// failure to read the key's secret, which both come from GetSecretValue.
// Its text is Err's; neither ever quotes the value.
type TokenSecretError struct {
	// SecretID is the token secret as configured (an ARN when deployed).
	SecretID string
	Err      error
}

func (e *TokenSecretError) Error() string { return e.Err.Error() }
func (e *TokenSecretError) Unwrap() error { return e.Err }

// token reads the access token secret: either the bare token, or a JSON
// object with an "access_token" field. Every error is a *TokenSecretError
// that names the secret and what is wrong with its value, and never quotes
// the value: the Graph client would otherwise reject the token later as
// "Auth.Token", which names no secret.
func (r *Reader) token(ctx context.Context, secretID string) (graph.Token, error) {
	out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return graph.Token{}, &TokenSecretError{SecretID: secretID, Err: fmt.Errorf("read access token secret %s: %w", secretID, err)}
	}
	bad := func(problem string) error {
		return &TokenSecretError{SecretID: secretID,
			Err: &InputError{Field: "access token secret " + secretID, Problem: problem, Fix: `store the bare token, or {"access_token":"<token>"}`}}
	}
	if out.SecretString == nil && out.SecretBinary != nil {
		return graph.Token{}, bad("holds a binary value (SecretBinary), not the token as text (SecretString)")
	}
	raw := strings.TrimSpace(aws.ToString(out.SecretString))
	switch {
	case strings.HasPrefix(raw, "{"):
		var v struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(raw), &v) != nil || strings.TrimSpace(v.AccessToken) == "" {
			return graph.Token{}, bad(`holds a JSON object without a non-empty "access_token" string`)
		}
		raw = strings.TrimSpace(v.AccessToken)
	case strings.HasPrefix(raw, "["):
		return graph.Token{}, bad("holds a JSON array, not a token")
	case strings.HasPrefix(raw, `"`):
		return graph.Token{}, bad("holds the token in quotes, as a JSON string")
	}
	if raw == "" || strings.ContainsAny(raw, " \t\r\n") {
		return graph.Token{}, bad("is empty or contains white space")
	}
	if i := strings.IndexFunc(raw, func(c rune) bool { return c < 0x21 || c > 0x7e }); i >= 0 {
		return graph.Token{}, bad(fmt.Sprintf("has a character that is not printable ASCII (character %d), which no Graph token has", utf8.RuneCountInString(raw[:i])+1))
	}
	return graph.NewToken(raw), nil
}
