package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/metrics"
	"github.com/flowkey/flowkey/internal/operator"
)

// The schedule sends exactly the status command, as the function parses it.
func TestStatusSchedule(t *testing.T) {
	l := ids(t)
	rule := resource(t, l.statusRule)
	assertEqual(t, "status rule", properties(rule), map[string]any{
		"Description":        "flowkey: runs the status command of the rotator of " + testSecretName,
		"ScheduleExpression": testStatusSchedule,
		"State":              "ENABLED",
		"Targets": []any{map[string]any{
			"Id":    "Rotator",
			"Arn":   getAtt(l.fn, "Arn"),
			"Input": `{"command":"status"}`,
		}},
	})

	input := properties(rule)["Targets"].([]any)[0].(map[string]any)["Input"].(string)
	cmd, err := operator.ParseCommand([]byte(input))
	if err != nil {
		t.Fatalf("the rotator rejects the schedule's input %s: %v", input, err)
	}
	// No secret_id: the function's SECRET_ID is this secret.
	assertEqual(t, "parsed schedule input", cmd, operator.Command{Name: operator.CommandStatus})

	assertEqual(t, "status invoke permission", properties(resource(t, l.statusPermission)), map[string]any{
		"Action":       "lambda:InvokeFunction",
		"FunctionName": getAtt(l.fn, "Arn"),
		"Principal":    "events.amazonaws.com",
		"SourceArn":    getAtt(l.statusRule, "Arn"),
	})
}

func TestDriftAlarm(t *testing.T) {
	l := ids(t)
	assertEqual(t, "drift alarm", properties(resource(t, l.driftAlarm)), map[string]any{
		"AlarmName": testStackName + "-drift",
		"AlarmDescription": "flowkey: the status command found phone numbers whose key at Meta is not the AWSCURRENT key of " + testSecretName +
			`; run {"command":"status"} for the reasons and {"command":"resync"} to repair`,
		"Namespace":          "flowkey",
		"MetricName":         "DriftedNumbers",
		"Dimensions":         []any{map[string]any{"Name": "Function", "Value": ref(l.fn)}},
		"Statistic":          "Maximum",
		"Period":             3600,
		"EvaluationPeriods":  1,
		"Threshold":          0,
		"ComparisonOperator": "GreaterThanThreshold",
		"TreatMissingData":   "ignore",
		"AlarmActions":       []any{ref(l.topic)},
		"OKActions":          []any{ref(l.topic)},
	})
}

// The alarm watches the metric the rotator writes: same namespace, name
// and the whole dimension set (CloudWatch tells metrics apart by all of
// their dimensions), with the function's name as the value.
func TestDriftAlarmWatchesTheMetricTheRotatorWrites(t *testing.T) {
	const functionName = "FlowkeyTest-RotatorC93D6EB0-AbCdEf"
	var buf bytes.Buffer
	metrics.New(&buf, functionName, func() time.Time { return time.Unix(1700000000, 0) }).Drift(3, 2)
	var line struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		} `json:"_aws"`
		Function       string
		DriftedNumbers float64
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("EMF line %q: %v", buf.String(), err)
	}
	if len(line.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("EMF line %q: want one metric directive", buf.String())
	}
	d := line.AWS.CloudWatchMetrics[0]

	alarm := properties(resource(t, ids(t).driftAlarm))
	if d.Namespace != alarm["Namespace"] {
		t.Errorf("EMF namespace %q, alarm namespace %v", d.Namespace, alarm["Namespace"])
	}
	if !slices.ContainsFunc(d.Metrics, func(m struct{ Name string }) bool { return m.Name == alarm["MetricName"] }) {
		t.Errorf("EMF metrics %v lack the alarm's %v", d.Metrics, alarm["MetricName"])
	}
	var alarmDims []string
	for _, dim := range alarm["Dimensions"].([]any) {
		alarmDims = append(alarmDims, dim.(map[string]any)["Name"].(string))
	}
	assertEqual(t, "EMF dimension sets vs the alarm's dimensions", d.Dimensions, [][]string{alarmDims})
	if line.Function != functionName || line.DriftedNumbers != 2 {
		t.Errorf("EMF Function = %q, DriftedNumbers = %v; want %q, 2", line.Function, line.DriftedNumbers, functionName)
	}
}

// "off" removes the rule, its permission, the alarms on what the status
// publishes and on the rule's deliveries, and their statements in the
// topic and key policies, and changes nothing else: the rotate command's
// policy stays.
func TestStatusScheduleOff(t *testing.T) {
	l := ids(t)
	b, err := json.Marshal(synthesized.template)
	if err != nil {
		t.Fatal(err)
	}
	// The stack name appears in names and construct paths.
	b = []byte(strings.ReplaceAll(string(b), testStackName, testOffStackName))
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	res := want["Resources"].(map[string]any)
	for _, id := range []string{l.statusRule, l.statusPermission, l.driftAlarm, l.heartbeatAlarm, l.overdueAlarm, l.statusEventsAlarm} {
		if _, ok := res[id]; !ok {
			t.Fatalf("%s not in the template", id)
		}
		delete(res, id)
	}
	for _, sid := range []string{"DriftAlarmPublishes", "StatusHeartbeatAlarmPublishes", "RotationOverdueAlarmPublishes", "StatusScheduleDeliveryAlarmPublishes"} {
		dropStatement(t, res[cfnID(t, "AlertTopic", "Policy")], sid)
		suffix := "ToAlertTopic"
		dropStatement(t, res[l.key].(map[string]any)["Properties"].(map[string]any)["KeyPolicy"], sid+suffix)
	}
	assertEqual(t, `the "off" template`, synthesized.offTemplate, want)

	a := assertions.Annotations_FromStack(synthesized.offStack)
	for _, m := range annotationTexts(t, a.FindError(jsii.String("*"), assertions.Match_AnyValue())) {
		t.Errorf("error annotation: %s", m)
	}
	for _, m := range annotationTexts(t, a.FindWarning(jsii.String("*"), assertions.Match_AnyValue())) {
		t.Errorf("warning annotation: %s", m)
	}
}

// dropStatement removes the statement with sid from a topic policy
// resource or a policy document, failing if it is not there.
func dropStatement(t *testing.T, v any, sid string) {
	t.Helper()
	doc, _ := v.(map[string]any)
	if p, ok := doc["Properties"].(map[string]any); ok {
		doc, _ = p["PolicyDocument"].(map[string]any)
	}
	stmts, _ := doc["Statement"].([]any)
	i := slices.IndexFunc(stmts, func(s any) bool { return s.(map[string]any)["Sid"] == sid })
	if i < 0 {
		t.Fatalf("no statement %s in %v", sid, v)
	}
	doc["Statement"] = slices.Delete(stmts, i, i+1)
}
