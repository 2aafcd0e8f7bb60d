// Package config reads the functions' settings from environment variables:
// the rotator's (Load) and the Flows endpoint's (LoadEndpoint). Every
// setting has a documented default; a missing or invalid one fails at
// start-up with an error that names the variable, so a bad deploy fails on
// its first invocation instead of half-way through a rotation or a Flow.
//
// That includes settings that are valid alone but can never fit together
// in the function's timeout (FUNCTION_TIMEOUT): setSecret's uploads, all
// GRAPH_MAX_ATTEMPTS of GRAPH_REQUEST_TIMEOUT, or testSecret's
// VERIFY_TIMEOUT and its last read, each followed by the rollback reserve
// and the report reserve. The steps plan the same split at run time from
// the invocation's real deadline; this check only refuses a plan that
// could never be kept.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
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
	EnvFunctionTimeout     = "FUNCTION_TIMEOUT"
	EnvSecretID            = "SECRET_ID"
	EnvLogLevel            = "LOG_LEVEL"
	// KMS custody (config.key_custody "kms"): the roles each custody key's
	// policy names, and how long a retired key waits before deletion.
	EnvCustodyKeyRotatorRoleARN  = "CUSTODY_KEY_ROTATOR_ROLE_ARN"
	EnvCustodyKeyDecryptRoleARNs = "CUSTODY_KEY_DECRYPT_ROLE_ARNS"
	EnvCustodyKeyDeletionDays    = "CUSTODY_KEY_DELETION_DAYS"
)

// Names lists every variable the rotator reads, in documentation order.
func Names() []string {
	return []string{
		EnvKMSKeyID, EnvAccessTokenSecretID, EnvGraphBaseURL, EnvGraphVersion,
		EnvGraphConcurrency, EnvGraphMaxAttempts, EnvGraphRequestTimeout,
		EnvVerifyTimeout, EnvFunctionTimeout, EnvSecretID, EnvLogLevel,
		EnvCustodyKeyRotatorRoleARN, EnvCustodyKeyDecryptRoleARNs, EnvCustodyKeyDeletionDays,
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
	// FunctionTimeout is the Lambda function's timeout, which Lambda does
	// not show a function at init; the steps read their real deadline from
	// the invocation.
	FunctionTimeout time.Duration
	// SecretID is the default secret of operator commands.
	SecretID string
	LogLevel slog.Level
	// CustodyKeyRotatorRoleARN and CustodyKeyDecryptRoleARNs are the IAM
	// roles a new KMS custody key's policy lets manage and decrypt with it
	// (the rotator's own role; the endpoint's and any other consumer's).
	// Both empty: this function cannot create custody keys, and a secret
	// whose config.key_custody is "kms" fails createSecret saying so.
	CustodyKeyRotatorRoleARN  string
	CustodyKeyDecryptRoleARNs []string
	// CustodyKeyDeletionDays is the waiting period of a retired custody key.
	CustodyKeyDeletionDays int
	// Fleet is the fleet's configuration (FleetNames); the zero value, the
	// fleet off, when FLEET_NAME is empty.
	Fleet Fleet
}

// Defaults.
const (
	DefaultGraphConcurrency    = 8
	DefaultGraphMaxAttempts    = 5
	DefaultGraphRequestTimeout = 10 * time.Second
	DefaultVerifyTimeout       = 90 * time.Second
	// DefaultFunctionTimeout is infra/'s and template.yaml's Lambda timeout.
	DefaultFunctionTimeout = 300 * time.Second
	// DefaultRollbackReserve is the least time a step keeps back for
	// putting the current key back (see RollbackReserve).
	DefaultRollbackReserve = 20 * time.Second
	// ReportReserve is the time a step keeps back at the very end to log
	// and return its report.
	ReportReserve = 2 * time.Second
	// DefaultCustodyKeyDeletionDays is KMS's own default waiting period.
	DefaultCustodyKeyDeletionDays = 30
)

// RollbackReserve is the time a step keeps back for putting the current
// key back: 20 s, or one whole GRAPH_REQUEST_TIMEOUT if that is longer, so
// a rollback upload can always run its first attempt in full.
func (c Config) RollbackReserve() time.Duration {
	return max(DefaultRollbackReserve, c.GraphRequestTimeout)
}

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
		FunctionTimeout:     DefaultFunctionTimeout,
		SecretID:            strings.TrimSpace(getenv(EnvSecretID)),
		LogLevel:            slog.LevelInfo,
		// 7-30 days, the range KMS allows.
		CustodyKeyDeletionDays: DefaultCustodyKeyDeletionDays,
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
	durVar(EnvFunctionTimeout, &c.FunctionTimeout, 3*time.Second, 15*time.Minute)
	intVar(EnvCustodyKeyDeletionDays, &c.CustodyKeyDeletionDays, 7, 30)
	if v := getenv(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, &Error{EnvLogLevel, v, "is not a log level", "use DEBUG, INFO, WARN or ERROR"})
		}
	}
	errs = append(errs, c.loadCustodyRoles(getenv)...)
	var fleetErrs []error
	c.Fleet, fleetErrs = loadFleet(getenv)
	errs = append(errs, fleetErrs...)
	if len(errs) == 0 {
		errs = c.checkTimePlan(getenv)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// roleARNRE is an IAM role ARN (a path is allowed).
var roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// loadCustodyRoles reads the custody key roles: role ARNs, all or none.
func (c *Config) loadCustodyRoles(getenv func(string) string) []error {
	const fix = "set it to an IAM role ARN like arn:aws:iam::111122223333:role/flowkey-rotator (infra/ sets it), or unset both custody role variables for PEM custody only"
	var errs []error
	if v := strings.TrimSpace(getenv(EnvCustodyKeyRotatorRoleARN)); v != "" {
		if !roleARNRE.MatchString(v) {
			errs = append(errs, &Error{EnvCustodyKeyRotatorRoleARN, v, "is not an IAM role ARN", fix})
		}
		c.CustodyKeyRotatorRoleARN = v
	}
	if v := getenv(EnvCustodyKeyDecryptRoleARNs); strings.TrimSpace(v) != "" {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !roleARNRE.MatchString(part) {
				errs = append(errs, &Error{EnvCustodyKeyDecryptRoleARNs, v, fmt.Sprintf("holds %q, which is not an IAM role ARN", part),
					"list IAM role ARNs separated by commas, the endpoint's role first (infra/ sets it), or unset both custody role variables for PEM custody only"})
				continue
			}
			c.CustodyKeyDecryptRoleARNs = append(c.CustodyKeyDecryptRoleARNs, part)
		}
	}
	switch rot, dec := c.CustodyKeyRotatorRoleARN != "", getenv(EnvCustodyKeyDecryptRoleARNs) != ""; {
	case rot && !dec:
		errs = append(errs, &Error{EnvCustodyKeyDecryptRoleARNs, "", "is empty while " + EnvCustodyKeyRotatorRoleARN + " is set: no one could decrypt with the custody keys",
			"set it to the endpoint's role ARN, or unset " + EnvCustodyKeyRotatorRoleARN})
	case dec && !rot:
		errs = append(errs, &Error{EnvCustodyKeyRotatorRoleARN, "", "is empty while " + EnvCustodyKeyDecryptRoleARNs + " is set: the rotator could not manage the custody keys",
			"set it to the rotator's own role ARN, or unset " + EnvCustodyKeyDecryptRoleARNs})
	}
	return errs
}

