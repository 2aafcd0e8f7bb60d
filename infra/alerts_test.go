package main

import (
	"testing"
)

// The alert topic: encrypted, e-mail subscribed, and only this stack's
// rule and alarms may publish.
func TestAlerts(t *testing.T) {
	l := ids(t)
	_, topic := only(t, "AWS::SNS::Topic")
	assertEqual(t, "topic", properties(topic), map[string]any{
		"TopicName":      testStackName + "-alerts",
		"DisplayName":    "flowkey rotation alerts",
		"KmsMasterKeyId": getAtt(l.key, "Arn"),
	})
	_, sub := only(t, "AWS::SNS::Subscription")
	assertEqual(t, "subscription", properties(sub), map[string]any{
		"Protocol": "email", "Endpoint": testAlertEmail, "TopicArn": ref(l.topic),
	})
	_, topicPolicy := only(t, "AWS::SNS::TopicPolicy")
	assertEqual(t, "topic policy", properties(topicPolicy), map[string]any{
		"Topics": []any{ref(l.topic)},
		"PolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{
				map[string]any{
					"Sid": "AllowPublishThroughSSLOnly", "Effect": "Deny", "Principal": "*",
					"Action": "sns:Publish", "Resource": ref(l.topic),
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				},
				map[string]any{
					"Sid": "RotationFailedRulePublishes", "Effect": "Allow",
					"Principal": map[string]any{"Service": "events.amazonaws.com"},
					"Action":    "sns:Publish", "Resource": ref(l.topic),
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": getAtt(l.rule, "Arn")}},
				},
				map[string]any{
					"Sid": "RotatorErrorsAlarmPublishes", "Effect": "Allow",
					"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
					"Action":    "sns:Publish", "Resource": ref(l.topic),
					"Condition": map[string]any{
						"ArnEquals":    map[string]any{"aws:SourceArn": getAtt(l.alarm, "Arn")},
						"StringEquals": map[string]any{"aws:SourceAccount": testAccount},
					},
				},
				alarmTopicStatement("RotatorThrottlesAlarmPublishes", l.topic, l.throttlesAlarm),
				alarmTopicStatement("RotatorDurationAlarmPublishes", l.topic, l.durationAlarm),
				alarmTopicStatement("RotationEventsDeliveryAlarmPublishes", l.topic, l.rotationEventsAlarm),
				map[string]any{
					"Sid": "DriftAlarmPublishes", "Effect": "Allow",
					"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
					"Action":    "sns:Publish", "Resource": ref(l.topic),
					"Condition": map[string]any{
						"ArnEquals":    map[string]any{"aws:SourceArn": getAtt(l.driftAlarm, "Arn")},
						"StringEquals": map[string]any{"aws:SourceAccount": testAccount},
					},
				},
				alarmTopicStatement("StatusHeartbeatAlarmPublishes", l.topic, l.heartbeatAlarm),
				alarmTopicStatement("RotationOverdueAlarmPublishes", l.topic, l.overdueAlarm),
				alarmTopicStatement("StatusScheduleDeliveryAlarmPublishes", l.topic, l.statusEventsAlarm),
			},
		},
	})
}

// alarmTopicStatement lets one alarm publish to the topic.
func alarmTopicStatement(sid, topic, alarm string) any {
	return map[string]any{
		"Sid": sid, "Effect": "Allow",
		"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
		"Action":    "sns:Publish", "Resource": ref(topic),
		"Condition": map[string]any{
			"ArnEquals":    map[string]any{"aws:SourceArn": getAtt(alarm, "Arn")},
			"StringEquals": map[string]any{"aws:SourceAccount": testAccount},
		},
	}
}

// Failed and abandoned rotations of this secret, from CloudTrail.
func TestRotationFailedRule(t *testing.T) {
	l := ids(t)
	rp := properties(resource(t, l.rule))
	assertEqual(t, "rule pattern", rp["EventPattern"], map[string]any{
		"source":      []string{"aws.secretsmanager"},
		"detail-type": []string{"AWS Service Event via CloudTrail"},
		"detail": map[string]any{
			"eventSource":         []string{"secretsmanager.amazonaws.com"},
			"eventName":           []string{"RotationFailed", "RotationAbandoned"},
			"additionalEventData": map[string]any{"SecretId": []any{ref(l.secret)}},
		},
	})
	assertEqual(t, "rule targets", rp["Targets"], []any{map[string]any{"Id": "AlertTopic", "Arn": ref(l.topic)}})
	if rp["State"] != "ENABLED" {
		t.Errorf("rule State = %v, want ENABLED", rp["State"])
	}
	if _, ok := rp["EventBusName"]; ok {
		t.Errorf("rule EventBusName = %v: AWS service events arrive on the default bus", rp["EventBusName"])
	}
}

func TestRotatorErrorsAlarm(t *testing.T) {
	l := ids(t)
	assertEqual(t, "alarm", properties(resource(t, l.alarm)), map[string]any{
		"AlarmName": testStackName + "-rotator-errors",
		"AlarmDescription": "flowkey: a rotation step or an operator command (such as the scheduled status) for " + testSecretName +
			" returned an error or timed out; see the rotator's log group",
		"Namespace":          "AWS/Lambda",
		"MetricName":         "Errors",
		"Dimensions":         []any{map[string]any{"Name": "FunctionName", "Value": ref(l.fn)}},
		"Statistic":          "Sum",
		"Period":             300,
		"EvaluationPeriods":  1,
		"Threshold":          1,
		"ComparisonOperator": "GreaterThanOrEqualToThreshold",
		"TreatMissingData":   "notBreaching",
		"AlarmActions":       []any{ref(l.topic)},
		// Recovery is announced too.
		"OKActions": []any{ref(l.topic)},
	})
}
