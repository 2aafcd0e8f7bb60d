package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/graph"
)

// fakeSettings builds settings from a context map and an environment map.
func fakeSettings(ctx map[string]any, env map[string]string) settings {
	return settings{
		context: func(k string) any { return ctx[k] },
		getenv:  func(k string) string { return env[k] },
	}
}

// TestPropsFromSettings is one table of settings, accepted or rejected
// with the error that names them; its length is the table's, one row per case.
func TestPropsFromSettings(t *testing.T) {
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	noBootstrap := t.TempDir()
	base := func() map[string]string {
		return map[string]string{
			settingPhoneNumberIDs.Env: "106540352242922",
			settingTokenSecretARN.Env: testTokenARN,
			settingCodePath.Env:       code,
		}
	}
	with := func(kv ...string) map[string]string {
		env := base()
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	// A value someone might paste into the ARN setting by mistake.
	const pastedToken = "EAAGm0PX4ZCpsBAKZCZCtokenvalueZDZD"

	tests := []struct {
		name    string
		ctx     map[string]any
		env     map[string]string
		want    func(t *testing.T, p *RotationStackProps)
		wantErr []string // substrings of the error; nil means success
		secret  string   // must not appear in the error
	}{
		{
			name: "defaults",
			env:  base(),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.SecretName != DefaultSecretName || p.GraphAPIVersion != graph.DefaultVersion ||
					p.Schedule != DefaultSchedule || p.RotationWindow != DefaultRotationWindow || p.AlertEmail != "" || p.WABAID != "" ||
					p.StatusSchedule != DefaultStatusSchedule || !p.statusScheduleOn() {
					t.Errorf("defaults not applied: %+v", p)
				}
			},
		},
		{
			name: "context wins over environment; JSON array of IDs",
			ctx: map[string]any{
				settingPhoneNumberIDs.Context: []any{"1", " 2 "},
				settingSchedule.Context:       "rate(4 hours)",
				settingWindow.Context:         "3h",
			},
			env: with(settingSchedule.Env, "rate(7 days)"),
			want: func(t *testing.T, p *RotationStackProps) {
				if strings.Join(p.PhoneNumberIDs, ",") != "1,2" || p.Schedule != "rate(4 hours)" || p.RotationWindow != "3h" {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "comma-separated and JSON string lists",
			ctx:  map[string]any{settingPhoneNumberIDs.Context: `["11","22"]`},
			env:  with(settingPhoneNumberIDs.Env, "33, 44"),
			want: func(t *testing.T, p *RotationStackProps) {
				if strings.Join(p.PhoneNumberIDs, ",") != "11,22" {
					t.Errorf("PhoneNumberIDs = %v", p.PhoneNumberIDs)
				}
			},
		},
		{
			name: "WABA instead of numbers, cron schedule, e-mail",
			env: with(settingPhoneNumberIDs.Env, "", settingWABAID.Env, "102290129340398",
				settingSchedule.Env, "cron(0 4 ? * MON *)", settingAlertEmail.Env, "ops@example.com"),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.WABAID != "102290129340398" || len(p.PhoneNumberIDs) != 0 || p.AlertEmail != "ops@example.com" {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "status schedule off",
			env:  with(settingStatusSchedule.Env, "off"),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.StatusSchedule != StatusScheduleOff || p.statusScheduleOn() {
					t.Errorf("StatusSchedule = %q, on = %v; want off", p.StatusSchedule, p.statusScheduleOn())
				}
			},
		},
		{
			name: "status schedule OFF in the context wins over the environment",
			ctx:  map[string]any{settingStatusSchedule.Context: " OFF "},
			env:  with(settingStatusSchedule.Env, "rate(2 hours)"),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.statusScheduleOn() {
					t.Errorf("StatusSchedule %q is on", p.StatusSchedule)
				}
			},
		},
		{name: "status rate of minutes", env: with(settingStatusSchedule.Env, "rate(30 minutes)"), wantErr: []string{settingStatusSchedule.Context, settingStatusSchedule.Env, "more often than hourly", `"off"`}},
		{name: "status rate plural", env: with(settingStatusSchedule.Env, "rate(2 hour)"), wantErr: []string{settingStatusSchedule.Env, `"2 hours"`}},
		{name: "status rate singular", env: with(settingStatusSchedule.Env, "rate(1 days)"), wantErr: []string{settingStatusSchedule.Env, `"1 day"`}},
		{name: "status rate zero", env: with(settingStatusSchedule.Env, "rate(0 hours)"), wantErr: []string{settingStatusSchedule.Env, "at least 1"}},
		{name: "status cron every 5 minutes", env: with(settingStatusSchedule.Env, "cron(0/5 * * * ? *)"), wantErr: []string{settingStatusSchedule.Env, "minutes field"}},
		{name: "status cron minute 60", env: with(settingStatusSchedule.Env, "cron(60 * * * ? *)"), wantErr: []string{settingStatusSchedule.Env, "minutes field"}},
		{name: "status cron both days", env: with(settingStatusSchedule.Env, "cron(0 * * * MON *)"), wantErr: []string{settingStatusSchedule.Env, "exactly one of day-of-month"}},
		{name: "status cron neither day", env: with(settingStatusSchedule.Env, "cron(0 * ? * ? *)"), wantErr: []string{settingStatusSchedule.Env, "exactly one of day-of-month"}},
		{name: "status cron five fields", env: with(settingStatusSchedule.Env, "cron(0 * * * ?)"), wantErr: []string{settingStatusSchedule.Env, "neither rate(...), cron(...) nor off"}},
		{name: "status schedule words", env: with(settingStatusSchedule.Env, "hourly"), wantErr: []string{settingStatusSchedule.Env, `"hourly"`}},
		// Accepted before the heartbeat alarm: CloudWatch cannot watch a
		// month-long gap (7 days at most).
		{name: "status monthly", env: with(settingStatusSchedule.Env, "cron(15 */6 1 * ? *)"), wantErr: []string{settingStatusSchedule.Env, "heartbeat alarm", "at most 167"}},
		{name: "status weekly", env: with(settingStatusSchedule.Env, "rate(7 days)"), wantErr: []string{settingStatusSchedule.Env, "168 hours"}},
		{name: "status schedule of the wrong type", ctx: map[string]any{settingStatusSchedule.Context: false}, env: base(), wantErr: []string{settingStatusSchedule.Context, "bool"}},
		{name: "phone number IDs", env: with(settingPhoneNumberIDs.Env, "106540352242922,abc,,106540352242922"), wantErr: []string{settingPhoneNumberIDs.Env + "): config.phone_number_ids[1]", "[2]: is empty", "[3]", "duplicates"}},
		{name: "WABA ID", env: with(settingPhoneNumberIDs.Env, "", settingWABAID.Env, "waba-1"), wantErr: []string{settingWABAID.Env + "): config.waba_id"}},
		{name: "neither numbers nor WABA", env: with(settingPhoneNumberIDs.Env, ""), wantErr: []string{settingPhoneNumberIDs.Context, settingWABAID.Env, "fix:"}},
		{name: "numbers and WABA", env: with(settingWABAID.Env, "1"), wantErr: []string{settingPhoneNumberIDs.Env, settingWABAID.Context, "only one"}},
		{name: "token ARN missing", env: with(settingTokenSecretARN.Env, ""), wantErr: []string{settingTokenSecretARN.Context, settingTokenSecretARN.Env, "is not set"}},
		{name: "token ARN without suffix", env: with(settingTokenSecretARN.Env, "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token"), wantErr: []string{settingTokenSecretARN.Env, "6-character suffix"}},
		{name: "token pasted instead of ARN", env: with(settingTokenSecretARN.Env, pastedToken), wantErr: []string{settingTokenSecretARN.Env, "not the token"}, secret: pastedToken},
		{name: "Graph version", env: with(settingGraphVersion.Env, "24"), wantErr: []string{settingGraphVersion.Env, `"24"`}},
		{name: "secret name characters", env: with(settingSecretName.Env, "flowkey key"), wantErr: []string{settingSecretName.Env}},
		{name: "secret name with a suffix-like ending", env: with(settingSecretName.Env, "flowkey/key-AbCdEf"), wantErr: []string{settingSecretName.Env, "six characters"}},
		{name: "rate under 4 hours", env: with(settingSchedule.Env, "rate(2 hours)"), wantErr: []string{settingSchedule.Env, "4 hours"}},
		{name: "rate plural", env: with(settingSchedule.Env, "rate(1 days)"), wantErr: []string{settingSchedule.Env, "1 day"}},
		{name: "rate over 1000 days", env: with(settingSchedule.Env, "rate(1001 days)"), wantErr: []string{settingSchedule.Env, "1-1000"}},
		{name: "cron minutes", env: with(settingSchedule.Env, "cron(15 3 ? * SUN *)"), wantErr: []string{settingSchedule.Env, "minutes field"}},
		{name: "cron fields", env: with(settingSchedule.Env, "cron(0 3 * *)"), wantErr: []string{settingSchedule.Env, "neither rate"}},
		{name: "schedule words", env: with(settingSchedule.Env, "weekly"), wantErr: []string{settingSchedule.Env}},
		{name: "window format", env: with(settingWindow.Env, "2 hours"), wantErr: []string{settingWindow.Env, "1h to 24h"}},
		{name: "window too long", env: with(settingWindow.Env, "25h"), wantErr: []string{settingWindow.Env, "outside"}},
		{name: "window not shorter than rate", env: with(settingSchedule.Env, "rate(4 hours)", settingWindow.Env, "4h"), wantErr: []string{settingWindow.Env, "shorter"}},
		{name: "e-mail", env: with(settingAlertEmail.Env, "ops at example"), wantErr: []string{settingAlertEmail.Env}},
		{name: "no build", env: with(settingCodePath.Env, noBootstrap), wantErr: []string{settingCodePath.Env, "make build-arm64"}},
		{name: "context value of the wrong type", ctx: map[string]any{settingSchedule.Context: 30.0}, env: base(), wantErr: []string{settingSchedule.Context, "float64"}},
		{name: "list element of the wrong type", ctx: map[string]any{settingPhoneNumberIDs.Context: []any{1.0}}, env: base(), wantErr: []string{settingPhoneNumberIDs.Context, "element 0"}},
		// Issue 10: the platform settings.
		{
			name: "platform settings from the environment",
			env: with(settingTags.Env, "team=payments, cost-center=1234", settingPermissionsBoundary.Env, testBoundaryARN,
				settingRoleNamePrefix.Env, "app-", settingLogRetention.Env, "731", settingLogKeyARN.Env, testLogKeyARN,
				settingTerminationProtection.Env, "true", settingTokenKeyARN.Env, testTokenKeyARN,
				settingSubnetIDs.Env, "subnet-0a1b2c3d4e5f60718,subnet-08f7e6d5c4b3a2910", settingSecurityGroupIDs.Env, "sg-0123456789abcdef0",
				settingVPCID.Env, testVPCID, settingVPCEndpoints.Env, "TRUE", settingAlertTopicARN.Env, testAlertTopicARN,
				settingRetainedSecretNames.Env, "flowkey/old-name"),
			want: func(t *testing.T, p *RotationStackProps) {
				assertEqual(t, "tags", p.Tags, testTags)
				assertEqual(t, "network", p.Network, Network{SubnetIDs: testSubnetIDs, SecurityGroupIDs: testSGIDs, VPCID: testVPCID, CreateEndpoints: true})
				if p.PermissionsBoundaryARN != testBoundaryARN || p.RoleNamePrefix != "app-" || p.LogRetentionDays != 731 || p.LogKeyARN != testLogKeyARN ||
					!p.TerminationProtection || p.AccessTokenSecretKeyARN != testTokenKeyARN || p.AlertTopicARN != testAlertTopicARN ||
					strings.Join(p.RetainedSecretNames, ",") != "flowkey/old-name" {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "platform settings as JSON context values",
			ctx: map[string]any{
				settingTags.Context: map[string]any{"team": "payments"}, settingTerminationProtection.Context: true,
				settingLogRetention.Context: 30.0, settingSubnetIDs.Context: []any{"subnet-0a1b2c3d"}, settingSecurityGroupIDs.Context: `["sg-0a1b2c3d"]`,
			},
			env: with(settingLogRetention.Env, "731"),
			want: func(t *testing.T, p *RotationStackProps) {
				assertEqual(t, "tags", p.Tags, map[string]string{"team": "payments"})
				if !p.TerminationProtection || p.LogRetentionDays != 30 || len(p.Network.SubnetIDs) != 1 || p.Network.SecurityGroupIDs[0] != "sg-0a1b2c3d" || p.Network.CreateEndpoints {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "platform defaults",
			env:  base(),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.LogRetentionDays != DefaultLogRetentionDays || p.TerminationProtection || len(p.Tags) != 0 || p.Network.enabled() ||
					p.PermissionsBoundaryARN != "" || p.RoleNamePrefix != "" || p.adoptsSecret() || p.ExistingKeyARN != "" {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "an adopted secret names itself",
			env:  with(settingExistingSecretARN.Env, testExistingSecretARN, settingExistingKeyARN.Env, testExistingKeyARN),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.SecretName != "flowkey/whatsapp-flows-key" || !p.adoptsSecret() || p.ExistingKeyARN != testExistingKeyARN {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "an adopted key alone: the stack creates the secret under it",
			env:  with(settingExistingKeyARN.Env, testExistingKeyARN),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.adoptsSecret() || p.ExistingKeyARN != testExistingKeyARN {
					t.Errorf("got %+v", p)
				}
			},
		},
		{name: "adopted secret without its key", env: with(settingExistingSecretARN.Env, testExistingSecretARN), wantErr: []string{settingExistingKeyARN.Env, "is not set", "KmsKeyId"}},
		{name: "adopted secret under another name", env: with(settingExistingSecretARN.Env, testExistingSecretARN, settingExistingKeyARN.Env, testExistingKeyARN, settingSecretName.Env, "other"), wantErr: []string{settingSecretName.Env, `"other" is not "flowkey/whatsapp-flows-key"`}},
		{name: "adopted secret ARN without suffix", env: with(settingExistingSecretARN.Env, "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key", settingExistingKeyARN.Env, testExistingKeyARN), wantErr: []string{settingExistingSecretARN.Env, "6-character suffix"}},
		{name: "adopted key as an alias", env: with(settingExistingKeyARN.Env, "arn:aws:kms:us-east-1:111122223333:alias/flowkey/FlowkeyRotation"), wantErr: []string{settingExistingKeyARN.Env, "is an alias", "KeyArn output"}},
		{name: "retained name is the current one", env: with(settingRetainedSecretNames.Env, DefaultSecretName), wantErr: []string{settingRetainedSecretNames.Env, "the secret's name or listed twice"}},
		{name: "retained name as an ARN", env: with(settingRetainedSecretNames.Env, "flowkey/old-AbCdEf"), wantErr: []string{settingRetainedSecretNames.Env, "not a secret name"}},
		{name: "token key as an alias", env: with(settingTokenKeyARN.Env, "alias/graph-token"), wantErr: []string{settingTokenKeyARN.Env, "is an alias"}},
		{name: "token key in another region than the token", env: with(settingTokenKeyARN.Env, "arn:aws:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"), wantErr: []string{settingTokenKeyARN.Env, "111122223333/eu-west-1", "111122223333/us-east-1"}},
		{name: "tag reserved by AWS", env: with(settingTags.Env, "aws:team=x"), wantErr: []string{settingTags.Env, "reserves"}},
		{name: "tag without a value", env: with(settingTags.Env, "team"), wantErr: []string{settingTags.Env, `"team" is not key=value`}},
		{name: "tag key twice", env: with(settingTags.Env, "a=1,a=2"), wantErr: []string{settingTags.Env, "twice"}},
		{name: "tag value too long", env: with(settingTags.Env, "a="+strings.Repeat("x", 257)), wantErr: []string{settingTags.Env, "not a tag value"}},
		{name: "tags of the wrong type", ctx: map[string]any{settingTags.Context: map[string]any{"a": 1.0}}, env: base(), wantErr: []string{settingTags.Context, "float64"}},
		{name: "tags as broken JSON", env: with(settingTags.Env, `{"a":1}`), wantErr: []string{settingTags.Env, "JSON object of strings"}},
		{name: "permissions boundary not a policy", env: with(settingPermissionsBoundary.Env, "flowkey-boundary"), wantErr: []string{settingPermissionsBoundary.Env, "managed policy"}},
		{name: "role name prefix", env: with(settingRoleNamePrefix.Env, "app/"), wantErr: []string{settingRoleNamePrefix.Env, "role names"}},
		{name: "log retention CloudWatch does not offer", env: with(settingLogRetention.Env, "42"), wantErr: []string{settingLogRetention.Env, "42 is not a retention", "365"}},
		{name: "log retention not a number", env: with(settingLogRetention.Env, "a year"), wantErr: []string{settingLogRetention.Env, "whole number"}},
		{name: "log retention fraction", ctx: map[string]any{settingLogRetention.Context: 1.5}, env: base(), wantErr: []string{settingLogRetention.Context, "whole number"}},
		{name: "log key", env: with(settingLogKeyARN.Env, "aws/logs"), wantErr: []string{settingLogKeyARN.Env, "not a KMS key ARN"}},
		{name: "termination protection", env: with(settingTerminationProtection.Env, "yes"), wantErr: []string{settingTerminationProtection.Env, "true or false"}},
		{name: "FIFO alert topic", env: with(settingAlertTopicARN.Env, "arn:aws:sns:us-east-1:111122223333:alerts.fifo"), wantErr: []string{settingAlertTopicARN.Env, "standard (not FIFO)"}},
		{name: "alert topic and e-mail", env: with(settingAlertTopicARN.Env, testAlertTopicARN, settingAlertEmail.Env, "ops@example.com"), wantErr: []string{settingAlertEmail.Env, settingAlertTopicARN.Context, "existing topic's side"}},
		{name: "subnets without security groups", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d"), wantErr: []string{settingSecurityGroupIDs.Env, "is not set"}},
		{name: "security groups without subnets", env: with(settingSecurityGroupIDs.Env, "sg-0a1b2c3d"), wantErr: []string{settingSubnetIDs.Env, "is not set"}},
		{name: "subnet ID", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d,private-a", settingSecurityGroupIDs.Env, "sg-0a1b2c3d"), wantErr: []string{settingSubnetIDs.Env, `[1] "private-a"`}},
		{name: "subnet twice", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d,subnet-0a1b2c3d", settingSecurityGroupIDs.Env, "sg-0a1b2c3d"), wantErr: []string{settingSubnetIDs.Env, "twice"}},
		{name: "too many security groups", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d", settingSecurityGroupIDs.Env, "sg-00000001,sg-00000002,sg-00000003,sg-00000004,sg-00000005,sg-00000006"), wantErr: []string{settingSecurityGroupIDs.Env, "at most 5"}},
		{name: "endpoints without the VPC", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d", settingSecurityGroupIDs.Env, "sg-0a1b2c3d", settingVPCEndpoints.Env, "true"), wantErr: []string{settingVPCID.Env, "endpoints and their security group"}},
		{name: "endpoints without subnets", env: with(settingVPCEndpoints.Env, "true", settingVPCID.Env, testVPCID), wantErr: []string{settingVPCEndpoints.Env, "leave the endpoints off"}},
		{name: "VPC without subnets", env: with(settingVPCID.Env, testVPCID), wantErr: []string{settingVPCID.Env, "is set, but"}},
		{name: "VPC ID", env: with(settingSubnetIDs.Env, "subnet-0a1b2c3d", settingSecurityGroupIDs.Env, "sg-0a1b2c3d", settingVPCID.Env, "main"), wantErr: []string{settingVPCID.Env, `"main"`}},
		{
			name: "every platform problem at once",
			env: with(settingTags.Env, "aws:x=1", settingLogRetention.Env, "2", settingSubnetIDs.Env, "subnet-0a1b2c3d",
				settingExistingSecretARN.Env, testExistingSecretARN),
			wantErr: []string{settingTags.Env, settingLogRetention.Env, settingSecurityGroupIDs.Env, settingExistingKeyARN.Env},
		},
		// Issue 11: the Flows endpoint.
		{
			name: "endpoint off: its code path alone asks for nothing",
			env:  base(),
			want: func(t *testing.T, p *RotationStackProps) {
				if p.endpointOn() || p.Endpoint != (FlowsEndpoint{CodePath: DefaultEndpointCodePath}) {
					t.Errorf("Endpoint = %+v, on = %v", p.Endpoint, p.endpointOn())
				}
			},
		},
		{
			name: "endpoint with a backend function, from the environment",
			env: with(settingEndpointBackendFunctionARN.Env, testBackendFunctionARN, settingAppSecretARN.Env, testAppSecretARN,
				settingEndpointCodePath.Env, code),
			want: func(t *testing.T, p *RotationStackProps) {
				if want := (FlowsEndpoint{BackendFunctionARN: testBackendFunctionARN, AppSecretARN: testAppSecretARN, CodePath: code}); p.Endpoint != want || !p.endpointOn() {
					t.Errorf("Endpoint = %+v, want %+v", p.Endpoint, want)
				}
			},
		},
		{
			name: "endpoint with a backend URL and the app secret's key, context over environment",
			ctx: map[string]any{settingEndpointBackendURL.Context: testBackendURL, settingAppSecretARN.Context: testAppSecretARN,
				settingAppSecretKeyARN.Context: testAppSecretKeyARN, settingEndpointCodePath.Context: code},
			env: with(settingEndpointBackendURL.Env, "https://other.example.com/"),
			want: func(t *testing.T, p *RotationStackProps) {
				if want := (FlowsEndpoint{BackendURL: testBackendURL, AppSecretARN: testAppSecretARN, AppSecretKeyARN: testAppSecretKeyARN, CodePath: code}); p.Endpoint != want {
					t.Errorf("Endpoint = %+v, want %+v", p.Endpoint, want)
				}
			},
		},
		{name: "endpoint: a backend without the app secret", env: with(settingEndpointBackendFunctionARN.Env, testBackendFunctionARN, settingEndpointCodePath.Env, code),
			wantErr: []string{settingAppSecretARN.Env, "is not set, but " + settingEndpointBackendFunctionARN.Context, "X-Hub-Signature-256", "create-secret", "without it"}},
		{name: "endpoint: the app secret without a backend", env: with(settingAppSecretARN.Env, testAppSecretARN, settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendFunctionARN.Env, settingEndpointBackendURL.Context, "but " + settingAppSecretARN.Context + " is", "needs a backend"}},
		{name: "endpoint: the app secret's key alone", env: with(settingAppSecretKeyARN.Env, testAppSecretKeyARN, settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendFunctionARN.Env, settingAppSecretARN.Env, "but " + settingAppSecretKeyARN.Context + " is"}},
		{name: "endpoint: two backends", env: with(settingEndpointBackendFunctionARN.Env, testBackendFunctionARN, settingEndpointBackendURL.Env, testBackendURL,
			settingAppSecretARN.Env, testAppSecretARN, settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendURL.Env, "together with", settingEndpointBackendFunctionARN.Context}},
		{name: "endpoint: a function name instead of its ARN", env: with(settingEndpointBackendFunctionARN.Env, "flows-backend", settingAppSecretARN.Env, testAppSecretARN,
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendFunctionARN.Env, `"flows-backend" is not a Lambda function ARN`, "get-function"}},
		{name: "endpoint: a backend over http", env: with(settingEndpointBackendURL.Env, "http://flows.example.com/endpoint", settingAppSecretARN.Env, testAppSecretARN,
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendURL.Env, `scheme "http", not https`}},
		{name: "endpoint: a backend over http to loopback", env: with(settingEndpointBackendURL.Env, "http://127.0.0.1:8080/", settingAppSecretARN.Env, testAppSecretARN,
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendURL.Env, "not https"}},
		{name: "endpoint: a backend URL with a password", env: with(settingEndpointBackendURL.Env, "https://flows:Sup3rS3cretPassw0rd@flows.example.com/", settingAppSecretARN.Env, testAppSecretARN,
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendURL.Env, "user info"}, secret: "Sup3rS3cretPassw0rd"},
		{name: "endpoint: a relative backend URL", env: with(settingEndpointBackendURL.Env, "flows.example.com/endpoint", settingAppSecretARN.Env, testAppSecretARN,
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingEndpointBackendURL.Env, "absolute URL"}},
		{name: "endpoint: the app secret pasted instead of its ARN", env: with(settingEndpointBackendURL.Env, testBackendURL, settingAppSecretARN.Env, "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99",
			settingEndpointCodePath.Env, code),
			wantErr: []string{settingAppSecretARN.Env, "not the app secret", "6-character suffix"}, secret: "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"},
		{name: "endpoint: the app secret's key as an alias", env: with(settingEndpointBackendURL.Env, testBackendURL, settingAppSecretARN.Env, testAppSecretARN,
			settingAppSecretKeyARN.Env, "alias/meta-app", settingEndpointCodePath.Env, code),
			wantErr: []string{settingAppSecretKeyARN.Env, "is an alias"}},
		{name: "endpoint: the app secret's key elsewhere than the secret", env: with(settingEndpointBackendURL.Env, testBackendURL, settingAppSecretARN.Env, testAppSecretARN,
			settingAppSecretKeyARN.Env, strings.Replace(testAppSecretKeyARN, "us-east-1", "eu-west-1", 1), settingEndpointCodePath.Env, code),
			wantErr: []string{settingAppSecretKeyARN.Env, "111122223333/eu-west-1", "111122223333/us-east-1"}},
		{name: "endpoint: no build", env: with(settingEndpointBackendURL.Env, testBackendURL, settingAppSecretARN.Env, testAppSecretARN, settingEndpointCodePath.Env, noBootstrap),
			wantErr: []string{settingEndpointCodePath.Env, "make build-arm64"}},
		{
			name:    "every problem at once",
			env:     with(settingTokenSecretARN.Env, "", settingSchedule.Env, "weekly", settingWindow.Env, "0h"),
			wantErr: []string{settingTokenSecretARN.Env, settingSchedule.Env, settingWindow.Env},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := propsFromSettings(fakeSettings(tc.ctx, tc.env))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.want(t, p)
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q; props %+v", tc.wantErr, p)
			}
			if p != nil {
				t.Errorf("props %+v returned with an error", p)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret[:12]) {
				t.Errorf("error quotes the pasted secret: %q", err)
			}
		})
	}
}

// Every accepted status schedule reaches the props unchanged.
func TestStatusScheduleAccepted(t *testing.T) {
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "bootstrap"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{
		"rate(1 hour)", "rate(6 hours)", "rate(1 day)", "rate(60 minutes)", "rate(120 minutes)",
		"cron(0 * * * ? *)", "cron(59 8 ? * MON-FRI *)", "cron(15 */6 ? * MON-FRI *)", "rate(6 days)",
	} {
		p, err := propsFromSettings(fakeSettings(nil, map[string]string{
			settingPhoneNumberIDs.Env: "106540352242922",
			settingTokenSecretARN.Env: testTokenARN,
			settingCodePath.Env:       code,
			settingStatusSchedule.Env: expr,
		}))
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if p.StatusSchedule != expr || !p.statusScheduleOn() {
			t.Errorf("%s: StatusSchedule = %q, on = %v", expr, p.StatusSchedule, p.statusScheduleOn())
		}
	}
}

// Props built in Go have no default: an empty StatusSchedule is an error,
// not a silent "off".
func TestValidateEmptyStatusSchedule(t *testing.T) {
	p := &RotationStackProps{StatusSchedule: ""}
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), settingStatusSchedule.Context+`" (or environment variable `+settingStatusSchedule.Env+`): is empty`) {
		t.Errorf("Validate = %v, want the empty status schedule named", err)
	}
}

func TestStackName(t *testing.T) {
	for _, tc := range []struct {
		value, want string
		ok          bool
	}{
		{"", DefaultStackName, true},
		{"Flowkey-Prod", "Flowkey-Prod", true},
		{"1flowkey", "", false},
		{"flowkey_prod", "", false},
	} {
		got, err := stackNameFromSettings(fakeSettings(nil, map[string]string{settingStackName.Env: tc.value}))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("stack name %q: got %q, %v", tc.value, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), settingStackName.Context) {
			t.Errorf("error %q does not name the setting", err)
		}
	}
}

func TestValidateNilProps(t *testing.T) {
	var p *RotationStackProps
	if err := p.Validate(); err == nil {
		t.Error("nil props validated")
	}
}

// Item 4 of issue 10: what flowkey cannot use outside the stack's account
// and region fails synthesis, not the first rotation.
func TestEnvironmentChecks(t *testing.T) {
	const (
		tokenEU = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:flowkey/graph-token-AbCdEf"
		tokenX  = "arn:aws:secretsmanager:us-east-1:999988887777:secret:flowkey/graph-token-AbCdEf"
	)
	base := func() *RotationStackProps {
		return &RotationStackProps{AccessTokenSecretARN: testTokenARN}
	}
	for _, tc := range []struct {
		name            string
		change          func(p *RotationStackProps)
		stack           string
		region, account string
		wantErr         []string
	}{
		{name: "all in the stack's environment", change: func(p *RotationStackProps) {
			p.ExistingSecretARN, p.ExistingKeyARN, p.LogKeyARN = testExistingSecretARN, testExistingKeyARN, testLogKeyARN
		}, region: testRegion, account: testAccount},
		{name: "an alert topic of another account is fine", change: func(p *RotationStackProps) { p.AlertTopicARN = testAlertTopicARN }, region: testRegion, account: testAccount},
		{name: "token in another region", change: func(p *RotationStackProps) { p.AccessTokenSecretARN = tokenEU }, region: testRegion, account: testAccount,
			wantErr: []string{settingTokenSecretARN.Env, "region eu-west-1, not the stack's region us-east-1", "replicate-secret-to-regions", "first rotation"}},
		{name: "token in another account", change: func(p *RotationStackProps) { p.AccessTokenSecretARN = tokenX }, region: testRegion, account: testAccount,
			wantErr: []string{settingTokenSecretARN.Env, "account 999988887777, not the stack's account 111122223333"}},
		{name: "adopted secret and key elsewhere", change: func(p *RotationStackProps) {
			p.ExistingSecretARN = strings.Replace(testExistingSecretARN, "us-east-1", "eu-west-1", 1)
			p.ExistingKeyARN = strings.Replace(testExistingKeyARN, "111122223333", "999988887777", 1)
		}, region: testRegion, account: testAccount, wantErr: []string{settingExistingSecretARN.Env, "region eu-west-1", settingExistingKeyARN.Env, "account 999988887777"}},
		{name: "alert topic and log key in another region", change: func(p *RotationStackProps) {
			p.AlertTopicARN = strings.Replace(testAlertTopicARN, "us-east-1", "eu-west-1", 1)
			p.LogKeyARN = strings.Replace(testLogKeyARN, "us-east-1", "eu-west-1", 1)
		}, region: testRegion, account: testAccount, wantErr: []string{settingAlertTopicARN.Env, settingLogKeyARN.Env, "its own region"}},
		{name: "environment-agnostic: the ARNs agree", change: func(p *RotationStackProps) {
			p.ExistingSecretARN, p.ExistingKeyARN = testExistingSecretARN, testExistingKeyARN
		}},
		{name: "environment-agnostic: the ARNs disagree", change: func(p *RotationStackProps) {
			p.ExistingSecretARN = strings.Replace(testExistingSecretARN, "us-east-1", "eu-west-1", 1)
		}, wantErr: []string{settingExistingSecretARN.Env, "region eu-west-1, but", settingTokenSecretARN.Context, "us-east-1"}},
		{name: "role name too long", change: func(p *RotationStackProps) { p.RoleNamePrefix = strings.Repeat("p", 30) },
			stack: strings.Repeat("S", 20), region: testRegion, account: testAccount,
			wantErr: []string{settingRoleNamePrefix.Env, "68 characters, IAM allows 64", settingStackName.Context}},
		{name: "role name too long for any region", change: func(p *RotationStackProps) { p.RoleNamePrefix = strings.Repeat("p", 22) },
			stack: strings.Repeat("S", 20), wantErr: []string{settingRoleNamePrefix.Env, "65 characters"}},
		// Issue 11: the endpoint's settings.
		{name: "endpoint in the stack's environment, its backend in another account", change: func(p *RotationStackProps) {
			p.Endpoint = FlowsEndpoint{AppSecretARN: testAppSecretARN, AppSecretKeyARN: testAppSecretKeyARN,
				BackendFunctionARN: strings.Replace(testBackendFunctionARN, "111122223333", "999988887777", 1)}
		}, region: testRegion, account: testAccount},
		{name: "app secret in another region", change: func(p *RotationStackProps) {
			p.Endpoint = FlowsEndpoint{AppSecretARN: strings.Replace(testAppSecretARN, "us-east-1", "eu-west-1", 1), BackendURL: testBackendURL}
		}, region: testRegion, account: testAccount, wantErr: []string{settingAppSecretARN.Env, "region eu-west-1, not the stack's region us-east-1", "every request would fail"}},
		{name: "app secret and its key in another account", change: func(p *RotationStackProps) {
			p.Endpoint = FlowsEndpoint{AppSecretARN: strings.Replace(testAppSecretARN, "111122223333", "999988887777", 1),
				AppSecretKeyARN: strings.Replace(testAppSecretKeyARN, "111122223333", "999988887777", 1), BackendURL: testBackendURL}
		}, region: testRegion, account: testAccount, wantErr: []string{settingAppSecretARN.Env, settingAppSecretKeyARN.Env, "account 999988887777, not the stack's account"}},
		{name: "backend function in another region", change: func(p *RotationStackProps) {
			p.Endpoint = FlowsEndpoint{AppSecretARN: testAppSecretARN, BackendFunctionARN: strings.Replace(testBackendFunctionARN, "us-east-1", "eu-west-1", 1)}
		}, region: testRegion, account: testAccount, wantErr: []string{settingEndpointBackendFunctionARN.Env, "region eu-west-1", "Lambda API of its own region"}},
		{name: "environment-agnostic: the backend function elsewhere than the token", change: func(p *RotationStackProps) {
			p.Endpoint = FlowsEndpoint{AppSecretARN: testAppSecretARN, BackendFunctionARN: strings.Replace(testBackendFunctionARN, "us-east-1", "eu-west-1", 1)}
		}, wantErr: []string{settingEndpointBackendFunctionARN.Env, "region eu-west-1, but", settingTokenSecretARN.Context}},
		// "-endpoint-" is one character longer than "-rotator-": a prefix the
		// rotator's name fits may not fit the endpoint's.
		{name: "endpoint role name too long", change: func(p *RotationStackProps) {
			p.RoleNamePrefix = strings.Repeat("p", 26)
			p.Endpoint = FlowsEndpoint{AppSecretARN: testAppSecretARN, BackendURL: testBackendURL}
		}, stack: strings.Repeat("S", 20), region: testRegion, account: testAccount,
			wantErr: []string{settingRoleNamePrefix.Env, "the endpoint's role name", "65 characters, IAM allows 64"}},
		{name: "the same prefix fits without the endpoint", change: func(p *RotationStackProps) { p.RoleNamePrefix = strings.Repeat("p", 26) },
			stack: strings.Repeat("S", 20), region: testRegion, account: testAccount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.change(p)
			stack := tc.stack
			if stack == "" {
				stack = DefaultStackName
			}
			err := p.checkEnvironment(stack, tc.region, tc.account)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
