package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The environment variables the Flows endpoint (functions/endpoint) reads.
const (
	EnvKeySecretID            = "KEY_SECRET_ID"
	EnvAppSecretID            = "APP_SECRET_ID"
	EnvSkipSignatureCheck     = "INSECURE_SKIP_SIGNATURE_CHECK"
	EnvBackendFunction        = "BACKEND_FUNCTION"
	EnvBackendURL             = "BACKEND_URL"
	EnvBackendTimeout         = "BACKEND_TIMEOUT"
	EnvKeyringTTL             = "KEYRING_TTL"
	EnvKeyringRefreshFloor    = "KEYRING_REFRESH_FLOOR"
	EnvMaxBodyBytes           = "MAX_BODY_BYTES"
	SkipSignatureCheckEnabled = "local-tests-only" // the one value that turns the check off
)

// EndpointNames lists every variable the endpoint reads, in documentation
// order.
func EndpointNames() []string {
	return []string{
		EnvKeySecretID, EnvAppSecretID, EnvSkipSignatureCheck, EnvBackendFunction, EnvBackendURL,
		EnvBackendTimeout, EnvKeyringTTL, EnvKeyringRefreshFloor, EnvMaxBodyBytes, EnvLogLevel,
	}
}

// Endpoint defaults.
const (
	DefaultBackendTimeout      = 6 * time.Second
	DefaultKeyringTTL          = 5 * time.Minute
	DefaultKeyringRefreshFloor = time.Second
	DefaultMaxBodyBytes        = 1 << 20
	// MaxBodyBytesLimit is Lambda's own limit on a synchronous request.
	MaxBodyBytesLimit = 6 << 20
)

// Endpoint is the Flows endpoint's validated configuration.
type Endpoint struct {
	// KeySecretID is the flowkey key secret whose labelled versions hold
	// the private keys.
	KeySecretID string
	// AppSecretID names the secret holding the Meta app secret; empty only
	// when SkipSignatureCheck is set.
	AppSecretID string
	// SkipSignatureCheck turns X-Hub-Signature-256 off (local tests only).
	SkipSignatureCheck bool
	// Exactly one of BackendFunction and BackendURL is set.
	BackendFunction     string
	BackendURL          string
	BackendTimeout      time.Duration
	KeyringTTL          time.Duration
	KeyringRefreshFloor time.Duration
	MaxBodyBytes        int
	LogLevel            slog.Level
	// Fleet is the fleet's configuration (EndpointFleetNames); the zero
	// value, the fleet off, when FLEET_NAME is empty.
	Fleet EndpointFleet
}

