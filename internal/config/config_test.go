package config

import (
	"errors"
	"log/slog"
	"reflect"
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
		c.GraphMaxAttempts != 5 || c.GraphRequestTimeout != 10*time.Second || c.VerifyTimeout != 90*time.Second || c.FunctionTimeout != 300*time.Second ||
		c.LogLevel != slog.LevelInfo || c.KMSKeyID != "" || c.CustodyKeyRotatorRoleARN != "" || c.CustodyKeyDecryptRoleARNs != nil || c.CustodyKeyDeletionDays != 30 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestEveryVariableIsRead(t *testing.T) {
	c, err := Load(env(map[string]string{
		EnvKMSKeyID: "alias/flowkey", EnvAccessTokenSecretID: "tok", EnvGraphBaseURL: "http://127.0.0.1:9",
		EnvGraphVersion: "v23.0", EnvGraphConcurrency: "2", EnvGraphMaxAttempts: "3", EnvGraphRequestTimeout: "3s",
		EnvVerifyTimeout: "20s", EnvFunctionTimeout: "2m", EnvSecretID: "flowkey/key", EnvLogLevel: "debug",
		EnvCustodyKeyRotatorRoleARN:  "arn:aws:iam::111122223333:role/flowkey-rotator",
		EnvCustodyKeyDecryptRoleARNs: "arn:aws:iam::111122223333:role/flowkey-endpoint, arn:aws:iam::111122223333:role/path/other",
		EnvCustodyKeyDeletionDays:    "7",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{KMSKeyID: "alias/flowkey", AccessTokenSecretID: "tok", GraphBaseURL: "http://127.0.0.1:9", GraphVersion: "v23.0",
		GraphConcurrency: 2, GraphMaxAttempts: 3, GraphRequestTimeout: 3 * time.Second, VerifyTimeout: 20 * time.Second,
		FunctionTimeout: 2 * time.Minute, SecretID: "flowkey/key", LogLevel: slog.LevelDebug,
		CustodyKeyRotatorRoleARN:  "arn:aws:iam::111122223333:role/flowkey-rotator",
		CustodyKeyDecryptRoleARNs: []string{"arn:aws:iam::111122223333:role/flowkey-endpoint", "arn:aws:iam::111122223333:role/path/other"},
		CustodyKeyDeletionDays:    7}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if len(Names()) != 14 {
		t.Errorf("Names() lists %d variables, Load reads 14", len(Names()))
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
		{EnvFunctionTimeout, "16m", "Go duration"},
		{EnvLogLevel, "loud", "not a log level"},
		{EnvCustodyKeyDeletionDays, "6", "from 7 to 30"},
		{EnvCustodyKeyDeletionDays, "31", "from 7 to 30"},
		{EnvCustodyKeyRotatorRoleARN, "arn:aws:iam::111122223333:user/alice", "is not an IAM role ARN"},
		{EnvCustodyKeyRotatorRoleARN, "flowkey-rotator", "is not an IAM role ARN"},
		{EnvCustodyKeyDecryptRoleARNs, "arn:aws:iam::111122223333:role/a,,", `holds "", which is not an IAM role ARN`},
		{EnvCustodyKeyDecryptRoleARNs, "arn:aws:kms:us-east-1:111122223333:key/x", "which is not an IAM role ARN"},
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

// A configuration whose plan can never fit in the function's timeout fails
// at start-up, naming the variables that do not fit together. The
// function's timeout is not visible at init in Lambda: FUNCTION_TIMEOUT
// carries it, set by infra/ and template.yaml from the same constant.
func TestConfigurationThatCanNeverFitFailsAtStartUp(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none: it loads
	}{
		{name: "the defaults fit the deployed 300 s", env: nil},
		{name: "the local stack tests' settings fit 60 s", env: map[string]string{"FUNCTION_TIMEOUT": "60s", "GRAPH_MAX_ATTEMPTS": "3", "VERIFY_TIMEOUT": "3s"}},
		{name: "5 attempts of 10 s and a rollback do not fit 60 s", env: map[string]string{"FUNCTION_TIMEOUT": "60s", "VERIFY_TIMEOUT": "20s"},
			want: []string{"GRAPH_MAX_ATTEMPTS=\"5 (the default)\"", "GRAPH_REQUEST_TIMEOUT=10s", "FUNCTION_TIMEOUT=1m0s", "50s", "fix:"}},
		{name: "a verification that cannot fit", env: map[string]string{"VERIFY_TIMEOUT": "5m"},
			want: []string{"VERIFY_TIMEOUT=\"5m\"", "GRAPH_REQUEST_TIMEOUT=10s", "FUNCTION_TIMEOUT=5m0s", "fix:"}},
		{name: "10 attempts of 2 minutes", env: map[string]string{"GRAPH_MAX_ATTEMPTS": "10", "GRAPH_REQUEST_TIMEOUT": "2m", "FUNCTION_TIMEOUT": "15m"},
			want: []string{"GRAPH_MAX_ATTEMPTS=\"10\"", "GRAPH_REQUEST_TIMEOUT=2m0s", "FUNCTION_TIMEOUT=15m0s"}},
		{name: "a timeout that is not a duration", env: map[string]string{"FUNCTION_TIMEOUT": "300"}, want: []string{"FUNCTION_TIMEOUT=\"300\"", "Go duration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want it to load, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestCustodyRolesComeTogether: a key policy needs both the rotator and
// someone who decrypts; one without the other is a deploy mistake.
func TestCustodyRolesComeTogether(t *testing.T) {
	for set, missing := range map[string]string{
		EnvCustodyKeyRotatorRoleARN:  EnvCustodyKeyDecryptRoleARNs,
		EnvCustodyKeyDecryptRoleARNs: EnvCustodyKeyRotatorRoleARN,
	} {
		_, err := Load(env(map[string]string{set: "arn:aws:iam::111122223333:role/r"}))
		var ce *Error
		if !errors.As(err, &ce) || ce.Variable != missing || !strings.Contains(err.Error(), "is empty while "+set+" is set") {
			t.Errorf("only %s: %v", set, err)
		}
	}
}
