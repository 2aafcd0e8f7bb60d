package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/fleet"
)

// The fleet's variables (internal/fleet). The fleet is off when FLEET_NAME
// is empty, and then every other one must be unset too: a deployment of
// today sets none of them and sees no change. infra/ sets them only with
// its fleet setting on, so Names and EndpointNames do not list them.
const (
	EnvFleetName              = "FLEET_NAME"
	EnvFleetSecretPrefix      = "FLEET_SECRET_PREFIX"
	EnvFleetTokenPrefix       = "FLEET_TOKEN_PREFIX"
	EnvFleetAppSecretPrefix   = "FLEET_APP_SECRET_PREFIX"
	EnvFleetKMSKeyID          = "FLEET_KMS_KEY_ID"
	EnvFleetRotationWindow    = "FLEET_ROTATION_WINDOW"
	EnvFleetStatusConcurrency = "FLEET_STATUS_CONCURRENCY"
	// EnvEndpointRingCache is the endpoint's bound on the tenants' key
	// rings it keeps in memory.
	EnvEndpointRingCache = "ENDPOINT_RING_CACHE"
)

// FleetNames lists the rotator's fleet variables, in documentation order.
func FleetNames() []string {
	return []string{EnvFleetName, EnvFleetSecretPrefix, EnvFleetTokenPrefix, EnvFleetAppSecretPrefix,
		EnvFleetKMSKeyID, EnvFleetRotationWindow, EnvFleetStatusConcurrency}
}

// EndpointFleetNames lists the endpoint's fleet variables.
func EndpointFleetNames() []string {
	return []string{EnvFleetName, EnvFleetSecretPrefix, EnvFleetAppSecretPrefix, EnvEndpointRingCache}
}

// Fleet defaults.
const (
	DefaultFleetStatusConcurrency = 8
	DefaultEndpointRingCache      = 256
	// MaxEndpointRingCache bounds the memory the rings may take (about
	// 20 KiB each; internal/tenants).
	MaxEndpointRingCache = 100_000
)

// Fleet is the rotator's fleet configuration; the zero value is the fleet
// off.
type Fleet struct {
	// Name is the fleet's tag value (the stack name); "" means off.
	Name string
	// SecretPrefix names the tenants' secrets: <SecretPrefix><tenant>.
	SecretPrefix string
	// TokenPrefix is where a tenant's own Graph token secret must live.
	TokenPrefix string
	// AppSecretPrefix is where a tenant's own Meta app secret must live;
	// "" allows none (one app secret for the fleet).
	AppSecretPrefix string
	// KMSKeyID encrypts the tenants' secrets; "" is the account's
	// aws/secretsmanager key.
	KMSKeyID string
	// RotationWindow is each tenant's window, in whole hours.
	RotationWindow time.Duration
	// StatusConcurrency bounds the tenants a fleet status reads at once.
	StatusConcurrency int
}

// On reports whether the fleet is on.
func (f Fleet) On() bool { return f.Name != "" }

// EndpointFleet is the endpoint's fleet configuration; the zero value is
// the fleet off (every path is the single KEY_SECRET_ID, as before).
type EndpointFleet struct {
	Name            string
	SecretPrefix    string
	AppSecretPrefix string
	// RingCache bounds the tenants' key rings kept in memory.
	RingCache int
}

// On reports whether the fleet is on.
func (f EndpointFleet) On() bool { return f.Name != "" }