// LoadEndpoint reads the endpoint's configuration through getenv and
// reports every invalid variable at once, as Load does.
func LoadEndpoint(getenv func(string) string) (Endpoint, error) {
	c := Endpoint{
		KeySecretID:         strings.TrimSpace(getenv(EnvKeySecretID)),
		AppSecretID:         strings.TrimSpace(getenv(EnvAppSecretID)),
		BackendFunction:     strings.TrimSpace(getenv(EnvBackendFunction)),
		BackendURL:          strings.TrimSpace(getenv(EnvBackendURL)),
		BackendTimeout:      DefaultBackendTimeout,
		KeyringTTL:          DefaultKeyringTTL,
		KeyringRefreshFloor: DefaultKeyringRefreshFloor,
		MaxBodyBytes:        DefaultMaxBodyBytes,
		LogLevel:            slog.LevelInfo,
	}
	var errs []error
	add := func(name, value, problem, fix string) { errs = append(errs, &Error{name, value, problem, fix}) }
	if c.KeySecretID == "" {
		add(EnvKeySecretID, "", "is required", "set it to the name or ARN of the flowkey key secret (the stack's SecretArn output)")
	}
	switch v := getenv(EnvSkipSignatureCheck); v {
	case "":
	case SkipSignatureCheckEnabled:
		c.SkipSignatureCheck = true
	default:
		add(EnvSkipSignatureCheck, v, "is neither empty nor "+strconv.Quote(SkipSignatureCheckEnabled),
			"unset it (the X-Hub-Signature-256 check stays on, as it must in any deployment); only local tests set it to "+strconv.Quote(SkipSignatureCheckEnabled))
	}
	if c.AppSecretID == "" && !c.SkipSignatureCheck {
		add(EnvAppSecretID, "", "is required: it holds the Meta app secret that X-Hub-Signature-256 is checked with",
			`set it to the name or ARN of a secret holding the app secret (bare, or {"app_secret":"..."})`)
	}
	switch {
	case c.BackendFunction == "" && c.BackendURL == "":
		add(EnvBackendFunction, "", "and "+EnvBackendURL+" are both empty; the endpoint needs a backend",
			"set "+EnvBackendFunction+" to a Lambda function name or ARN, or "+EnvBackendURL+" to an https:// URL")
	case c.BackendFunction != "" && c.BackendURL != "":
		add(EnvBackendURL, redactURL(c.BackendURL), "is set together with "+EnvBackendFunction+"; exactly one of them may be set",
			"keep the one backend the endpoint should call")
	case c.BackendURL != "":
		if problem, fix := checkBackendURL(c.BackendURL); problem != "" {
			add(EnvBackendURL, redactURL(c.BackendURL), problem, fix)
		}
	}
	durVar := func(name string, dst *time.Duration, lo, hi time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			add(name, v, fmt.Sprintf("must be a Go duration from %s to %s", lo, hi), fmt.Sprintf(`set it like "5s", or unset it for the default %s`, *dst))
			return
		}
		*dst = d
	}
	// Meta allows 10 s end to end; 8 s leaves room for the rest.
	durVar(EnvBackendTimeout, &c.BackendTimeout, time.Second, 8*time.Second)
	durVar(EnvKeyringTTL, &c.KeyringTTL, time.Second, time.Hour)
	durVar(EnvKeyringRefreshFloor, &c.KeyringRefreshFloor, 100*time.Millisecond, 5*time.Minute)
	if c.KeyringRefreshFloor > c.KeyringTTL {
		add(EnvKeyringRefreshFloor, c.KeyringRefreshFloor.String(), "is longer than "+EnvKeyringTTL+" ("+c.KeyringTTL.String()+")",
			"keep the floor shorter than the TTL, e.g. the defaults 1s and 5m")
	}
	if v := getenv(EnvMaxBodyBytes); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4096 || n > MaxBodyBytesLimit {
			add(EnvMaxBodyBytes, v, fmt.Sprintf("must be a whole number of bytes from 4096 to %d", MaxBodyBytesLimit),
				fmt.Sprintf("set it in that range, or unset it for the default %d", DefaultMaxBodyBytes))
		} else {
			c.MaxBodyBytes = n
		}
	}
	if v := getenv(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			add(EnvLogLevel, v, "is not a log level", "use DEBUG, INFO, WARN or ERROR")
		}
	}
	var fleetErrs []error
	c.Fleet, fleetErrs = loadEndpointFleet(getenv)
	errs = append(errs, fleetErrs...)
	if err := errors.Join(errs...); err != nil {
		return Endpoint{}, err
	}
	return c, nil
}

// checkBackendURL is internal/backend.ValidateURL's rule, kept here so that
// the rotator, which shares this package, does not link the Lambda client (a
// test keeps the two in step): https://, or http:// to loopback only, with
// no user info or fragment.
func checkBackendURL(s string) (problem, fix string) {
	const fixHTTPS = "use the https:// URL of your backend, like https://flows.example.com/endpoint"
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a URL", fixHTTPS
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "is not an absolute URL with a scheme and a host", fixHTTPS
	case u.User != nil:
		return "contains user info", "remove the user@ part; the gateway signs each call with X-Flowkey-Signature-256"
	case u.Fragment != "":
		return "has a fragment", "remove everything from the #"
	case u.Scheme == "https":
		return "", ""
	case u.Scheme != "http":
		return "has scheme " + strconv.Quote(u.Scheme) + ", not https", fixHTTPS
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback() {
		return "", ""
	}
	return "uses http:// to a host that is not loopback, so the users' data would cross the network in clear text",
		"use https://; plain http is allowed only to 127.0.0.0/8, ::1 and localhost (a local sample backend)"
}

// redactURL hides a password before the URL reaches an error.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}
