// Package keystate is flowkey's one account of where each key is: the
// secret's labelled versions and the documents they hold, the Graph auth
// and the phone numbers a document's configuration resolves to, and what
// Meta holds for a number judged against those versions.
//
// The rotation steps (internal/rotation) and the operator commands
// (internal/operator) both read through one Reader, so that a status or a
// resync judges a phone number exactly as the steps do: the same version
// for a label, the same strict parse of a version, the same token and Graph
// version, the same numbers, and the same test of whether Meta holds a key.
//
// # Reads only
//
// A Reader calls DescribeSecret, GetSecretValue and the Graph listing of a
// WABA's numbers, nothing else. Writing versions, moving labels, uploading
// and verifying keys stay with the packages that decide to do them.
//
// # One answer for a label
//
// Secrets Manager puts a label on one version at a time, so "which version
// holds AWSCURRENT" has one answer in AWS. Secret.VersionWith still does not
// leave it to Go's map order: should two versions ever carry a label (a test
// double, a hand-edited emulator state) it returns the smallest version ID,
// every time.
//
// # Errors
//
// Errors name the secret, the version and the label they are about. None
// quotes a secret value: a token is never repeated, and a version that does
// not parse is reported by internal/secretdoc, which does not quote key
// material either.
package keystate

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/graph"
)

// Secrets Manager's staging labels.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// SecretsAPI is the part of the Secrets Manager client a Reader calls.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// GraphAPI is the part of the Graph client a Reader calls.
type GraphAPI interface {
	PhoneNumbers(ctx context.Context, auth graph.Auth, wabaID string) ([]graph.PhoneNumber, error)
}

// Options are the function's defaults for what a document leaves out.
type Options struct {
	// AccessTokenSecretID is used when the document names no token secret
	// (ACCESS_TOKEN_SECRET_ID).
	AccessTokenSecretID string
	// GraphVersion is used when the document names no version
	// (graph.DefaultVersion).
	GraphVersion string
}

// Reader reads the secret's state and resolves its configuration. It holds
// no state of its own beyond its clients and options, so one Reader serves
// every invocation, concurrently.
type Reader struct {
	sm    SecretsAPI
	graph GraphAPI
	opts  Options
}

// New returns a Reader. Both clients are required.
func New(sm SecretsAPI, g GraphAPI, opts Options) (*Reader, error) {
	if sm == nil || g == nil {
		return nil, errors.New("keystate: Secrets Manager client and Graph client are both required")
	}
	if opts.GraphVersion == "" {
		opts.GraphVersion = graph.DefaultVersion
	}
	return &Reader{sm: sm, graph: g, opts: opts}, nil
}

// InputError is a value flowkey was given and cannot use: a field of a
// rotation event or an operator command, a configuration entry, the token
// secret. internal/rotation names it rotation.InputError.
type InputError struct {
	Field, Problem, Fix string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s %s; fix: %s", e.Field, e.Problem, e.Fix)
}
