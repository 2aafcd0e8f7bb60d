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
		"cron(0 * * * ? *)", "cron(59 8 ? * MON-FRI *)", "cron(15 */6 1 * ? *)",
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
