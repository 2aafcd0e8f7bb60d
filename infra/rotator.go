package main

import (
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
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
)

// newRotatorRole is the rotator's execution role, without its policies
// (newRotator adds them). Its name is fixed (stackNames.rotatorRoleName)
// so that key policies can name it before it exists.
func newRotatorRole(stack awscdk.Stack, n stackNames) awsiam.Role {
	description := "flowkey rotator: rotates one secret, nothing else"
	if n.fleet != nil {
		description = "flowkey rotator: rotates one secret and the tenants of its fleet, nothing else"
	}
	return awsiam.NewRole(stack, jsii.String("RotatorRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(n.rotatorRoleName),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String(description),
	})
}

// rotator is the rotation Lambda and its log group.
type rotator struct {
	fn   awslambda.Function
	logs awslogs.LogGroup
}

// newRotator is the rotation Lambda with its log group and the policies of
// role, which it runs with.
func newRotator(stack awscdk.Stack, props *RotationStackProps, role awsiam.Role, key stackKey, s secret, n stackNames, logSettings logSettings, network network, custody custodyEnvironment) rotator {
	logs := logSettings.logGroup(stack, "RotatorLogs")
	grantRotation(role, props, key.key, s.arn, logs, n.viaSecretsManager)

	fn := awslambda.NewFunction(stack, jsii.String("Rotator"), &awslambda.FunctionProps{
		Description:  jsii.String("flowkey rotator for " + props.SecretName),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(props.CodePath), nil),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(rotatorTimeoutSeconds)),
		MemorySize:   jsii.Number(rotatorMemoryMB),
		Role:         role,
		LogGroup:     logs,
		Tracing:      awslambda.Tracing_ACTIVE,
		// No ReservedConcurrentExecutions: the four steps are separate
		// synchronous invocations, and a throttled one fails the rotation.
		Environment: rotatorEnvironment(props, key.key.KeyArn(), s.arn, custody, n.fleet),
	})
	if network.enabled() {
		network.place(stack, "Rotator", role, fn.Node().DefaultChild().(awslambda.CfnFunction))
	}

	// Lambda retries a failed asynchronous invocation twice by default. The
	// scheduled status is the only asynchronous caller: the next one is its
	// retry, and each retry would spend another Graph call per number from
	// Meta's hourly budget, likely when Meta is already failing. A rotate
	// sent asynchronously must not be repeated either: a retry after it
	// started a rotation would start a second one. Secrets Manager invokes
	// the steps synchronously, so this does not touch rotations.
	fn.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{RetryAttempts: jsii.Number(0)})

	grantOperatorCommands(stack, role, fn, s.arn)
	// After the function: Tracing ACTIVE is what adds the X-Ray statement,
	// and the suppression applies to the role's policies that exist now.
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions " +
			"(Service Authorization Reference), so Resource must be *; every other statement names its resource."),
		AppliesTo: &[]any{"Resource::*"},
	}}, jsii.Bool(true))
	return rotator{fn: fn, logs: logs}
}

// rotatorEnvironment is the function's configuration (internal/config).
func rotatorEnvironment(props *RotationStackProps, keyARN, secretARN *string, custody custodyEnvironment, fleet *fleetNames) *map[string]*string {
	env := map[string]*string{
		config.EnvKMSKeyID:            keyARN,
		config.EnvAccessTokenSecretID: jsii.String(props.AccessTokenSecretARN),
		config.EnvGraphBaseURL:        jsii.String(graph.DefaultBaseURL),
		config.EnvGraphVersion:        jsii.String(props.GraphAPIVersion),
		config.EnvGraphConcurrency:    jsii.String(strconv.Itoa(config.DefaultGraphConcurrency)),
		config.EnvGraphMaxAttempts:    jsii.String(strconv.Itoa(config.DefaultGraphMaxAttempts)),
		config.EnvGraphRequestTimeout: jsii.String(seconds(config.DefaultGraphRequestTimeout)),
		config.EnvVerifyTimeout:       jsii.String(seconds(config.DefaultVerifyTimeout)),
		config.EnvFunctionTimeout:     jsii.String(seconds(rotatorTimeoutSeconds * time.Second)),
		config.EnvSecretID:            secretARN,
		config.EnvLogLevel:            jsii.String(rotatorLogLevel),
	}
	maps.Copy(env, custody.variables())
	maps.Copy(env, fleetVariables(props, fleet, keyARN))
	return &env
}

