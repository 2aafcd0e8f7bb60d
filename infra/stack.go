package main

import (
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/metrics"
)

// Sizing of the rotator. template.yaml repeats them; a test keeps the two equal.
//
// The longest step is testSecret: it polls Meta for up to VERIFY_TIMEOUT
// (90 s) and, if a number does not verify, rolls every number back, each
// upload retried up to GRAPH_MAX_ATTEMPTS (5) x GRAPH_REQUEST_TIMEOUT (10 s)
// plus backoff, about 70 s with the numbers in parallel. 90 + 70 = 160 s,
// and 300 s leaves room for slow Graph responses and a cold start.
// setSecret's uploads need at most the same 70 s.
//
// 256 MB: the process needs a few tens of MB, but Lambda gives CPU in
// proportion to memory (1,769 MB = 1 vCPU), and an RSA-2048 key generated
// with crypto/rsa (when KMS_KEY_ID is empty) is a CPU-bound prime search
// with a long tail: seconds on the 1/14 vCPU of 128 MB. Beyond 256 MB more
// memory buys little: the steps mostly wait on Meta and Secrets Manager.
const (
	rotatorTimeoutSeconds = 300
	rotatorMemoryMB       = 256
	rotatorLogLevel       = "INFO"
	logRetention          = awslogs.RetentionDays_ONE_YEAR
)

