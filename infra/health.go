package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// Alarms for what fails silently: a schedule that stops running, a rule
// that cannot deliver, a function that is throttled or close to its
// timeout, a rotation that never happens. Each publishes to the alert
// topic when it fires and when it clears.

// rotationAgeMetric is what the status command publishes besides the
// drift (internal/metrics EMF.RotationAge; the contract is in
// infra/README.md, "Reading the alerts"): the days since the secret's
// LastRotatedDate, or since its CreatedDate when it never rotated, as a
// fraction, with the unit None, in metrics.Namespace with the dimension
// Function.
const rotationAgeMetric = "DaysSinceLastRotation"

// durationAlarmShare is the share of the timeout above which a run alarms:
// testSecret's worst case is about half of it (rotator.go).
const durationAlarmShare = 0.8

// alarmNames are the alarms' fixed names, which the key policy names.
type alarmNames struct {
	errors, throttles, duration, rotationEvents string
	drift, heartbeat, overdue, statusEvents     string
}

func newAlarmNames(stackName string) alarmNames {
	return alarmNames{
		errors:         stackName + "-rotator-errors",
		throttles:      stackName + "-rotator-throttles",
		duration:       stackName + "-rotator-duration",
		rotationEvents: stackName + "-rotation-events-undelivered",
		drift:          stackName + "-drift",
		heartbeat:      stackName + "-status-heartbeat",
		overdue:        stackName + "-rotation-overdue",
		statusEvents:   stackName + "-status-schedule-undelivered",
	}
}

