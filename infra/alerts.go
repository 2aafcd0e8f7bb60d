package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/metrics"
)

// The status schedule and the drift alarm.
const (
	// statusCommandInput is the whole event the schedule sends. Operator
	// commands are strict: EventBridge's default scheduled-event body would
	// be rejected, and a secret_id is not needed (SECRET_ID names the
	// secret).
	statusCommandInput = `{"command":"status"}`
	// driftMetric is the metric internal/metrics writes for every status
	// (0 when healthy), in metrics.Namespace with the dimension Function.
	driftMetric = "DriftedNumbers"
)

// newAlerts is the alert topic, encrypted with key, and what publishes to
// it: failed or abandoned rotations of the secret, errors of fn and, unless
// the status schedule is off, drift the scheduled status finds.
func newAlerts(stack awscdk.Stack, props *RotationStackProps, n stackNames, key awskms.Key, secretARN *string, fn awslambda.Function) awssns.Topic {
	topic := awssns.NewTopic(stack, jsii.String("AlertTopic"), &awssns.TopicProps{
		TopicName:   jsii.String(n.topicName),
		DisplayName: jsii.String("flowkey rotation alerts"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if props.AlertEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.AlertEmail), nil))
	}
	rule := newRotationFailedRule(stack, props.SecretName, secretARN, topic)

	alarm := awscloudwatch.NewAlarm(stack, jsii.String("RotatorErrorsAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(n.errorsAlarmName),
		AlarmDescription: jsii.String("flowkey: a rotation step or an operator command (such as the scheduled status) for " + props.SecretName + " returned an error or timed out; see the rotator's log group"),
		Metric: fn.MetricErrors(&awscloudwatch.MetricOptions{
			Period:    awscdk.Duration_Minutes(jsii.Number(5)),
			Statistic: jsii.String("Sum"),
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))

	// Only this rule and this alarm may publish.
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("RotationFailedRulePublishes"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": rule.AttrArn()}},
	}))
	alarmMayPublish(topic, "RotatorErrorsAlarmPublishes", alarm.AlarmArn(), stack.Account())

	if props.statusScheduleOn() {
		addStatusSchedule(stack, props, fn, key, topic, n)
	}
	return topic
}

// newRotationFailedRule sends the secret's failed and abandoned rotations
// to topic. Secrets Manager reports these through CloudTrail (no trail
// needed); delivery is best effort, hence also the errors alarm.
func newRotationFailedRule(stack awscdk.Stack, secretName string, secretARN *string, topic awssns.Topic) awsevents.CfnRule {
	return awsevents.NewCfnRule(stack, jsii.String("RotationFailedRule"), &awsevents.CfnRuleProps{
		Description: jsii.String("flowkey: a rotation of " + secretName + " failed or was abandoned"),
		State:       jsii.String("ENABLED"),
		EventPattern: map[string]any{
			"source":      []string{"aws.secretsmanager"},
			"detail-type": []string{"AWS Service Event via CloudTrail"},
			"detail": map[string]any{
				"eventSource":         []string{"secretsmanager.amazonaws.com"},
				"eventName":           []string{"RotationFailed", "RotationAbandoned"},
				"additionalEventData": map[string]any{"SecretId": []*string{secretARN}},
			},
		},
		Targets: &[]*awsevents.CfnRule_TargetProperty{{Id: jsii.String("AlertTopic"), Arn: topic.TopicArn()}},
	})
}

// addStatusSchedule runs the status command on props.StatusSchedule and
// alarms, on the alert topic, when a status finds drifted numbers.
func addStatusSchedule(stack awscdk.Stack, props *RotationStackProps, fn awslambda.Function, key awskms.Key, topic awssns.Topic, n stackNames) {
	rule := awsevents.NewCfnRule(stack, jsii.String("StatusScheduleRule"), &awsevents.CfnRuleProps{
		Description:        jsii.String("flowkey: runs the status command of the rotator of " + props.SecretName),
		ScheduleExpression: jsii.String(props.StatusSchedule),
		State:              jsii.String("ENABLED"),
		Targets: &[]*awsevents.CfnRule_TargetProperty{{
			Id:    jsii.String("Rotator"),
			Arn:   fn.FunctionArn(),
			Input: jsii.String(statusCommandInput),
		}},
	})
	// SourceArn only. The rule's ARN already names this account, so
	// aws:SourceAccount would add nothing, and EventBridge has been
	// reported not to send it when it invokes Lambda: with the condition,
	// the schedule could stop invoking the function without any error.
	awslambda.NewCfnPermission(stack, jsii.String("StatusScheduleInvokesRotator"), &awslambda.CfnPermissionProps{
		Action:       jsii.String("lambda:InvokeFunction"),
		FunctionName: fn.FunctionArn(),
		Principal:    jsii.String("events.amazonaws.com"),
		SourceArn:    rule.AttrArn(),
	})

	// Maximum: one drifted number in the hour is drift. Missing data is
	// ignored, so the state is what the last status found. notBreaching
	// would turn a drifted alarm OK an hour after a status that found
	// drift whenever the schedule is slower than hourly or one run is
	// late; breaching would alarm for every hour without a status (every
	// hour but one of "rate(6 hours)"). A status that fails is a function
	// error and raises the errors alarm; the alarm only returns to OK after
	// a status that finds no drift, as every status writes the metric.
	alarm := awscloudwatch.NewAlarm(stack, jsii.String("DriftAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(n.driftAlarmName),
		AlarmDescription: jsii.String("flowkey: the status command found phone numbers whose key at Meta is not the AWSCURRENT key of " +
			props.SecretName + "; run {\"command\":\"status\"} for the reasons and {\"command\":\"resync\"} to repair"),
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String(metrics.Namespace),
			MetricName:    jsii.String(driftMetric),
			DimensionsMap: &map[string]*string{"Function": fn.FunctionName()},
			Period:        awscdk.Duration_Hours(jsii.Number(1)),
			Statistic:     jsii.String("Maximum"),
		}),
		Threshold:          jsii.Number(0),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_IGNORE,
	})
	alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))

	// As for the errors alarm: the topic policy names the alarm, and the
	// key policy names the topic and the alarm by their constructed ARNs.
	alarmMayPublish(topic, "DriftAlarmPublishes", alarm.AlarmArn(), stack.Account())
	key.AddToResourcePolicy(alarmUsesKeyForAlertTopic("DriftAlarmPublishesToAlertTopic", n.topicARN, n.driftAlarmARN, stack.Account()), jsii.Bool(false))
}

// alarmMayPublish lets exactly one CloudWatch alarm of this account
// publish to topic.
func alarmMayPublish(topic awssns.Topic, sid string, alarmARN, account *string) {
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String(sid),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: &map[string]any{
			"ArnEquals":    map[string]any{"aws:SourceArn": alarmARN},
			"StringEquals": map[string]any{"aws:SourceAccount": account},
		},
	}))
}
