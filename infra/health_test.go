package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/metrics"
)

// The alarms for what fails silently (issue 10), whole.
func TestSilentFailureAlarms(t *testing.T) {
	l := ids(t)
	fnDims := []any{map[string]any{"Name": "FunctionName", "Value": ref(l.fn)}}
	statusDims := []any{map[string]any{"Name": "Function", "Value": ref(l.fn)}}
	actions := []any{ref(l.topic)}
	for _, tc := range []struct {
		id   string
		want map[string]any
	}{
		{l.throttlesAlarm, map[string]any{
			"AlarmName": testStackName + "-rotator-throttles",
			"AlarmDescription": "flowkey: Lambda throttled the rotator of " + testSecretName +
				"; a throttled step fails the rotation. Raise the account's concurrency quota or the function's reserved concurrency",
			"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Dimensions": fnDims, "Statistic": "Sum", "Period": 300,
			"EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
		}},
		{l.durationAlarm, map[string]any{
			"AlarmName": testStackName + "-rotator-duration",
			"AlarmDescription": "flowkey: a run of the rotator of " + testSecretName +
				" took more than 80% of its 300 s timeout; Meta or Secrets Manager answer slowly, and the next slow run may time out",
			"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": fnDims, "Statistic": "Maximum", "Period": 300,
			"EvaluationPeriods": 1, "Threshold": 240000, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
		}},
		{l.rotationEventsAlarm, map[string]any{
			"AlarmName": testStackName + "-rotation-events-undelivered",
			"AlarmDescription": "flowkey: EventBridge could not deliver a failed or abandoned rotation of " + testSecretName +
				" to the alert topic; check the topic's policy and its KMS key policy",
			"Namespace": "AWS/Events", "MetricName": "FailedInvocations", "Dimensions": []any{map[string]any{"Name": "RuleName", "Value": ref(l.rule)}},
			"Statistic": "Sum", "Period": 300,
			"EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
		}},
		{l.statusEventsAlarm, map[string]any{
			"AlarmName": testStackName + "-status-schedule-undelivered",
			"AlarmDescription": "flowkey: EventBridge could not invoke the rotator for the scheduled status of " + testSecretName +
				"; check the function's resource policy and that the function exists",
			"Namespace": "AWS/Events", "MetricName": "FailedInvocations", "Dimensions": []any{map[string]any{"Name": "RuleName", "Value": ref(l.statusRule)}},
			"Statistic": "Sum", "Period": 300,
			"EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
		}},
		// cron(7 * * * ? *): hourly, so two hours without a status.
		{l.heartbeatAlarm, map[string]any{
			"AlarmName": testStackName + "-status-heartbeat",
			"AlarmDescription": "flowkey: no status of " + testSecretName + " published its result for 2 hours (schedule " + testStatusSchedule +
				"): the schedule stopped, EventBridge cannot invoke the rotator, or each status failed; see the rotator's log group",
			"Namespace": "flowkey", "MetricName": "DriftedNumbers", "Dimensions": statusDims, "Statistic": "SampleCount", "Period": 3600,
			"EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 1, "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching",
		}},
		// cron(0 3 ? * SUN *), weekly, with a 3h window: (168 + 3 + 1) / 24.
		{l.overdueAlarm, map[string]any{
			"AlarmName": testStackName + "-rotation-overdue",
			"AlarmDescription": "flowkey: " + testSecretName + " has not rotated for more than 7.167 days, its schedule (" + testSchedule +
				") plus its window (" + testWindow + ") and an hour: rotation is disabled, or every attempt failed; see describe-secret and the rotator's log group",
			"Namespace": "flowkey", "MetricName": "DaysSinceLastRotation", "Dimensions": statusDims, "Statistic": "Maximum", "Period": 3600,
			"EvaluationPeriods": 1, "Threshold": 7.167, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "ignore",
		}},
	} {
		tc.want["AlarmActions"], tc.want["OKActions"] = actions, actions
		assertEqual(t, tc.id, properties(resource(t, tc.id)), tc.want)
	}
}