var (
	fleetNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// A prefix of secret names, ending with "/" so that one tenant's name
	// is never the start of another's.
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_+=.@-][A-Za-z0-9/_+=.@-]{0,254}/$`)
)

// loadFleetBase reads what the rotator and the endpoint share: the name and
// the prefixes. names are the variables the caller reads.
func loadFleetBase(getenv func(string) string, names []string) (name, secretPrefix, appPrefix string, errs []error) {
	name = strings.TrimSpace(getenv(EnvFleetName))
	if name == "" {
		for _, n := range names {
			if n != EnvFleetName && getenv(n) != "" {
				errs = append(errs, &Error{n, getenv(n), "is set while " + EnvFleetName + " is empty, which turns the fleet off",
					"set " + EnvFleetName + " (the stack name; infra/ sets every fleet variable with its fleet setting on), or unset " + n})
			}
		}
		return "", "", "", errs
	}
	if !fleetNameRE.MatchString(name) {
		errs = append(errs, &Error{EnvFleetName, name, "must be 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or digit",
			"set it to the stack name (infra/ does)"})
	}
	prefix := func(env, def, example, unset string) string {
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return def
		}
		if !prefixRE.MatchString(v) {
			errs = append(errs, &Error{env, v, "is not a prefix of secret names ending with \"/\"", fmt.Sprintf("set it like %q, or unset it %s", example, unset)})
		}
		return v
	}
	secretPrefix = prefix(EnvFleetSecretPrefix, fleet.DefaultSecretPrefix, fleet.DefaultSecretPrefix, "for the default "+strconv.Quote(fleet.DefaultSecretPrefix))
	appPrefix = prefix(EnvFleetAppSecretPrefix, "", "flowkey/app-secrets/", "for one app secret for the whole fleet (APP_SECRET_ID)")
	return name, secretPrefix, appPrefix, errs
}

// loadFleet reads the rotator's fleet variables.
func loadFleet(getenv func(string) string) (Fleet, []error) {
	name, secretPrefix, appPrefix, errs := loadFleetBase(getenv, FleetNames())
	if name == "" {
		return Fleet{}, errs
	}
	f := Fleet{Name: name, SecretPrefix: secretPrefix, AppSecretPrefix: appPrefix, TokenPrefix: fleet.DefaultTokenPrefix,
		KMSKeyID: strings.TrimSpace(getenv(EnvFleetKMSKeyID)), RotationWindow: fleet.DefaultWindow, StatusConcurrency: DefaultFleetStatusConcurrency}
	if v := strings.TrimSpace(getenv(EnvFleetTokenPrefix)); v != "" {
		if !prefixRE.MatchString(v) {
			errs = append(errs, &Error{EnvFleetTokenPrefix, v, "is not a prefix of secret names ending with \"/\"",
				fmt.Sprintf("set it like %q, or unset it for that default", fleet.DefaultTokenPrefix)})
		}
		f.TokenPrefix = v
	}
	// IAM grants each prefix by its own pattern: one inside another would
	// let a tenant's configuration name another tenant's key secret as its
	// token secret, or the other way round.
	others := map[string]string{EnvFleetTokenPrefix: f.TokenPrefix, EnvFleetAppSecretPrefix: f.AppSecretPrefix}
	for _, env := range []string{EnvFleetTokenPrefix, EnvFleetAppSecretPrefix} {
		if p := others[env]; p != "" && (strings.HasPrefix(p, f.SecretPrefix) || strings.HasPrefix(f.SecretPrefix, p)) {
			errs = append(errs, &Error{env, p, "overlaps " + EnvFleetSecretPrefix + " (" + f.SecretPrefix + ")",
				"give the tenants' key secrets, their token secrets and their app secrets prefixes that do not contain one another"})
		}
	}
	if v := getenv(EnvFleetRotationWindow); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || !fleet.ValidWindow(d) {
			errs = append(errs, &Error{EnvFleetRotationWindow, v, "must be a whole number of hours from 1h to " + fleet.MaxWindow.String(),
				"set it like \"2h\" (Secrets Manager's windows are whole hours inside one UTC day), or unset it for the default 2h"})
		} else {
			f.RotationWindow = d
		}
	}
	if v := getenv(EnvFleetStatusConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			errs = append(errs, &Error{EnvFleetStatusConcurrency, v, "must be a whole number from 1 to 64",
				fmt.Sprintf("set it in that range, or unset it for the default %d", DefaultFleetStatusConcurrency)})
		} else {
			f.StatusConcurrency = n
		}
	}
	return f, errs
}

// loadEndpointFleet reads the endpoint's fleet variables.
func loadEndpointFleet(getenv func(string) string) (EndpointFleet, []error) {
	name, secretPrefix, appPrefix, errs := loadFleetBase(getenv, EndpointFleetNames())
	if name == "" {
		return EndpointFleet{}, errs
	}
	f := EndpointFleet{Name: name, SecretPrefix: secretPrefix, AppSecretPrefix: appPrefix, RingCache: DefaultEndpointRingCache}
	if v := getenv(EnvEndpointRingCache); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEndpointRingCache {
			errs = append(errs, &Error{EnvEndpointRingCache, v, fmt.Sprintf("must be a whole number of key rings from 1 to %d", MaxEndpointRingCache),
				fmt.Sprintf("set it to about the number of tenants with traffic, or unset it for the default %d", DefaultEndpointRingCache)})
		} else {
			f.RingCache = n
		}
	}
	if p := f.AppSecretPrefix; p != "" && (strings.HasPrefix(p, f.SecretPrefix) || strings.HasPrefix(f.SecretPrefix, p)) {
		errs = append(errs, &Error{EnvFleetAppSecretPrefix, p, "overlaps " + EnvFleetSecretPrefix + " (" + f.SecretPrefix + ")",
			"give the tenants' key secrets and their app secrets prefixes that do not contain one another"})
	}
	return f, errs
}
