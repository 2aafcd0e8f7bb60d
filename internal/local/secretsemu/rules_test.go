package secretsemu

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// TestRotationRulesValidation goes through RotateSecret with
// RotateImmediately=false, so an accepted rule set also shows the
// NextRotationDate the emulator derives from it.
// TestRotationRulesValidation is long for its table: one line per rule AWS
// accepts or refuses, with the next rotation or the message AWS gives.
func TestRotationRulesValidation(t *testing.T) {
	// The test clock starts on Wednesday 2026-03-04 10:30 UTC.
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		rules    types.RotationRulesType
		wantNext time.Time
		wantErr  string // InvalidParameterException message part; "" when valid
	}{
		{name: "days", rules: types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, wantNext: at("2026-04-03T10:30:00Z")},
		{name: "days 1000", rules: types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1000)}, wantNext: at("2028-11-28T10:30:00Z")},
		{name: "days 0", rules: types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(0)}, wantErr: "AutomaticallyAfterDays is 0; it must be between 1 and 1000"},
		{name: "days 1001", rules: types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1001)}, wantErr: "between 1 and 1000"},
		{name: "both", rules: types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30), ScheduleExpression: aws.String("rate(30 days)")},
			wantErr: "You cannot specify both rotation frequency and schedule expression together."},
		{name: "neither", rules: types.RotationRulesType{Duration: aws.String("2h")}, wantErr: "needs AutomaticallyAfterDays or ScheduleExpression"},
		{name: "rate 4 hours", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(4 hours)")}, wantNext: at("2026-03-04T14:30:00Z")},
		{name: "rate 1 day", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(1 day)")}, wantNext: at("2026-03-05T10:30:00Z")},
		{name: "rate 999 days", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(999 days)")}, wantNext: at("2026-03-04T10:30:00Z").Add(999 * 24 * time.Hour)},
		{name: "rate 3 hours", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(3 hours)")}, wantErr: "at most every 4 hours"},
		{name: "rate 1000 days", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(1000 days)")}, wantErr: "between 4 hours and 999 days"},
		{name: "rate 0 days", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(0 days)")}, wantErr: "between 4 hours and 999 days"},
		{name: "rate minutes", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(300 minutes)")}, wantErr: "neither rate(N hours|days) nor cron"},
		{name: "rate with window", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(12 hours)"), Duration: aws.String("12h")}, wantNext: at("2026-03-04T22:30:00Z")},
		{name: "window longer than rate", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(6 hours)"), Duration: aws.String("7h")}, wantErr: `Duration "7h" is longer than the 6h0m0s between rotations`},
		{name: "window 24h on days", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("24h")}, wantNext: at("2026-03-14T10:30:00Z")},
		{name: "window 25h", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("25h")}, wantErr: "from 1h to 24h"},
		{name: "window 0h", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("0h")}, wantErr: "from 1h to 24h"},
		{name: "window in minutes", rules: types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)"), Duration: aws.String("90m")}, wantErr: "from 1h to 24h"},
		{name: "cron daily 16:00", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * ? *)")}, wantNext: at("2026-03-04T16:00:00Z")},
		{name: "cron daily 8:00 is tomorrow", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 8 * * ? *)"), Duration: aws.String("3h")}, wantNext: at("2026-03-05T08:00:00Z")},
		{name: "cron every 12h from 4", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4/12 * * ? *)"), Duration: aws.String("4h")}, wantNext: at("2026-03-04T16:00:00Z")},
		{name: "cron first Sunday", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 0 ? * SUN#1 *)")}, wantNext: at("2026-04-05T00:00:00Z")},
		{name: "cron last day of month", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 L * ? *)")}, wantNext: at("2026-03-31T16:00:00Z")},
		{name: "cron last Friday", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 9 ? * 6L *)")}, wantNext: at("2026-03-27T09:00:00Z")},
		{name: "cron quarterly second Tuesday", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 10 ? FEB,MAY,AUG,NOV TUE#2 *)")}, wantNext: at("2026-05-12T10:00:00Z")},
		{name: "cron weekdays range", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 6 ? * MON-FRI *)")}, wantNext: at("2026-03-05T06:00:00Z")},
		{name: "cron every 7 days from the 1st", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 8 1/7 * ? *)")}, wantNext: at("2026-03-08T08:00:00Z")},
		{name: "cron minutes not 0", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(30 16 * * ? *)")}, wantErr: "the minutes field is \"30\"; it must be 0"},
		{name: "cron year not *", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * ? 2026)")}, wantErr: "the year field is \"2026\"; it must be *"},
		{name: "cron 5 fields", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * ?)")}, wantErr: "has 6 fields"},
		{name: "cron both day fields", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * MON *)")}, wantErr: "exactly one of day-of-month"},
		{name: "cron neither day field", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 ? * ? *)")}, wantErr: "exactly one of day-of-month"},
		{name: "cron every 2 hours", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 */2 * * ? *)")}, wantErr: "fires 2h0m0s apart"},
		{name: "cron 22 and 1 o'clock: 3h over midnight", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 1,22 * * ? *)")}, wantErr: "fires 3h0m0s apart"},
		{name: "cron hour 24", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 24 * * ? *)")}, wantErr: "hours field"},
		{name: "cron never (30 Feb)", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 0 30 2 ? *)")}, wantErr: "matches no time in the coming year"},
		{name: "cron window past midnight", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 22 * * ? *)"), Duration: aws.String("3h")}, wantErr: "would extend into the next UTC day"},
		{name: "cron window over the next one", rules: types.RotationRulesType{ScheduleExpression: aws.String("cron(0 4,10 * * ? *)"), Duration: aws.String("7h")}, wantErr: "longer than the 6h0m0s between rotations"},
		{name: "garbage", rules: types.RotationRulesType{ScheduleExpression: aws.String("every day")}, wantErr: "neither rate(N hours|days) nor cron"},
	}
	e := newEmu(t, Options{Invoker: InvokerFunc(func(context.Context, string, []byte) ([]byte, error) { return nil, nil })})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arn, _ := e.create(t, "rules-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "v")
			_, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{
				SecretId: aws.String(arn), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:rotator"),
				RotationRules: &tc.rules, RotateImmediately: aws.Bool(false),
			})
			d, derr := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
			if derr != nil {
				t.Fatal(derr)
			}
			if tc.wantErr != "" {
				wantAPIError(t, err, "InvalidParameterException", tc.wantErr)
				if d.RotationEnabled != nil || d.RotationRules != nil || len(d.VersionIdsToStages) != 1 {
					t.Errorf("a rejected RotateSecret changed the secret: %+v", d)
				}
				return
			}
			if err != nil {
				t.Fatalf("RotateSecret: %v", err)
			}
			if d.NextRotationDate == nil || !d.NextRotationDate.Equal(tc.wantNext) {
				t.Errorf("NextRotationDate = %v, want %v", d.NextRotationDate, tc.wantNext)
			}
			if !aws.ToBool(d.RotationEnabled) || d.RotationRules == nil || aws.ToString(d.RotationRules.ScheduleExpression) != aws.ToString(tc.rules.ScheduleExpression) ||
				aws.ToString(d.RotationRules.Duration) != aws.ToString(tc.rules.Duration) {
				t.Errorf("stored rules: enabled %v rules %+v", d.RotationEnabled, d.RotationRules)
			}
		})
	}
}

func TestDescribeReportsDaysForRateInDays(t *testing.T) {
	e := newEmu(t, Options{Invoker: InvokerFunc(func(context.Context, string, []byte) ([]byte, error) { return nil, nil })})
	arn, _ := e.create(t, "s", "v")
	if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(arn), RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f"),
		RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")}, RotateImmediately: aws.Bool(false),
	}); err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 10 {
		t.Errorf("AutomaticallyAfterDays for rate(10 days) = %v (%v)", d.RotationRules.AutomaticallyAfterDays, err)
	}
}