// Recovery is announced: every alarm of every variant notifies the same
// topics when it clears as when it fires.
func TestEveryAlarmAnnouncesRecovery(t *testing.T) {
	for name, tpl := range map[string]map[string]any{
		"main": synthesized.template, "off": synthesized.offTemplate, "platform": synthesized.platform.template, "adopted": synthesized.adopted.template,
	} {
		for id, a := range resourcesIn(tpl, "AWS::CloudWatch::Alarm") {
			p := properties(a)
			if actions, _ := p["AlarmActions"].([]any); len(actions) != 1 {
				t.Errorf("%s: %s AlarmActions = %v, want the alert topic", name, id, p["AlarmActions"])
			}
			assertEqual(t, name+": "+id+" OKActions", p["OKActions"], p["AlarmActions"])
		}
	}
	// Off: the alarms on the function and on the rotation events stay.
	if n := len(resourcesIn(synthesized.offTemplate, "AWS::CloudWatch::Alarm")); n != 4 {
		t.Errorf("off: %d alarms, want 4", n)
	}
}

// The overdue alarm watches the metric the rotator writes (the contract
// of infra/README.md), as the drift alarm does.
func TestOverdueAlarmWatchesTheMetricTheRotatorWrites(t *testing.T) {
	var buf bytes.Buffer
	metrics.New(&buf, "FlowkeyTest-RotatorC93D6EB0-AbCdEf", func() time.Time { return time.Unix(1700000000, 0) }).RotationAge(36 * time.Hour)
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		DaysSinceLastRotation float64
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("EMF line %q: %v", buf.String(), err)
	}
	alarm := properties(resource(t, ids(t).overdueAlarm))
	assertEqual(t, "EMF directive vs the overdue alarm", line.AWS.CloudWatchMetrics, []any{map[string]any{
		"Namespace":  alarm["Namespace"],
		"Dimensions": []any{[]any{alarm["Dimensions"].([]any)[0].(map[string]any)["Name"]}},
		"Metrics":    []any{map[string]any{"Name": alarm["MetricName"], "Unit": "None"}},
	}})
	if line.DaysSinceLastRotation != 1.5 {
		t.Errorf("DaysSinceLastRotation = %v for 36 hours, want 1.5 (the alarm's threshold is in days)", line.DaysSinceLastRotation)
	}
}

// The gaps behind the heartbeat and the overdue threshold.
func TestScheduleGaps(t *testing.T) {
	for _, tc := range []struct {
		status    string
		heartbeat int
	}{
		{"rate(1 hour)", 2}, {"rate(90 minutes)", 4}, {"rate(6 hours)", 12}, {"rate(1 day)", 48}, {"rate(3 days)", 144},
		{"rate(6 days)", 168}, {"cron(7 * * * ? *)", 2}, {"cron(0 6 * * ? *)", 48},
		{"cron(59 8 ? * MON-FRI *)", 144},   // Friday to Monday: 72 hours
		{"cron(15 */6 ? * MON-FRI *)", 108}, // Friday 18:15 to Monday 00:15: 54 hours
	} {
		if err := checkStatusSchedule(tc.status); err != nil {
			t.Errorf("%s: %v", tc.status, err)
		}
		if got := heartbeatPeriods(tc.status); got != tc.heartbeat {
			t.Errorf("heartbeat of %s: %d hourly periods, want %d", tc.status, got, tc.heartbeat)
		}
	}
	for _, tc := range []struct {
		schedule, window string
		days             float64
	}{
		{"rate(30 days)", "2h", 30.125}, {"rate(4 hours)", "1h", 0.25}, {"rate(1 day)", "23h", 2},
		{"cron(0 3 ? * SUN *)", "3h", 7.167},
		{"cron(0 4 1 * ? *)", "2h", 31.125},              // monthly: the longest month
		{"cron(0 4 L * ? *)", "2h", 31.125},              // the last day of each month
		{"cron(0 4 ? * 2#1 *)", "2h", 35.125},            // the first Monday: five weeks at most
		{"cron(0 4 ? 1,7 6L *)", "2h", 189.125},          // the last Friday of January and July
		{"cron(0 4 1 */3 ? *)", "2h", 92.125},            // quarterly
		{"cron(0 0 29 2 ? *)", "1h", 1461.084},           // leap days: four years
		{"cron(0 4 15W * ? *)", "2h", 32.125},            // the weekday nearest the 15th
		{"cron(0 4 ? * MON-FRI 2027-2030)", "2h", 3.125}, // the year ends the schedule, it does not space it
	} {
		if _, err := scheduleHours(tc.schedule); err != nil {
			t.Errorf("%s: %v", tc.schedule, err)
		}
		if got := overdueDays(tc.schedule, tc.window); got != tc.days {
			t.Errorf("overdue after %s + %s: %v days, want %v", tc.schedule, tc.window, got, tc.days)
		}
	}
}
