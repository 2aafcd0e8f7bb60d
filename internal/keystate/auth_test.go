package keystate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func TestAuth(t *testing.T) {
	const other = "flowkey/other-token"
	tests := []struct {
		name  string
		opts  Options
		cfg   secretdoc.Config
		token *string // the value of the token secret other; nil: not created
		fail  error   // GetSecretValue fails with it
		want  graph.Auth
		// wantErr is the whole error; "" for success.
		wantErr string
		inputEr bool // the error is an *InputError
	}{
		{name: "the document's secret and version", opts: Options{AccessTokenSecretID: "ignored", GraphVersion: "v1.0"},
			cfg:  secretdoc.Config{AccessTokenSecretID: tokenSecret, GraphAPIVersion: "v23.0"},
			want: graph.Auth{Token: graph.NewToken(tokenValue), Version: "v23.0", TokenSecret: tokenSecret}},
		{name: "the function's defaults", opts: Options{AccessTokenSecretID: tokenSecret, GraphVersion: "v22.0"},
			want: graph.Auth{Token: graph.NewToken(tokenValue), Version: "v22.0", TokenSecret: tokenSecret}},
		{name: "graph.DefaultVersion without one", cfg: secretdoc.Config{AccessTokenSecretID: tokenSecret},
			want: graph.Auth{Token: graph.NewToken(tokenValue), Version: graph.DefaultVersion, TokenSecret: tokenSecret}},
		{name: "a JSON token secret", cfg: secretdoc.Config{AccessTokenSecretID: other},
			token: aws.String(` {"access_token":" EAAG-json-token ","note":"x"} `),
			want:  graph.Auth{Token: graph.NewToken("EAAG-json-token"), Version: graph.DefaultVersion, TokenSecret: other}},
		{name: "a bare token with white space around", cfg: secretdoc.Config{AccessTokenSecretID: other},
			token: aws.String("\n EAAG-bare-token \n"),
			want:  graph.Auth{Token: graph.NewToken("EAAG-bare-token"), Version: graph.DefaultVersion, TokenSecret: other}},
		{name: "no token secret anywhere", inputEr: true,
			wantErr: "config.access_token_secret_id is not set, and neither is ACCESS_TOKEN_SECRET_ID; fix: name the secret that holds the Graph system user token in one of them"},
		{name: "JSON without access_token", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`{"token":"` + tokenValue + `"}`),
			wantErr: `access token secret flowkey/other-token holds a JSON object without a non-empty "access_token" string; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "JSON with an empty access_token", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`{"access_token":"  "}`),
			wantErr: `access token secret flowkey/other-token holds a JSON object without a non-empty "access_token" string; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "broken JSON", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`{"access_token":"` + tokenValue),
			wantErr: `access token secret flowkey/other-token holds a JSON object without a non-empty "access_token" string; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "white space inside", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(tokenValue + " " + tokenValue),
			wantErr: `access token secret flowkey/other-token is empty or contains white space; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "empty", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(" "),
			wantErr: `access token secret flowkey/other-token is empty or contains white space; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "a JSON array", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`["` + tokenValue + `"]`),
			wantErr: `access token secret flowkey/other-token holds a JSON array, not a token; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "a JSON string", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`"` + tokenValue + `"`),
			wantErr: `access token secret flowkey/other-token holds the token in quotes, as a JSON string; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "non-ASCII", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String("EAAG-tök-" + tokenValue),
			wantErr: `access token secret flowkey/other-token has a character that is not printable ASCII (character 7), which no Graph token has; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "a control character in the JSON token", cfg: secretdoc.Config{AccessTokenSecretID: other}, inputEr: true,
			token:   aws.String(`{"access_token":"EAAG\u0000` + tokenValue + `"}`),
			wantErr: `access token secret flowkey/other-token has a character that is not printable ASCII (character 5), which no Graph token has; fix: store the bare token, or {"access_token":"<token>"}`},
		{name: "the read fails", cfg: secretdoc.Config{AccessTokenSecretID: tokenSecret}, fail: errBoom,
			wantErr: "read access token secret flowkey/graph-token: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			if tc.token != nil {
				f.sm.Put(f.sm.Add(other), "t1", tc.token, StageCurrent)
			}
			if tc.fail != nil {
				f.sm.FailNext(secretsfake.OpGetSecretValue, tc.fail)
			}
			got, err := f.r.Auth(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				var ie *InputError
				if err == nil || err.Error() != tc.wantErr || errors.As(err, &ie) != tc.inputEr {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.wantErr)
				}
				// Every failure of the token secret itself says which one.
				var te *TokenSecretError
				if got, want := errors.As(err, &te), tc.name != "no token secret anywhere"; got != want || (got && te.SecretID != tokenSecretOf(tc.cfg)) {
					t.Errorf("errors.As(*TokenSecretError) = %v (%+v), want %v for %s", got, te, want, tokenSecretOf(tc.cfg))
				}
				assertNoToken(t, err.Error())
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// tokenSecretOf is the token secret TestAuth's failing cases read.
func tokenSecretOf(cfg secretdoc.Config) string {
	if cfg.AccessTokenSecretID != "" {
		return cfg.AccessTokenSecretID
	}
	return tokenSecret
}

func TestAuthReadsTheTokenSecretByItsCurrentVersion(t *testing.T) {
	f := newFixture(t, Options{})
	tok := f.sm.Secret(tokenSecret)
	f.sm.Put(tok, "t2", aws.String("EAAG-newer-token"), StageCurrent)
	got, err := f.r.Auth(context.Background(), secretdoc.Config{AccessTokenSecretID: tokenSecret})
	if err != nil || got.Token != graph.NewToken("EAAG-newer-token") {
		t.Errorf("got %+v, %v; want the AWSCURRENT token", got, err)
	}
	if ops := strings.Join(f.sm.Ops(), " "); ops != "GetSecretValue" {
		t.Errorf("calls %q, want one GetSecretValue", ops)
	}
}

// binarySecrets answers GetSecretValue of the token secret with SecretBinary,
// which the in-memory fake cannot store.
type binarySecrets struct {
	SecretsAPI
	id string
}

func (b binarySecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opt ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.SecretId) == b.id {
		return &secretsmanager.GetSecretValueOutput{SecretBinary: []byte(tokenValue)}, nil
	}
	return b.SecretsAPI.GetSecretValue(ctx, in, opt...)
}

func TestAuthNamesABinaryTokenSecret(t *testing.T) {
	f := newFixture(t, Options{})
	r, err := New(binarySecrets{f.sm, tokenSecret}, f.g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Auth(context.Background(), secretdoc.Config{AccessTokenSecretID: tokenSecret})
	var ie *InputError
	want := `access token secret flowkey/graph-token holds a binary value (SecretBinary), not the token as text (SecretString); fix: store the bare token, or {"access_token":"<token>"}`
	var te *TokenSecretError
	if err == nil || err.Error() != want || !errors.As(err, &ie) || !errors.As(err, &te) || te.SecretID != tokenSecret {
		t.Fatalf("got %v, want %q as a *TokenSecretError", err, want)
	}
	assertNoToken(t, err.Error())
}