// grantRotation gives role what the rotation steps need: least privilege,
// one statement per need, in the role's default policy. CDK adds the X-Ray
// statement for Tracing ACTIVE to the same policy.
func grantRotation(role awsiam.Role, props *RotationStackProps, key awskms.IKey, secretARN *string, logs awslogs.LogGroup, viaSecretsManager *string) {
	statements := []*awsiam.PolicyStatementProps{
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
	}
	if props.AccessTokenSecretKeyARN != "" {
		// A token secret under its own key: Secrets Manager decrypts it
		// with the caller's permissions. The key's own policy must allow
		// the same (infra/README.md, "A token secret under its own key").
		statements = append(statements, &awsiam.PolicyStatementProps{
			Sid:       jsii.String("DecryptGraphAccessToken"),
			Actions:   jsii.Strings("kms:Decrypt"),
			Resources: jsii.Strings(props.AccessTokenSecretKeyARN),
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":                  viaSecretsManager,
				"kms:EncryptionContext:SecretARN": props.AccessTokenSecretARN,
			}},
		})
	}
	statements = append(statements, []*awsiam.PolicyStatementProps{
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
			Resources: &[]*string{logs.LogGroupArn()},
		},
	}...)
	for _, st := range statements {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(st))
	}
}

// grantOperatorCommands lets the rotate command start a rotation.
//
// The rotate command calls RotateSecret. The RotateSecret reference (and
// the platform facts) say the caller also needs lambda:InvokeFunction on
// the rotation function, while an older user guide says RotateSecret alone
// triggers a configured rotation; the narrow grant covers both. It is the
// function's own unqualified ARN, the RotationLambdaARN that Secrets
// Manager invokes, and the code makes no Lambda calls of its own. A policy
// of its own, not the role's default policy: the function depends on that
// one, and naming the function's ARN in it would be a cycle.
func grantOperatorCommands(stack awscdk.Stack, role awsiam.Role, fn awslambda.Function, secretARN *string) {
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
}

// newRotationSchedule lets Secrets Manager invoke fn for this secret and
// puts the secret on props.Schedule.
func newRotationSchedule(stack awscdk.Stack, props *RotationStackProps, fn awslambda.Function, s secret, network network) awssecretsmanager.CfnRotationSchedule {
	// Written by hand instead of Function.addPermission/RotationSchedule so
	// that it carries aws:SourceAccount (confused deputy) and aws:SourceArn:
	// this function rotates this secret and no other.
	invoke := awslambda.NewCfnPermission(stack, jsii.String("SecretsManagerInvokesRotator"), &awslambda.CfnPermissionProps{
		Action:        jsii.String("lambda:InvokeFunction"),
		FunctionName:  fn.FunctionArn(),
		Principal:     jsii.String("secretsmanager.amazonaws.com"),
		SourceAccount: stack.Account(),
		SourceArn:     s.arn,
	})

	// The L2 RotationSchedule has no cron and no window.
	schedule := awssecretsmanager.NewCfnRotationSchedule(stack, jsii.String("RotationSchedule"), &awssecretsmanager.CfnRotationScheduleProps{
		SecretId:          s.arn,
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
	// seed must be there (an adopted secret has its own), and the
	// endpoints if the subnets reach AWS through them.
	if s.seed != nil {
		schedule.Node().AddDependency(s.seed)
	}
	network.requiredBy(schedule)
	return schedule
}

// seconds writes a duration the way an operator would ("90s", not "1m30s").
func seconds(d time.Duration) string { return strconv.Itoa(int(d/time.Second)) + "s" }