func TestCronNext(t *testing.T) {
	from := time.Date(2028, 2, 27, 23, 0, 0, 0, time.UTC) // 2028 is a leap year
	tests := []struct {
		expr string
		want []time.Time
	}{
		{"0 0 L * ? *", []time.Time{
			time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 31, 0, 0, 0, 0, time.UTC), time.Date(2028, 4, 30, 0, 0, 0, 0, time.UTC)}},
		{"0 4/12 * * ? *", []time.Time{
			time.Date(2028, 2, 28, 4, 0, 0, 0, time.UTC), time.Date(2028, 2, 28, 16, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 4, 0, 0, 0, time.UTC)}},
		{"0 12 ? JAN,JUL MON#1 *", []time.Time{
			time.Date(2028, 7, 3, 12, 0, 0, 0, time.UTC), time.Date(2029, 1, 1, 12, 0, 0, 0, time.UTC)}},
		{"0 3 29 FEB ? *", []time.Time{time.Date(2028, 2, 29, 3, 0, 0, 0, time.UTC)}},
		{"0 0,6,12,18 ? * SUN,SAT *", []time.Time{
			time.Date(2028, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 4, 6, 0, 0, 0, time.UTC)}},
		{"0 5 ? * L *", []time.Time{time.Date(2028, 3, 4, 5, 0, 0, 0, time.UTC)}}, // L: Saturday
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			c, err := parseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			at := from
			for _, want := range tc.want {
				got, ok := c.next(at)
				if !ok || !got.Equal(want) {
					t.Fatalf("next(%v) = %v %v, want %v", at, got, ok, want)
				}
				at = got
			}
		})
	}
}
