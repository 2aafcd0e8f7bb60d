package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/backend"
)

var minimalEndpoint = map[string]string{EnvKeySecretID: "flowkey/key", EnvAppSecretID: "flowkey/app", EnvBackendFunction: "flows-backend"}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestEndpointDefaults(t *testing.T) {
	c, err := LoadEndpoint(env(minimalEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{KeySecretID: "flowkey/key", AppSecretID: "flowkey/app", BackendFunction: "flows-backend",
		BackendTimeout: 6 * time.Second, KeyringTTL: 5 * time.Minute, KeyringRefreshFloor: time.Second,
		MaxBodyBytes: 1 << 20, LogLevel: slog.LevelInfo}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestEveryEndpointVariableIsRead(t *testing.T) {
	c, err := LoadEndpoint(env(map[string]string{
		EnvKeySecretID: "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key-AbCdEf", EnvAppSecretID: "app",
		EnvSkipSignatureCheck: "local-tests-only", EnvBackendURL: "https://flows.example.com/x", EnvBackendTimeout: "2s",
		EnvKeyringTTL: "1m", EnvKeyringRefreshFloor: "1s", EnvMaxBodyBytes: "65536", EnvLogLevel: "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{KeySecretID: "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key-AbCdEf", AppSecretID: "app",
		SkipSignatureCheck: true, BackendURL: "https://flows.example.com/x", BackendTimeout: 2 * time.Second,
		KeyringTTL: time.Minute, KeyringRefreshFloor: time.Second, MaxBodyBytes: 65536, LogLevel: slog.LevelDebug}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if len(EndpointNames()) != 10 {
		t.Errorf("EndpointNames() lists %d variables, LoadEndpoint reads 10", len(EndpointNames()))
	}
}

func TestTheSignatureCheckIsOffOnlyForTheExactValue(t *testing.T) {
	c, err := LoadEndpoint(env(with(minimalEndpoint, EnvAppSecretID, "", EnvSkipSignatureCheck, "local-tests-only")))
	if err != nil || !c.SkipSignatureCheck || c.AppSecretID != "" {
		t.Fatalf("got %+v, %v", c, err)
	}
	for _, v := range []string{"true", "1", "yes", "LOCAL-TESTS-ONLY", " local-tests-only"} {
		_, err := LoadEndpoint(env(with(minimalEndpoint, EnvSkipSignatureCheck, v)))
		var ce *Error
		if !errors.As(err, &ce) || ce.Variable != EnvSkipSignatureCheck {
			t.Errorf("%q: %v", v, err)
		}
	}
}

func TestInvalidEndpointValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		env        map[string]string
		name, want string
	}{
		{with(minimalEndpoint, EnvKeySecretID, ""), EnvKeySecretID, "is required"},
		{with(minimalEndpoint, EnvAppSecretID, ""), EnvAppSecretID, "is required"},
		{with(minimalEndpoint, EnvBackendFunction, ""), EnvBackendFunction, "both empty"},
		{with(minimalEndpoint, EnvBackendURL, "https://x.example.com"), EnvBackendURL, "exactly one of them"},
		{with(minimalEndpoint, EnvBackendFunction, "", EnvBackendURL, "http://flows.example.com/"), EnvBackendURL, "not loopback"},
		{with(minimalEndpoint, EnvBackendTimeout, "10s"), EnvBackendTimeout, "from 1s to 8s"},
		{with(minimalEndpoint, EnvBackendTimeout, "500ms"), EnvBackendTimeout, "from 1s to 8s"},
		{with(minimalEndpoint, EnvKeyringTTL, "2h"), EnvKeyringTTL, "from 1s to 1h0m0s"},
		{with(minimalEndpoint, EnvKeyringRefreshFloor, "10ms"), EnvKeyringRefreshFloor, "from 100ms to 5m0s"},
		{with(minimalEndpoint, EnvKeyringTTL, "10s", EnvKeyringRefreshFloor, "30s"), EnvKeyringRefreshFloor, "longer than KEYRING_TTL"},
		{with(minimalEndpoint, EnvMaxBodyBytes, "7000000"), EnvMaxBodyBytes, "from 4096 to 6291456"},
		{with(minimalEndpoint, EnvMaxBodyBytes, "1MB"), EnvMaxBodyBytes, "whole number"},
		{with(minimalEndpoint, EnvLogLevel, "loud"), EnvLogLevel, "not a log level"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.want, func(t *testing.T) {
			_, err := LoadEndpoint(env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tc.name || !strings.Contains(err.Error(), tc.want) || ce.Fix == "" {
				t.Fatalf("want *Error for %s (%s), got %v", tc.name, tc.want, err)
			}
		})
	}
}

func TestAllEndpointErrorsAreReportedAtOnce(t *testing.T) {
	_, err := LoadEndpoint(env(map[string]string{EnvBackendTimeout: "1m", EnvMaxBodyBytes: "0", EnvSkipSignatureCheck: "yes"}))
	for _, name := range []string{EnvKeySecretID, EnvAppSecretID, EnvBackendFunction, EnvBackendTimeout, EnvMaxBodyBytes, EnvSkipSignatureCheck} {
		if err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
}

// checkBackendURL repeats backend.ValidateURL (see its comment): the two
// must agree on every URL.
func TestBackendURLRuleMatchesTheAdapter(t *testing.T) {
	for _, u := range []string{
		"https://flows.example.com/endpoint", "https://flows.example.com:8443/x?y=1", "http://127.0.0.1:8080/flow",
		"http://localhost/x", "http://[::1]:9/x", "", "flows.example.com/endpoint", "http://flows.example.com/",
		"http://10.0.0.1/", "ftp://flows.example.com/", "https://user:hunter2@flows.example.com", "https://flows.example.com/#x",
		"https://flows.example.com/%zz", "mailto:x@example.com", "HTTPS://flows.example.com/",
	} {
		problem, _ := checkBackendURL(u)
		if adapter := backend.ValidateURL(u); (problem == "") != (adapter == nil) {
			t.Errorf("%q: config says %q, the adapter %v", u, problem, adapter)
		}
	}
	_, err := LoadEndpoint(env(with(minimalEndpoint, EnvBackendFunction, "", EnvBackendURL, "http://user:hunter2@flows.example.com/")))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
}