// newFunctionAlarms watches the rotator's throttles (a throttled step
// fails the rotation; a throttled scheduled status is not retried) and its
// longest run against the timeout.
func newFunctionAlarms(a alerts, props *RotationStackProps, fn awslambda.Function) {
	fiveMinutes := &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}
	throttles := awscloudwatch.NewAlarm(a.stack, jsii.String("RotatorThrottlesAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(a.n.alarms.throttles),
		AlarmDescription: jsii.String("flowkey: Lambda throttled the rotator of " + props.SecretName +
			"; a throttled step fails the rotation. Raise the account's concurrency quota or the function's reserved concurrency"),
		Metric:             fn.MetricThrottles(fiveMinutes),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	a.publish(throttles, a.n.alarms.throttles, "RotatorThrottlesAlarmPublishes", "RotatorThrottlesAlarmPublishesToAlertTopic")

	limit := durationAlarmShare * rotatorTimeoutSeconds * 1000
	duration := awscloudwatch.NewAlarm(a.stack, jsii.String("RotatorDurationAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(a.n.alarms.duration),
		AlarmDescription: jsii.String("flowkey: a run of the rotator of " + props.SecretName + " took more than " +
			strconv.Itoa(int(durationAlarmShare*100)) + "% of its " + strconv.Itoa(rotatorTimeoutSeconds) +
			" s timeout; Meta or Secrets Manager answer slowly, and the next slow run may time out"),
		Metric:             fn.MetricDuration(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum")}),
		Threshold:          jsii.Number(limit),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	a.publish(duration, a.n.alarms.duration, "RotatorDurationAlarmPublishes", "RotatorDurationAlarmPublishesToAlertTopic")
}

// newDeliveryAlarm alarms when rule fails to deliver to its target: a
// topic or function policy, a KMS key policy, or a deleted target. Such
// failures raise no error anywhere else.
func newDeliveryAlarm(a alerts, id, name string, rule awsevents.CfnRule, what string) {
	alarm := awscloudwatch.NewAlarm(a.stack, jsii.String(id), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(name),
		AlarmDescription: jsii.String("flowkey: " + what),
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String("AWS/Events"),
			MetricName:    jsii.String("FailedInvocations"),
			DimensionsMap: &map[string]*string{"RuleName": rule.Ref()},
			Period:        awscdk.Duration_Minutes(jsii.Number(5)),
			Statistic:     jsii.String("Sum"),
		}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	sid := strings.TrimSuffix(id, "Alarm") + "AlarmPublishes"
	a.publish(alarm, name, sid, sid+"ToAlertTopic")
}

// newStatusAlarms are the heartbeat and the rotation-overdue alarm, on
// what every status publishes.
//
// The heartbeat is an alarm of its own, not the drift alarm with missing
// data as breaching: the drift alarm keeps the state of the last status
// (see addStatusSchedule), which a slower schedule needs, while the
// heartbeat counts status runs and treats an hour without one as
// breaching, over enough hours to span two runs. One missed run (Meta
// slow, one error) does not wake anyone; a schedule that stopped does.
func newStatusAlarms(a alerts, props *RotationStackProps, fn awslambda.Function) {
	periods := heartbeatPeriods(props.StatusSchedule)
	heartbeat := awscloudwatch.NewAlarm(a.stack, jsii.String("StatusHeartbeatAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(a.n.alarms.heartbeat),
		AlarmDescription: jsii.String("flowkey: no status of " + props.SecretName + " published its result for " + strconv.Itoa(periods) +
			" hours (schedule " + props.StatusSchedule + "): the schedule stopped, EventBridge cannot invoke the rotator, or each status failed; see the rotator's log group"),
		Metric:             statusMetric(fn, driftMetric, "SampleCount"),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(periods),
		DatapointsToAlarm:  jsii.Number(periods),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	a.publish(heartbeat, a.n.alarms.heartbeat, "StatusHeartbeatAlarmPublishes", "StatusHeartbeatAlarmPublishesToAlertTopic")

	days := overdueDays(props.Schedule, props.RotationWindow)
	description := "flowkey: " + props.SecretName + " has not rotated for more than " + strconv.FormatFloat(days, 'f', -1, 64) +
		" days, its schedule (" + props.Schedule + ") plus its window (" + props.RotationWindow + ") and an hour: rotation is disabled, or every attempt failed; see describe-secret and the rotator's log group"
	if a.n.fleet != nil {
		// The status publishes the maximum over the stack's secret and every
		// tenant, whose monthly schedule may leave 31 days between two
		// rotations (internal/fleet OverdueAfter).
		days = fleetOverdueDays(props, days)
		description = "flowkey: the stack's secret or a tenant of its fleet has not rotated for more than " + strconv.FormatFloat(days, 'f', -1, 64) +
			" days, the longer of the secret's schedule (" + props.Schedule + ") plus its window and an hour, and a tenant's longest gap (31 days) plus its window (" +
			props.Fleet.window() + ") and an hour: run {\"command\":\"status\"} for the overdue tenants, and see the rotator's log group"
	}
	overdue := awscloudwatch.NewAlarm(a.stack, jsii.String("RotationOverdueAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:          jsii.String(a.n.alarms.overdue),
		AlarmDescription:   jsii.String(description),
		Metric:             statusMetric(fn, rotationAgeMetric, "Maximum"),
		Threshold:          jsii.Number(days),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		// The heartbeat alarms on missing data.
		TreatMissingData: awscloudwatch.TreatMissingData_IGNORE,
	})
	a.publish(overdue, a.n.alarms.overdue, "RotationOverdueAlarmPublishes", "RotationOverdueAlarmPublishesToAlertTopic")
	if a.n.fleet != nil {
		newTenantsAlarm(a, fn)
	}
}

// heartbeatPeriods is the number of hourly periods without a status after
// which the heartbeat alarms: two of the longest gaps between runs, within
// CloudWatch's 7 days of evaluation. checkStatusSchedule keeps that above
// one gap.
func heartbeatPeriods(statusSchedule string) int {
	gap, _ := statusGapHours(statusSchedule)
	return min(2*gap, maxStatusGapHours+1)
}

// overdueDays is the age after which the last rotation is overdue: the
// longest gap between two scheduled starts, the window in which one may
// start, and an hour for its four steps, in days rounded up to a
// thousandth.
func overdueDays(schedule, window string) float64 {
	gap, _ := rotationGapHours(schedule)
	w, _ := strconv.Atoi(strings.TrimSuffix(window, "h"))
	return math.Ceil(float64(gap+w+1)/24*1000) / 1000
}

// tenantsAlarmName is the fleet's alarm on unhealthy tenants; the fleet's
// other alarms are the stack's, on the status's aggregates.
func tenantsAlarmName(stackName string) string { return stackName + "-tenants-unhealthy" }

// tenantsUnhealthyHours is how long the fleet status must keep finding an
// unhealthy tenant before the alarm fires: longer than a rotation that
// Secrets Manager retries, so that only a tenant that stays broken (a
// revoked token, a rotation stuck incomplete, an unreadable secret) wakes
// anyone. Drift and overdue rotations have their own alarms.
const tenantsUnhealthyHours = 3

// newTenantsAlarm alarms when every fleet status of tenantsUnhealthyHours
// consecutive hours found an unhealthy tenant. Sum: each invocation of a
// status run publishes the tenants it read, so an hour's sum is the run's
// count. Missing hours (a slower schedule) are ignored; the heartbeat
// watches those.
func newTenantsAlarm(a alerts, fn awslambda.Function) {
	name := tenantsAlarmName(*a.stack.StackName())
	alarm := awscloudwatch.NewAlarm(a.stack, jsii.String("TenantsUnhealthyAlarm"), &awscloudwatch.AlarmProps{
		AlarmName: jsii.String(name),
		AlarmDescription: jsii.String("flowkey: for " + strconv.Itoa(tenantsUnhealthyHours) + " hours every fleet status found unhealthy tenants (drifted, " +
			"rotation incomplete or overdue, or unreadable); run {\"command\":\"status\"} for the list and each tenant's reason"),
		Metric:             statusMetric(fn, tenantsUnhealthyMetric, "Sum"),
		Threshold:          jsii.Number(0),
		EvaluationPeriods:  jsii.Number(tenantsUnhealthyHours),
		DatapointsToAlarm:  jsii.Number(tenantsUnhealthyHours),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_IGNORE,
	})
	a.publish(alarm, name, "TenantsUnhealthyAlarmPublishes", "TenantsUnhealthyAlarmPublishesToAlertTopic")
}

// tenantsUnhealthyMetric is what a fleet status publishes (internal/metrics
// EMF.Tenants): the tenants of the invocation that are not healthy.
const tenantsUnhealthyMetric = "TenantsUnhealthy"
