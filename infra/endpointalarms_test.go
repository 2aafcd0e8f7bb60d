package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/config"
)

// The endpoint's five alarms: each on 5-minute periods, 2 of 3 to fire,
// no traffic not breaching, fired and cleared to the alert topic.
func TestEndpointAlarms(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	fnDim := []any{map[string]any{"Name": "Function", "Value": ref(e.fn)}}
	requests := func(id string, dims []any) map[string]any {
		return map[string]any{"Id": id, "ReturnData": false, "MetricStat": map[string]any{
			"Metric": map[string]any{"Namespace": "flowkey", "MetricName": "Requests", "Dimensions": dims},
			"Period": 300, "Stat": "Sum",
		}}
	}
	rate := func(status, label string) []any {
		return []any{
			map[string]any{"Id": "expr_1", "Expression": "100 * FILL(answered, 0) / requests", "Label": label, "ReturnData": true},
			requests("answered", append(append([]any{}, fnDim...), map[string]any{"Name": "Status", "Value": status})),
			requests("requests", fnDim),
		}
	}
	lambdaMetric := func(id, name string) map[string]any {
		return map[string]any{"Id": id, "ReturnData": false, "MetricStat": map[string]any{
			"Metric": map[string]any{"Namespace": "AWS/Lambda", "MetricName": name, "Dimensions": []any{map[string]any{"Name": "FunctionName", "Value": ref(e.fn)}}},
			"Period": 300, "Stat": "Sum",
		}}
	}
	common := map[string]any{
		"EvaluationPeriods": 3, "DatapointsToAlarm": 2, "ComparisonOperator": "GreaterThanThreshold",
		"TreatMissingData": "notBreaching", "AlarmActions": []any{testAlertTopicARN}, "OKActions": []any{testAlertTopicARN},
	}
	for id, want := range map[string]map[string]any{
		"Endpoint421RateAlarm": {"AlarmName": testEndpointStackName + "-endpoint-421-rate", "Threshold": 5, "Metrics": rate("421", "421 answers, % of requests")},
		"Endpoint432RateAlarm": {"AlarmName": testEndpointStackName + "-endpoint-432-rate", "Threshold": 10, "Metrics": rate("432", "432 answers, % of requests")},
		"EndpointBackendErrorsAlarm": {"AlarmName": testEndpointStackName + "-endpoint-backend-errors", "Threshold": 5, "Metrics": []any{
			map[string]any{"Id": "expr_1", "Expression": "100 * failed", "Label": "failed backend calls, %", "ReturnData": true},
			map[string]any{"Id": "failed", "ReturnData": false, "MetricStat": map[string]any{
				"Metric": map[string]any{"Namespace": "flowkey", "MetricName": "BackendErrors", "Dimensions": fnDim},
				"Period": 300, "Stat": "Average",
			}},
		}},
		"EndpointLatencyAlarm": {
			"AlarmName": testEndpointStackName + "-endpoint-latency", "Threshold": 5000,
			"Namespace": "AWS/Lambda", "MetricName": "Duration", "ExtendedStatistic": "p99", "Period": 300,
			"Dimensions": []any{map[string]any{"Name": "FunctionName", "Value": ref(e.fn)}},
		},
		"EndpointErrorsAlarm": {"AlarmName": testEndpointStackName + "-endpoint-errors", "Threshold": 0, "Metrics": []any{
			map[string]any{"Id": "expr_1", "Expression": "FILL(errors, 0) + FILL(throttles, 0)", "Label": "failed or throttled invocations", "ReturnData": true},
			lambdaMetric("errors", "Errors"),
			lambdaMetric("throttles", "Throttles"),
		}},
	} {
		got := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, id)))
		desc, _ := got["AlarmDescription"].(string)
		if !strings.HasPrefix(desc, "flowkey Flows endpoint of "+testSecretName+": ") || !strings.Contains(desc, "see ") {
			t.Errorf("%s: description %q does not say whose it is and where to look", id, desc)
		}
		delete(got, "AlarmDescription")
		for k, val := range common {
			want[k] = val
		}
		assertEqual(t, id, got, want)
	}
}

// On the stack's own topic, the topic policy and the key policy admit each
// endpoint alarm by its ARN, as they admit the rotator's.
func TestEndpointAlarmsMayPublish(t *testing.T) {
	v := synthesized.platform
	_, topicPolicy := onlyIn(t, v.template, "AWS::SNS::TopicPolicy")
	_, key := onlyIn(t, v.template, "AWS::KMS::Key")
	topicSids, keySids := map[string]map[string]any{}, map[string]map[string]any{}
	for _, s := range properties(topicPolicy)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
		st := s.(map[string]any)
		topicSids[st["Sid"].(string)] = st
	}
	for _, s := range properties(key)["KeyPolicy"].(map[string]any)["Statement"].([]any) {
		st := s.(map[string]any)
		keySids[st["Sid"].(string)] = st
	}
	names := reflect.ValueOf(newEndpointAlarmNames(testPlatformStackName))
	ids := []string{"Endpoint421RateAlarm", "Endpoint432RateAlarm", "EndpointBackendErrorsAlarm", "EndpointLatencyAlarm", "EndpointErrorsAlarm"}
	if names.NumField() != len(ids) {
		t.Fatalf("%d alarm names, %d alarms", names.NumField(), len(ids))
	}
	topic := cfnIDIn(t, v.stack, "AlertTopic")
	for i, id := range ids {
		alarm := cfnIDIn(t, v.stack, id)
		assertEqual(t, id+" topic statement", topicSids[id+"Publishes"], alarmTopicStatement(id+"Publishes", topic, alarm))
		assertEqual(t, id+" key statement", keySids[id+"PublishesToAlertTopic"], map[string]any{
			"Sid": id + "PublishesToAlertTopic", "Effect": "Allow", "Resource": "*",
			"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
			"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey*"},
			"Condition": map[string]any{
				"StringEquals": map[string]any{
					"kms:EncryptionContext:aws:sns:topicArn": partitionARN(":sns:" + testRegion + ":" + testAccount + ":" + testPlatformStackName + "-alerts"),
					"aws:SourceAccount":                      testAccount,
				},
				"ArnEquals": map[string]any{"aws:SourceArn": partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + names.Field(i).String())},
			},
		})
		if got := properties(resourceIn(t, v.template, alarm))["AlarmName"]; got != names.Field(i).String() {
			t.Errorf("%s AlarmName = %v, want %s", id, got, names.Field(i).String())
		}
	}
}

// The thresholds keep the relations their comments rely on.
func TestEndpointAlarmThresholds(t *testing.T) {
	// The endpoint's start-up loads for up to 3 s (functions/endpoint),
	// outside Duration; the alarm leaves that and 2 s more within Meta's 10 s.
	const coldStartLoad = 3 * time.Second
	latency := time.Duration(latencyAlarmMillis) * time.Millisecond
	if latency+coldStartLoad+2*time.Second > endpointTimeoutSeconds*time.Second {
		t.Errorf("the latency alarm at %s leaves no room for a cold start within %d s", latency, endpointTimeoutSeconds)
	}
	if latency >= config.DefaultBackendTimeout {
		t.Errorf("the latency alarm at %s is not under the backend's %s deadline", latency, config.DefaultBackendTimeout)
	}
	for name, pct := range map[string]int{"421": decryptFailureRatePercent, "432": badSignatureRatePercent, "backend": backendErrorRatePercent} {
		if pct <= 0 || pct >= 50 {
			t.Errorf("the %s rate alarm fires above %s%%, not a small share", name, strconv.Itoa(pct))
		}
	}
}