// checkTimePlan refuses settings whose worst case can never fit in the
// function's timeout, naming every variable involved.
func (c Config) checkTimePlan(getenv func(string) string) []error {
	// The value as set, or the default in force.
	value := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def + " (the default)"
	}
	reserve := c.RollbackReserve() + ReportReserve
	fit := fmt.Sprintf("plus %s kept back for the rollback and %s for the report, exceed %s=%s", c.RollbackReserve(), ReportReserve, EnvFunctionTimeout, c.FunctionTimeout)
	raise := "or raise the function's timeout and " + EnvFunctionTimeout + " with it (infra/ and template.yaml set both from one constant)"
	var errs []error
	if uploads := time.Duration(c.GraphMaxAttempts) * c.GraphRequestTimeout; uploads+reserve > c.FunctionTimeout {
		errs = append(errs, &Error{EnvGraphMaxAttempts, value(EnvGraphMaxAttempts, strconv.Itoa(c.GraphMaxAttempts)),
			fmt.Sprintf("%d attempts of %s=%s, %s in all, %s: setSecret could never make them all", c.GraphMaxAttempts, EnvGraphRequestTimeout, c.GraphRequestTimeout, uploads, fit),
			"lower " + EnvGraphMaxAttempts + " or " + EnvGraphRequestTimeout + ", " + raise})
	}
	if verify := c.VerifyTimeout + c.GraphRequestTimeout; verify+reserve > c.FunctionTimeout {
		errs = append(errs, &Error{EnvVerifyTimeout, value(EnvVerifyTimeout, c.VerifyTimeout.String()),
			fmt.Sprintf("polling that long, with a last read of up to %s=%s, %s: testSecret could never poll that long", EnvGraphRequestTimeout, c.GraphRequestTimeout, fit),
			"lower " + EnvVerifyTimeout + ", " + raise})
	}
	return errs
}
