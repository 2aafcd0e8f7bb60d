package main

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/metrics"
)

// The Flows endpoint's alarms. Each watches what users or Meta would see,
// over 5-minute periods, and fires on 2 of 3 periods: one bad period (a
// burst of stray requests, one slow backend call) does not page, ten
// minutes of it within a quarter of an hour does. A period without
// requests is not breaching: no traffic is nothing failing. The rates come
// from the EMF metrics the endpoint writes for every request
// (internal/metrics Endpoint), Requests under (Function) and (Function,
// Status); the latency and errors from AWS/Lambda.
const (
	endpointAlarmPeriodMinutes = 5
	endpointAlarmPeriods       = 3
	endpointAlarmDatapoints    = 2

	// decryptFailureRatePercent: a 421 makes the WhatsApp client re-fetch
	// the key and retry once, and only Meta's signed requests reach the
	// decryption, so a 421 is a real user's request. A healthy endpoint
	// answers almost none: the key ring holds every live key and refreshes
	// on a miss, so rotations cause none; a client that still holds a key
	// no version has (two rotations within its cache time) gets one and
	// recovers. A key at Meta that the secret does not hold, a key ring
	// that cannot read the secret, or a wrong secret answer nearly 100%.
	// 5% separates the two with room.
	decryptFailureRatePercent = 5
	// badSignatureRatePercent: Meta signs every request, so a 432 is a
	// wrong app secret (every request: ~100%, every Flow broken, typically
	// after the app secret was reset in the Meta app) or traffic that is
	// not Meta's. The Function URL's name is random, so such traffic is
	// rare; 10% pages for the first and ignores a stray request among real
	// traffic.
	badSignatureRatePercent = 10
	// backendErrorRatePercent: a backend failure or timeout is an error
	// screen for the user (HTTP 500 or 504), and Meta throttles a Flow
	// whose endpoint errs. 5% of the backend calls.
	backendErrorRatePercent = 5
	// latencyAlarmMillis, for the p99 of the function's duration: Meta
	// gives up after 10 s, and a cold start spends up to 3 s loading the
	// keys and the app secret before the handler runs (outside Duration),
	// with the Function URL and the network to Meta on top. A p99 of 5 s
	// is 1% of requests within 2 s of the limit on a cold start. It is
	// under the backend's 6 s deadline, so a backend that uses most of its
	// deadline shows here before it times out.
	latencyAlarmMillis = 5000
)

// endpointAlarmNames are the alarms' fixed names, which the key policy names.
type endpointAlarmNames struct {
	decryptFailures, badSignatures, backendErrors, latency, errors string
}

func newEndpointAlarmNames(stackName string) endpointAlarmNames {
	return endpointAlarmNames{
		decryptFailures: stackName + "-endpoint-421-rate",
		badSignatures:   stackName + "-endpoint-432-rate",
		backendErrors:   stackName + "-endpoint-backend-errors",
		latency:         stackName + "-endpoint-latency",
		errors:          stackName + "-endpoint-errors",
	}
}

// newEndpointAlarms watches the endpoint: the 421 and 432 rates, the
// backend's errors, the p99 latency against Meta's limit, and the
// function's own failures. Each publishes to the alert topic when it fires
// and when it clears, admitted by the topic and key policies like the
// rotator's alarms.
func newEndpointAlarms(a alerts, props *RotationStackProps, e endpoint) {
	names := a.n.endpointAlarms
	period := awscdk.Duration_Minutes(jsii.Number(endpointAlarmPeriodMinutes))
	requests := func(status string) awscloudwatch.Metric {
		dims := map[string]*string{"Function": e.fn.FunctionName()}
		if status != "" {
			dims["Status"] = jsii.String(status)
		}
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String("Requests"),
			DimensionsMap: &dims, Period: period, Statistic: jsii.String("Sum"),
		})
	}
	// A period with requests but none of this status has no datapoint
	// for it: FILL makes it 0%, and a period without requests stays
	// without a datapoint (the division needs both).
	rate := func(status, label string) awscloudwatch.MathExpression {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String("100 * FILL(answered, 0) / requests"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{"answered": requests(status), "requests": requests("")},
			Label:        jsii.String(label),
			Period:       period,
		})
	}
	alarm := func(id, name, description string, metric awscloudwatch.IMetric, threshold float64) {
		al := awscloudwatch.NewAlarm(a.stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(name),
			AlarmDescription:   jsii.String("flowkey Flows endpoint of " + props.SecretName + ": " + description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(endpointAlarmPeriods),
			DatapointsToAlarm:  jsii.Number(endpointAlarmDatapoints),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.publish(al, name, id+"Publishes", id+"PublishesToAlertTopic")
	}
	pct := func(v int) string { return strconv.Itoa(v) + "%" }

	alarm("Endpoint421RateAlarm", names.decryptFailures,
		"more than "+pct(decryptFailureRatePercent)+" of requests were answered 421 (not decryptable): a key at Meta that the secret does not hold "+
			"(run the rotator's status), or a key ring that cannot read the secret; see the endpoint's log group (reason, key_label)",
		rate("421", "421 answers, % of requests"), decryptFailureRatePercent)
	alarm("Endpoint432RateAlarm", names.badSignatures,
		"more than "+pct(badSignatureRatePercent)+" of requests were answered 432 (X-Hub-Signature-256 wrong): the app secret in "+props.Endpoint.AppSecretARN+
			" is not the Meta app's current one (update the secret: the endpoint reads it again within seconds), or the traffic is not Meta's; see the endpoint's log group (reason)",
		rate("432", "432 answers, % of requests"), badSignatureRatePercent)
	// BackendErrors is written on every backend call, 1 for a failure or a
	// timeout and 0 otherwise: its average is the share that failed.
	alarm("EndpointBackendErrorsAlarm", names.backendErrors,
		"more than "+pct(backendErrorRatePercent)+" of backend calls failed or timed out (HTTP 500 or 504 to the user); see the endpoint's log group (outcome backend_error, backend_timeout)",
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("100 * failed"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{"failed": awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String("BackendErrors"),
				DimensionsMap: &map[string]*string{"Function": e.fn.FunctionName()}, Period: period, Statistic: jsii.String("Average"),
			})},
			Label:  jsii.String("failed backend calls, %"),
			Period: period,
		}), backendErrorRatePercent)
	alarm("EndpointLatencyAlarm", names.latency,
		"the p99 of the function's duration is above "+strconv.Itoa(latencyAlarmMillis)+" ms, close to Meta's 10 s limit (Meta throttles slow Flows); "+
			"see backend_ms and duration_ms in the endpoint's log group",
		e.fn.MetricDuration(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("p99")}), latencyAlarmMillis)
	// Timeouts and crashes, and throttles (a busy account's concurrency):
	// the Function URL answers them itself and the gateway never logs
	// them. Any is a failed request.
	alarm("EndpointErrorsAlarm", names.errors,
		"the function failed (a timeout or a crash) or Lambda throttled it, so the Function URL answered an error; see the endpoint's log group and the account's concurrency",
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String("FILL(errors, 0) + FILL(throttles, 0)"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"errors":    e.fn.MetricErrors(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}),
				"throttles": e.fn.MetricThrottles(&awscloudwatch.MetricOptions{Period: period, Statistic: jsii.String("Sum")}),
			},
			Label:  jsii.String("failed or throttled invocations"),
			Period: period,
		}), 0)
}
