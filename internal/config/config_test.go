package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.GraphBaseURL != "https://graph.facebook.com" || c.GraphVersion != "v24.0" || c.GraphConcurrency != 8 ||
		c.GraphMaxAttempts != 5 || c.GraphRequestTimeout != 10*time.Second || c.VerifyTimeout != 90*time.Second ||
		c.LogLevel != slog.LevelInfo || c.KMSKeyID != "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestEveryVariableIsRead(t *testing.T) {
	c, err := Load(env(map[string]string{
		EnvKMSKeyID: "alias/flowkey", EnvAccessTokenSecretID: "tok", EnvGraphBaseURL: "http://127.0.0.1:9",
		EnvGraphVersion: "v23.0", EnvGraphConcurrency: "2", EnvGraphMaxAttempts: "3", EnvGraphRequestTimeout: "3s",
		EnvVerifyTimeout: "20s", EnvSecretID: "flowkey/key", EnvLogLevel: "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{KMSKeyID: "alias/flowkey", AccessTokenSecretID: "tok", GraphBaseURL: "http://127.0.0.1:9", GraphVersion: "v23.0",
		GraphConcurrency: 2, GraphMaxAttempts: 3, GraphRequestTimeout: 3 * time.Second, VerifyTimeout: 20 * time.Second,
		SecretID: "flowkey/key", LogLevel: slog.LevelDebug}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if len(Names()) != 10 {
		t.Errorf("Names() lists %d variables, Load reads 10", len(Names()))
	}
}

func TestInvalidValuesNameTheVariable(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{EnvGraphVersion, "24", "is not a Graph API version"},
		{EnvGraphConcurrency, "0", "from 1 to 64"},
		{EnvGraphConcurrency, "eight", "from 1 to 64"},
		{EnvGraphMaxAttempts, "11", "from 1 to 10"},
		{EnvGraphRequestTimeout, "10", "Go duration"},
		{EnvVerifyTimeout, "1h", "Go duration"},
		{EnvLogLevel, "loud", "not a log level"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tc.name: tc.value}))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tc.name {
				t.Fatalf("want *Error for %s, got %v", tc.name, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("error %q lacks %q or a fix", err, tc.want)
			}
		})
	}
}

func TestAllErrorsAreReportedAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{EnvGraphConcurrency: "x", EnvLogLevel: "y"}))
	if err == nil || !strings.Contains(err.Error(), EnvGraphConcurrency) || !strings.Contains(err.Error(), EnvLogLevel) {
		t.Fatalf("want both variables named, got %v", err)
	}
}

func TestPlainHTTPToARemoteGraphIsRefused(t *testing.T) {
	_, err := Load(env(map[string]string{EnvGraphBaseURL: "http://graph.example.com"}))
	if err == nil || !strings.Contains(err.Error(), EnvGraphBaseURL) || !strings.Contains(err.Error(), "not a loopback host") {
		t.Fatalf("want the variable and the reason, got %v", err)
	}
	if _, err := Load(env(map[string]string{EnvGraphBaseURL: "http://127.0.0.1:8080"})); err != nil {
		t.Fatalf("loopback http must be allowed: %v", err)
	}
}
