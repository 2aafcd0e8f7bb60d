package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
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

// alerts is where the alarms and the rules publish: the stack's own topic,
// or an existing one (AlertTopicARN).
type alerts struct {
	stack awscdk.Stack
	topic awssns.ITopic
	// own is the stack's topic, nil for an existing one, whose policies
	// belong to its owner (infra/README.md lists what they must allow).
	own awssns.Topic
	key stackKey
	n   stackNames
}

// newAlerts is the alert topic, encrypted with key, and what publishes to
// it: failed or abandoned rotations of the secret, the rotator's errors,
// throttles and slow runs, rules that cannot deliver and, unless the
// status schedule is off, what the scheduled status finds. It returns the
// alerts, for the endpoint's alarms.
func newAlerts(stack awscdk.Stack, props *RotationStackProps, n stackNames, key stackKey, secretARN *string, fn awslambda.Function) alerts {
	a := alerts{stack: stack, key: key, n: n}
	if props.AlertTopicARN != "" {
		a.topic = awssns.Topic_FromTopicArn(stack, jsii.String("AlertTopic"), jsii.String(props.AlertTopicARN))
	} else {
		a.own = awssns.NewTopic(stack, jsii.String("AlertTopic"), &awssns.TopicProps{
			TopicName:   jsii.String(n.topicName),
			DisplayName: jsii.String("flowkey rotation alerts"),
			MasterKey:   key.key,
			EnforceSSL:  jsii.Bool(true),
		})
		a.topic = a.own
	}
	if props.AlertEmail != "" {
		a.own.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.AlertEmail), nil))
	}
	rule := newRotationFailedRule(stack, props.SecretName, secretARN, a.topic.TopicArn())

	alarm := awscloudwatch.NewAlarm(stack, jsii.String("RotatorErrorsAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(n.alarms.errors),
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

	// Only this rule and these alarms may publish.
	if a.own != nil {
		a.own.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("RotationFailedRulePublishes"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
			Actions:    jsii.Strings("sns:Publish"),
			Resources:  &[]*string{a.own.TopicArn()},
			Conditions: &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": rule.AttrArn()}},
		}))
	}
	a.publish(alarm, n.alarms.errors, "RotatorErrorsAlarmPublishes", "CloudWatchAlarmPublishesToAlertTopic")
	newFunctionAlarms(a, props, fn)
	newDeliveryAlarm(a, "RotationEventsDeliveryAlarm", n.alarms.rotationEvents, rule,
		"EventBridge could not deliver a failed or abandoned rotation of "+props.SecretName+" to the alert topic; check the topic's policy and its KMS key policy")

	if props.statusScheduleOn() {
		addStatusSchedule(a, props, fn)
	}
	return a
}

// publish makes alarm notify the topic when it fires and when it clears.
// On the stack's own topic, the topic policy lets this alarm publish and
// the key policy lets it use the key for this topic (topicSid, keySid).
func (a alerts) publish(alarm awscloudwatch.Alarm, name, topicSid, keySid string) {
	action := awscloudwatchactions.NewSnsAction(a.topic)
	alarm.AddAlarmAction(action)
	alarm.AddOkAction(action)
	if a.own == nil {
		return
	}
	account := a.stack.Account()
	alarmMayPublish(a.own, topicSid, alarm.AlarmArn(), account)
	a.key.addStatement(alarmUsesKeyForAlertTopic(keySid, a.n.topicARN, alarmARN(a.stack, name), account))
}

// newRotationFailedRule sends the secret's failed and abandoned rotations
// to topic. Secrets Manager reports these through CloudTrail (no trail
// needed); delivery is best effort, hence also the errors alarm.
func newRotationFailedRule(stack awscdk.Stack, secretName string, secretARN, topicARN *string) awsevents.CfnRule {
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
		Targets: &[]*awsevents.CfnRule_TargetProperty{{Id: jsii.String("AlertTopic"), Arn: topicARN}},
	})
}

// addStatusSchedule runs the status command on props.StatusSchedule and
// alarms, on the alert topic, when a status finds drifted numbers, when
// the status stops publishing, and when no rotation succeeded in time.
func addStatusSchedule(a alerts, props *RotationStackProps, fn awslambda.Function) {
	rule := awsevents.NewCfnRule(a.stack, jsii.String("StatusScheduleRule"), &awsevents.CfnRuleProps{
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
	awslambda.NewCfnPermission(a.stack, jsii.String("StatusScheduleInvokesRotator"), &awslambda.CfnPermissionProps{
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
	// hour but one of "rate(6 hours)"). A status that stops publishing is
	// the heartbeat alarm's (health.go), a status that fails also a
	// function error; the alarm only returns to OK after a status that
	// finds no drift, as every status writes the metric.
	alarm := awscloudwatch.NewAlarm(a.stack, jsii.String("DriftAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(a.n.alarms.drift),
		AlarmDescription: jsii.String("flowkey: the status command found phone numbers whose key at Meta is not the AWSCURRENT key of " +
			props.SecretName + "; run {\"command\":\"status\"} for the reasons and {\"command\":\"resync\"} to repair"),
		Metric:             statusMetric(fn, driftMetric, "Maximum"),
		Threshold:          jsii.Number(0),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_IGNORE,
	})
	// As for the errors alarm: the topic policy names the alarm, and the
	// key policy names the topic and the alarm by their constructed ARNs.
	a.publish(alarm, a.n.alarms.drift, "DriftAlarmPublishes", "DriftAlarmPublishesToAlertTopic")
	newStatusAlarms(a, props, fn)
	newDeliveryAlarm(a, "StatusScheduleDeliveryAlarm", a.n.alarms.statusEvents, rule,
		"EventBridge could not invoke the rotator for the scheduled status of "+props.SecretName+"; check the function's resource policy and that the function exists")
}

// statusMetric is a metric the status command publishes, hourly.
func statusMetric(fn awslambda.Function, name, statistic string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(metrics.Namespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &map[string]*string{"Function": fn.FunctionName()},
		Period:        awscdk.Duration_Hours(jsii.Number(1)),
		Statistic:     jsii.String(statistic),
	})
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
