// Package config reads the functions' settings from environment variables:
// the rotator's (Load) and the Flows endpoint's (LoadEndpoint). Every
// setting has a documented default; a missing or invalid one fails at
// start-up with an error that names the variable, so a bad deploy fails on
// its first invocation instead of half-way through a rotation or a Flow.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/graph"
)

// The environment variables the rotator reads. infra/ and template.yaml
// declare exactly these; a test keeps the three in step.
const (
	EnvKMSKeyID            = "KMS_KEY_ID"
	EnvAccessTokenSecretID = "ACCESS_TOKEN_SECRET_ID"
	EnvGraphBaseURL        = "GRAPH_API_BASE_URL"
	EnvGraphVersion        = "GRAPH_API_VERSION"
	EnvGraphConcurrency    = "GRAPH_CONCURRENCY"
	EnvGraphMaxAttempts    = "GRAPH_MAX_ATTEMPTS"
	EnvGraphRequestTimeout = "GRAPH_REQUEST_TIMEOUT"
	EnvVerifyTimeout       = "VERIFY_TIMEOUT"
	EnvSecretID            = "SECRET_ID"
	EnvLogLevel            = "LOG_LEVEL"
)

// Names lists every variable the rotator reads, in documentation order.
func Names() []string {
	return []string{
		EnvKMSKeyID, EnvAccessTokenSecretID, EnvGraphBaseURL, EnvGraphVersion,
		EnvGraphConcurrency, EnvGraphMaxAttempts, EnvGraphRequestTimeout,
		EnvVerifyTimeout, EnvSecretID, EnvLogLevel,
	}
}

// Config is the rotator's validated configuration.
type Config struct {
	// KMSKeyID selects KMS GenerateDataKeyPair; empty means crypto/rsa.
	KMSKeyID string
	// AccessTokenSecretID names the secret holding the Graph token. The
	// secret document's access_token_secret_id overrides it.
	AccessTokenSecretID string
	GraphBaseURL        string
	// GraphVersion is the default; the document's graph_api_version overrides it.
	GraphVersion        string
	GraphConcurrency    int
	GraphMaxAttempts    int
	GraphRequestTimeout time.Duration
	// VerifyTimeout bounds testSecret's polling of Meta; it is further capped
	// by the invocation's remaining time less the rollback reserve.
	VerifyTimeout time.Duration
	// SecretID is the default secret of operator commands.
	SecretID string
	LogLevel slog.Level
}

// Defaults.
const (
	DefaultGraphConcurrency    = 8
	DefaultGraphMaxAttempts    = 5
	DefaultGraphRequestTimeout = 10 * time.Second
	DefaultVerifyTimeout       = 90 * time.Second
)

// Error names the variable, the problem with its value and the fix.
type Error struct {
	Variable string
	Value    string
	Problem  string
	Fix      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("config: %s=%q: %s; fix: %s", e.Variable, e.Value, e.Problem, e.Fix)
}

// Load reads the configuration through getenv (os.Getenv in production) and
// reports every invalid variable at once.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		KMSKeyID:            strings.TrimSpace(getenv(EnvKMSKeyID)),
		AccessTokenSecretID: strings.TrimSpace(getenv(EnvAccessTokenSecretID)),
		GraphBaseURL:        graph.DefaultBaseURL,
		GraphVersion:        graph.DefaultVersion,
		GraphConcurrency:    DefaultGraphConcurrency,
		GraphMaxAttempts:    DefaultGraphMaxAttempts,
		GraphRequestTimeout: DefaultGraphRequestTimeout,
		VerifyTimeout:       DefaultVerifyTimeout,
		SecretID:            strings.TrimSpace(getenv(EnvSecretID)),
		LogLevel:            slog.LevelInfo,
	}
	var errs []error
	if v := getenv(EnvGraphBaseURL); v != "" {
		if err := graph.ValidateBaseURL(v); err != nil {
			// graph's error already names the variable and the fix.
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
		c.GraphBaseURL = v
	}
	if v := getenv(EnvGraphVersion); v != "" {
		if err := graph.ValidateVersion(v); err != nil {
			errs = append(errs, &Error{EnvGraphVersion, v, "is not a Graph API version", `set it like "v24.0", or unset it for the default ` + graph.DefaultVersion})
		}
		c.GraphVersion = v
	}
	intVar := func(name string, dst *int, lo, hi int) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, &Error{name, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi), fmt.Sprintf("set it in that range, or unset it for the default %d", *dst)})
			return
		}
		*dst = n
	}
	durVar := func(name string, dst *time.Duration, lo, hi time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			errs = append(errs, &Error{name, v, fmt.Sprintf("must be a Go duration from %s to %s", lo, hi), fmt.Sprintf(`set it like "30s" or "2m", or unset it for the default %s`, *dst)})
			return
		}
		*dst = d
	}
	intVar(EnvGraphConcurrency, &c.GraphConcurrency, 1, 64)
	intVar(EnvGraphMaxAttempts, &c.GraphMaxAttempts, 1, 10)
	durVar(EnvGraphRequestTimeout, &c.GraphRequestTimeout, time.Second, 2*time.Minute)
	durVar(EnvVerifyTimeout, &c.VerifyTimeout, time.Second, 14*time.Minute)
	if v := getenv(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, &Error{EnvLogLevel, v, "is not a log level", "use DEBUG, INFO, WARN or ERROR"})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