// The seed: the secret's first version, written once (see NewRotationStack).
const (
	// seedVersionID is the ClientRequestToken, and so the VersionId, of the
	// first version: uuid.NewSHA1(uuid.NameSpaceURL,
	// "https://github.com/flowkey/flowkey/infra#seed-version"). It must
	// never change: because it is fixed, PutSecretValue can add the seed to
	// a secret at most once and fails on any later attempt with other data.
	seedVersionID = "e0d1db6c-1e5b-5247-af7f-df9e462ab3b5"
	// seedStage is the only label the seed asks for. Secrets Manager adds
	// AWSCURRENT by itself to the first version of a secret, and only to
	// that; the label also keeps the version from being deprecated and
	// deleted, so seedVersionID stays taken for the life of the secret.
	seedStage = "flowkey-seed"
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

// NewRotationStack defines the key, the secret, the rotator and its alerts.
// Invalid props become an error annotation on the stack (synthesis then
// fails with that message) instead of a panic.
func NewRotationStack(scope constructs.Construct, id string, props *RotationStackProps) awscdk.Stack {
	var sp awscdk.StackProps
	if props != nil {
		sp = props.StackProps
	}
	if sp.Description == nil {
		sp.Description = jsii.String("flowkey: rotates the WhatsApp Flows business RSA-2048 key held in Secrets Manager")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	if err := props.Validate(); err != nil {
		awscdk.Annotations_Of(stack).AddError(jsii.String(err.Error()))
		return stack
	}
	initial, err := props.initialSecretString()
	if err != nil {
		awscdk.Annotations_Of(stack).AddError(jsii.String(err.Error()))
		return stack
	}
	configJSON, err := props.configJSON()
	if err != nil {
		awscdk.Annotations_Of(stack).AddError(jsii.String(err.Error()))
		return stack
	}

	stackName := *stack.StackName()
	account, region := stack.Account(), stack.Region()
	// These resources get fixed names so that the key policy can name them:
	// a Ref from the key policy would be a cycle (topic -> key -> topic).
	topicName := stackName + "-alerts"
	alarmName := stackName + "-rotator-errors"
	driftAlarmName := stackName + "-drift"
	topicARN := stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("sns"), Resource: jsii.String(topicName)})
	alarmARN := stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"),
		ResourceName: jsii.String(alarmName), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	driftAlarmARN := stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"),
		ResourceName: jsii.String(driftAlarmName), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	// The secret's own ARN cannot appear in the key policy (the secret is
	// encrypted with the key); its name plus the 6 random characters that
	// Secrets Manager appends is as narrow.
	secretARNPattern := stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"),
		ResourceName: jsii.String(props.SecretName + "-??????"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	viaSecretsManager := jsii.String("secretsmanager." + *region + ".amazonaws.com")

	role := awsiam.NewRole(stack, jsii.String("RotatorRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("flowkey rotator: rotates one secret, nothing else"),
	})

	key := awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("flowkey: encrypts " + props.SecretName + " and generates its RSA-2048 key pairs"),
		Alias:             jsii.String("alias/flowkey/" + stackName),
		EnableKeyRotation: jsii.Bool(true),
		// Retained: consumers must still decrypt old versions after a stack
		// is deleted by mistake. Deleting the key is a deliberate manual step.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		Policy: awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
			// Administration only: unlike CDK's default (kms:* for the
			// account), no principal gets cryptographic use of the key from
			// IAM alone. The account keeps managing it, so it cannot be
			// locked out.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("KeyAdministration"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
				Actions: jsii.Strings(
					"kms:CancelKeyDeletion", "kms:CreateAlias", "kms:Delete*", "kms:Describe*",
					"kms:Disable*", "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*",
					"kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
					"kms:TagResource", "kms:UntagResource", "kms:Update*",
				),
				Resources: jsii.Strings("*"),
			}),
			// Reading and writing this secret: the seed custom resource
			// writing its first version, the rotator, and the consumers of
			// the key. Each still needs secretsmanager and kms permissions
			// in its own IAM policy.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("UseThroughSecretsManagerForThisSecretOnly"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
				Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:ViaService": viaSecretsManager, "kms:CallerAccount": account},
					"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": secretARNPattern},
				},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("RotatorGeneratesKeyPairsForThisSecretOnly"),
				Principals: &[]awsiam.IPrincipal{role},
				Actions:    jsii.Strings("kms:GenerateDataKeyPair"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"},
					"StringLike":   map[string]any{"kms:EncryptionContext:" + keypair.EncryptionContextKey: secretARNPattern},
				},
			}),
			// The alert topic is encrypted with this key, so the services
			// that publish to it must be able to use it for that topic.
			// EventBridge does not send aws:SourceArn/aws:SourceAccount on
			// this path; the topic's encryption context is its limit.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EventBridgePublishesToAlertTopic"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
				Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN},
				},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("CloudWatchAlarmPublishesToAlertTopic"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
				Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": account},
					"ArnEquals":    map[string]any{"aws:SourceArn": alarmARN},
				},
			}),
		}}),
	})

	// No SecretString and no GenerateSecretString: CloudFormation creates
	// the secret empty (no version) and, as neither property exists, never
	// writes a version on a later deploy. A SecretString built from the
	// settings would: any changed setting would make CloudFormation put a
	// configuration-only version as AWSCURRENT, moving the live private key
	// to AWSPREVIOUS while Meta still holds its public key.
	secret := awssecretsmanager.NewCfnSecret(stack, jsii.String("Secret"), &awssecretsmanager.CfnSecretProps{
		Name:        jsii.String(props.SecretName),
		Description: jsii.String("flowkey: the WhatsApp Flows business key pair and its configuration"),
		KmsKeyId:    key.KeyArn(),
	})
	// Retained for the same reason as the key: it holds the live private key.
	secret.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	secretARN := secret.Ref() // Ref of AWS::SecretsManager::Secret is its ARN

	seed := newSeed(stack, secretARN, key.KeyArn(), viaSecretsManager, initial)

	logGroup := awslogs.NewLogGroup(stack, jsii.String("RotatorLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	// Least privilege, one statement per need. CDK adds the X-Ray statement
	// for Tracing ACTIVE to the same policy.
	for _, st := range []*awsiam.PolicyStatementProps{
		{
			Sid:       jsii.String("RotateThisSecret"),
			Actions:   jsii.Strings("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"),
			Resources: &[]*string{secretARN},
		},
		{
			Sid:       jsii.String("ReadGraphAccessToken"),
			Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
			Resources: jsii.Strings(props.AccessTokenSecretARN),
		},
		{
			Sid:       jsii.String("GenerateKeyPairsForThisSecret"),
			Actions:   jsii.Strings("kms:GenerateDataKeyPair"),
			Resources: &[]*string{key.KeyArn()},
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:EncryptionContext:" + keypair.EncryptionContextKey: secretARN,
				"kms:DataKeyPairSpec": "RSA_2048",
			}},
		},
		{
			// What Secrets Manager does with the key on the rotator's behalf
			// when it reads and writes versions of this secret.
			Sid:       jsii.String("UseKeyThroughSecretsManagerForThisSecret"),
			Actions:   jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
			Resources: &[]*string{key.KeyArn()},
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":                  viaSecretsManager,
				"kms:EncryptionContext:SecretARN": secretARN,
			}},
		},
		{
			// Instead of AWSLambdaBasicExecutionRole (logs on every group):
			// the group exists, so no CreateLogGroup. Its Arn attribute ends
			// in ":*", which covers its streams.
			Sid:       jsii.String("WriteOwnLogs"),
			Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
			Resources: &[]*string{logGroup.LogGroupArn()},
		},
	} {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(st))
	}

	fn := awslambda.NewFunction(stack, jsii.String("Rotator"), &awslambda.FunctionProps{
		Description:  jsii.String("flowkey rotator for " + props.SecretName),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(props.CodePath), nil),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(rotatorTimeoutSeconds)),
		MemorySize:   jsii.Number(rotatorMemoryMB),
		Role:         role,
		LogGroup:     logGroup,
		Tracing:      awslambda.Tracing_ACTIVE,
		// No ReservedConcurrentExecutions: the four steps are separate
		// synchronous invocations, and a throttled one fails the rotation.
		Environment: &map[string]*string{
			config.EnvKMSKeyID:            key.KeyArn(),
			config.EnvAccessTokenSecretID: jsii.String(props.AccessTokenSecretARN),
			config.EnvGraphBaseURL:        jsii.String(graph.DefaultBaseURL),
			config.EnvGraphVersion:        jsii.String(props.GraphAPIVersion),
			config.EnvGraphConcurrency:    jsii.String(strconv.Itoa(config.DefaultGraphConcurrency)),
			config.EnvGraphMaxAttempts:    jsii.String(strconv.Itoa(config.DefaultGraphMaxAttempts)),
			config.EnvGraphRequestTimeout: jsii.String(seconds(config.DefaultGraphRequestTimeout)),
			config.EnvVerifyTimeout:       jsii.String(seconds(config.DefaultVerifyTimeout)),
			config.EnvSecretID:            secretARN,
			config.EnvLogLevel:            jsii.String(rotatorLogLevel),
		},
	})

	// Lambda retries a failed asynchronous invocation twice by default. The
	// scheduled status is the only asynchronous caller: the next one is its
	// retry, and each retry would spend another Graph call per number from
	// Meta's hourly budget, likely when Meta is already failing. A rotate
	// sent asynchronously must not be repeated either: a retry after it
	// started a rotation would start a second one. Secrets Manager invokes
	// the steps synchronously, so this does not touch rotations.
	fn.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{RetryAttempts: jsii.Number(0)})

	// The rotate command calls RotateSecret. The RotateSecret reference
	// (and the platform facts) say the caller also needs
	// lambda:InvokeFunction on the rotation function, while an older user
	// guide says RotateSecret alone triggers a configured rotation; the
	// narrow grant covers both. It is the function's own unqualified ARN,
	// the RotationLambdaARN that Secrets Manager invokes, and the code makes
	// no Lambda calls of its own. A policy of its own, not the role's
	// default policy: the function depends on that one, and naming the
	// function's ARN in it would be a cycle.
	awsiam.NewPolicy(stack, jsii.String("RotatorOperatorPolicy"), &awsiam.PolicyProps{
		Roles: &[]awsiam.IRole{role},
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("StartRotationOfThisSecret"),
				Actions:   jsii.Strings("secretsmanager:RotateSecret"),
				Resources: &[]*string{secretARN},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("InvokeThisFunctionForRotateSecret"),
				Actions:   jsii.Strings("lambda:InvokeFunction"),
				Resources: &[]*string{fn.FunctionArn()},
			}),
		},
	})

	// Written by hand instead of Function.addPermission/RotationSchedule so
	// that it carries aws:SourceAccount (confused deputy) and aws:SourceArn:
	// this function rotates this secret and no other.
	invoke := awslambda.NewCfnPermission(stack, jsii.String("SecretsManagerInvokesRotator"), &awslambda.CfnPermissionProps{
		Action:        jsii.String("lambda:InvokeFunction"),
		FunctionName:  fn.FunctionArn(),
		Principal:     jsii.String("secretsmanager.amazonaws.com"),
		SourceAccount: account,
		SourceArn:     secretARN,
	})

	// The L2 RotationSchedule has no cron and no window.
	schedule := awssecretsmanager.NewCfnRotationSchedule(stack, jsii.String("RotationSchedule"), &awssecretsmanager.CfnRotationScheduleProps{
		SecretId:          secretARN,
		RotationLambdaArn: fn.FunctionArn(),
		RotationRules: &awssecretsmanager.CfnRotationSchedule_RotationRulesProperty{
			ScheduleExpression: jsii.String(props.Schedule),
			Duration:           jsii.String(props.RotationWindow),
		},
		// Deploying must not upload a new key to Meta on its own: numbers
		// may still be served by a key this secret does not know. Secrets
		// Manager then only runs testSecret against the configuration; the
		// operator starts the first rotation with the RotateSecretCommand
		// output once the consumers read this secret.
		RotateImmediatelyOnUpdate: jsii.Bool(false),
	})
	schedule.AddResourceDependency(invoke, jsii.String(
		"created in parallel, Secrets Manager may fail with \"cannot invoke the specified Lambda function\" (aws-cdk #26481)"))
	// Creating the schedule runs testSecret, which reads AWSCURRENT: the
	// seed must be there.
	schedule.Node().AddDependency(seed)

	topic := awssns.NewTopic(stack, jsii.String("AlertTopic"), &awssns.TopicProps{
		TopicName:   jsii.String(topicName),
		DisplayName: jsii.String("flowkey rotation alerts"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if props.AlertEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.AlertEmail), nil))
	}

	// Secrets Manager reports these through CloudTrail (no trail needed);
	// delivery is best effort, hence also the Errors alarm below.
	rule := awsevents.NewCfnRule(stack, jsii.String("RotationFailedRule"), &awsevents.CfnRuleProps{
		Description: jsii.String("flowkey: a rotation of " + props.SecretName + " failed or was abandoned"),
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

	alarm := awscloudwatch.NewAlarm(stack, jsii.String("RotatorErrorsAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(alarmName),
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
	alarmMayPublish(topic, "RotatorErrorsAlarmPublishes", alarm.AlarmArn(), account)

	if props.statusScheduleOn() {
		addStatusSchedule(stack, props, fn, key, topic, topicARN, driftAlarmName, driftAlarmARN)
	}

	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions " +
			"(Service Authorization Reference), so Resource must be *; every other statement names its resource."),
		AppliesTo: &[]any{"Resource::*"},
	}}, jsii.Bool(true))

	out := func(id, desc string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: value})
	}
	out("SecretArn", "The secret that holds the key; consumers read AWSCURRENT and AWSPREVIOUS", secretARN)
	out("KeyArn", "The KMS key of the secret; consumers need kms:Decrypt on it", key.KeyArn())
	out("RotatorFunctionName", "The rotation Lambda; its logs are in RotatorLogGroupName", fn.FunctionName())
	out("RotatorLogGroupName", "The rotation Lambda's log group", logGroup.LogGroupName())
	out("RotatorRoleArn", "The rotator's execution role, for key policies outside this stack (a token secret under its own KMS key)", role.RoleArn())
	out("AlertTopicArn", "Rotation failures and rotator errors are published here", topic.TopicArn())
	out("RotateSecretCommand", "Starts a rotation now", jsii.String("aws secretsmanager rotate-secret --region "+*region+" --secret-id "+*secretARN))
	out("SecretConfiguration", "The secret's config as the settings describe it. Only the first deploy writes it; "+
		"apply a change with the README's 'Changing the numbers after the first deploy'", jsii.String(configJSON))
	return stack
}

// addStatusSchedule runs the status command on props.StatusSchedule and
// alarms, on the alert topic, when a status finds drifted numbers.
func addStatusSchedule(stack awscdk.Stack, props *RotationStackProps, fn awslambda.Function, key awskms.Key, topic awssns.Topic, topicARN *string, alarmName string, alarmARN *string) {
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
		AlarmName: jsii.String(alarmName),
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
	// key policy names the topic and the alarm by their constructed ARNs
	// (a Ref would be a cycle: key -> alarm -> topic -> key).
	alarmMayPublish(topic, "DriftAlarmPublishes", alarm.AlarmArn(), stack.Account())
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DriftAlarmPublishesToAlertTopic"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": stack.Account()},
			"ArnEquals":    map[string]any{"aws:SourceArn": alarmARN},
		},
	}), jsii.Bool(false))
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

// seconds writes a duration the way an operator would ("90s", not "1m30s").
func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }

// addNagChecks runs cdk-nag's AwsSolutions pack on every stack of the app;
// findings become error/warning annotations, which fail `cdk synth`.
func addNagChecks(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}
