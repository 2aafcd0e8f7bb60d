package main

import (
	"maps"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/flowkey/flowkey/internal/config"
)

// Sizing of the Flows endpoint. template.yaml repeats them; a test keeps the
// two equal.
//
// 10 s is Meta's own limit for an answer (platform facts §2): past it the
// request has failed for the user whatever the function does, so a longer
// timeout would only pay for answers nobody waits for. The gateway gives the
// backend BACKEND_TIMEOUT (6 s) of it.
//
// 512 MB: Lambda gives CPU in proportion to memory (1,769 MB = 1 vCPU), and
// the work is CPU-bound: one RSA-2048 private-key operation per request in
// the steady state, up to three on a miss, and three key parses on a cold
// start. At 512 MB (about 0.29 vCPU) those stay in the milliseconds; the
// process itself needs a few tens of MB.
const (
	endpointTimeoutSeconds = 10
	endpointMemoryMB       = 512
	endpointLogLevel       = "INFO"
)

// endpoint is the Flows endpoint Lambda, its Function URL, log group and role.
type endpoint struct {
	fn   awslambda.Function
	url  awslambda.FunctionUrl
	logs awslogs.LogGroup
	role awsiam.Role
}

// newEndpointRole is the endpoint's execution role, without its policies
// (newEndpoint adds them). It comes before the rotator: the rotator's
// environment names it, so that CloudFormation creates it before the
// rotator can put it in a KMS custody key's policy.
func newEndpointRole(stack awscdk.Stack, n stackNames) awsiam.Role {
	return awsiam.NewRole(stack, jsii.String("EndpointRole"), &awsiam.RoleProps{
		// Fixed, like the rotator's: the key policy of an app secret under
		// its own key, or a backend's resource policy in another account,
		// can name it before the first deploy.
		RoleName:    jsii.String(n.endpointRoleName),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("flowkey Flows endpoint: reads the key and app secrets, invokes its backend, nothing else"),
	})
}

// newEndpoint is the Flows endpoint (functions/endpoint) behind a public
// Function URL, running with role: it reads the key secret's labelled
// versions and the app secret, decrypts with the KMS custody keys of the
// secret, and calls the one backend of the settings.
func newEndpoint(stack awscdk.Stack, props *RotationStackProps, role awsiam.Role, key stackKey, s secret, n stackNames, logSettings logSettings, network network) endpoint {
	logs := logSettings.logGroup(stack, "EndpointLogs")
	grantEndpoint(stack, role, props.Endpoint, key.key, n.secretScope(s.arn), logs, n)

	fn := awslambda.NewFunction(stack, jsii.String("Endpoint"), &awslambda.FunctionProps{
		Description:  jsii.String("flowkey Flows endpoint for " + props.SecretName),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(props.Endpoint.CodePath), nil),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(endpointTimeoutSeconds)),
		MemorySize:   jsii.Number(endpointMemoryMB),
		Role:         role,
		LogGroup:     logs,
		Tracing:      awslambda.Tracing_ACTIVE,
		Environment:  endpointEnvironment(props, s.arn, n.fleet),
	})
	if network.enabled() {
		network.place(stack, "Endpoint", role, fn.Node().DefaultChild().(awslambda.CfnFunction))
	}

	// Auth type NONE: Meta cannot sign AWS requests, and the gateway's
	// X-Hub-Signature-256 check, before any RSA operation, is the
	// authentication. BUFFERED: the answer is one small body. With NONE,
	// aws-cdk-lib (2.275.0) adds both statements a URL created since
	// October 2025 needs for principal *: lambda:InvokeFunctionUrl with
	// lambda:FunctionUrlAuthType NONE, and lambda:InvokeFunction with
	// lambda:InvokedViaFunctionUrl true (so * cannot invoke it directly).
	// No CORS: Meta's servers call it, not browsers.
	url := fn.AddFunctionUrl(&awslambda.FunctionUrlOptions{
		AuthType:   awslambda.FunctionUrlAuthType_NONE,
		InvokeMode: awslambda.InvokeMode_BUFFERED,
	})

	// After the function, as for the rotator: Tracing ACTIVE adds the X-Ray
	// statement that the suppression covers.
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions " +
			"(Service Authorization Reference), so Resource must be *. KMS custody keys are created by rotations, so no key ARN " +
			"exists at synthesis: kms:Decrypt is on key/* of this account and region, limited to keys tagged for this secret " +
			"(aws:ResourceTag) and to RSAES_OAEP_SHA_256. Every other statement names its resource" + endpointFleetNagReason(n.fleet) + "."),
		AppliesTo: endpointNagAppliesTo(n.fleet),
	}}, jsii.Bool(true))
	return endpoint{fn: fn, url: url, logs: logs, role: role}
}

// endpointEnvironment is the endpoint's configuration
// (config.LoadEndpoint): the two secrets, the one backend, and the
// defaults written out, so that the console shows what runs. Never
// INSECURE_SKIP_SIGNATURE_CHECK: that is for local tests only.
func endpointEnvironment(props *RotationStackProps, secretARN *string, fleet *fleetNames) *map[string]*string {
	e := props.Endpoint
	env := map[string]*string{
		config.EnvKeySecretID:         secretARN,
		config.EnvAppSecretID:         jsii.String(e.AppSecretARN),
		config.EnvBackendTimeout:      jsii.String(seconds(config.DefaultBackendTimeout)),
		config.EnvKeyringTTL:          jsii.String(seconds(config.DefaultKeyringTTL)),
		config.EnvKeyringRefreshFloor: jsii.String(seconds(config.DefaultKeyringRefreshFloor)),
		config.EnvMaxBodyBytes:        jsii.String(strconv.Itoa(config.DefaultMaxBodyBytes)),
		config.EnvLogLevel:            jsii.String(endpointLogLevel),
	}
	if e.BackendFunctionARN != "" {
		env[config.EnvBackendFunction] = jsii.String(e.BackendFunctionARN)
	} else {
		env[config.EnvBackendURL] = jsii.String(e.BackendURL)
	}
	maps.Copy(env, endpointFleetVariables(props, fleet))
	return &env
}

// grantEndpoint gives role what the endpoint needs, one statement per need,
// in the role's default policy (CDK adds the X-Ray statement to it).
func grantEndpoint(stack awscdk.Stack, role awsiam.Role, e FlowsEndpoint, key awskms.IKey, scope secretScope, logs awslogs.LogGroup, n stackNames) {
	secretARN, viaSecretsManager := scope.arn, n.viaSecretsManager
	statements := []*awsiam.PolicyStatementProps{
		{
			// The key ring: DescribeSecret for the labels, GetSecretValue by
			// version ID for the keys. It writes nothing.
			Sid:       jsii.String("ReadKeySecret"),
			Actions:   jsii.Strings("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
			Resources: &[]*string{secretARN},
		},
		{
			// What Secrets Manager does with the stack's key when it returns
			// a version of this secret. The key policy admits it for this
			// secret (UseThroughSecretsManagerForThisSecretOnly).
			Sid:       jsii.String("DecryptKeySecretThroughSecretsManager"),
			Actions:   jsii.Strings("kms:Decrypt"),
			Resources: &[]*string{key.KeyArn()},
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":                  viaSecretsManager,
				"kms:EncryptionContext:SecretARN": secretARN,
			}},
		},
		// The key ring's kms:Decrypt for versions whose key is in KMS.
		endpointCustodyStatement(stack, scope),
		{
			Sid:       jsii.String("ReadAppSecret"),
			Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
			Resources: jsii.Strings(e.AppSecretARN),
		},
	}
	if e.AppSecretKeyARN != "" {
		// As for the token secret: the key's own policy must allow the same
		// (infra/README.md, "The Flows endpoint").
		statements = append(statements, &awsiam.PolicyStatementProps{
			Sid:       jsii.String("DecryptAppSecret"),
			Actions:   jsii.Strings("kms:Decrypt"),
			Resources: jsii.Strings(e.AppSecretKeyARN),
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:ViaService":                  viaSecretsManager,
				"kms:EncryptionContext:SecretARN": e.AppSecretARN,
			}},
		})
	}
	if e.BackendFunctionARN != "" {
		statements = append(statements, &awsiam.PolicyStatementProps{
			Sid:       jsii.String("InvokeBackend"),
			Actions:   jsii.Strings("lambda:InvokeFunction"),
			Resources: jsii.Strings(e.BackendFunctionARN),
		})
	}
	if n.fleet != nil {
		statements = append(statements, endpointFleetStatements(n.fleet, key.KeyArn(), viaSecretsManager)...)
	}
	statements = append(statements, &awsiam.PolicyStatementProps{
		Sid:       jsii.String("WriteOwnLogs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: &[]*string{logs.LogGroupArn()},
	})
	for _, st := range statements {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(st))
	}
}

// endpointOutputs report the URL to paste into the Flow and what the
// operator needs to find the endpoint.
func endpointOutputs(stack awscdk.Stack, e endpoint) {
	out := func(id, desc string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: value})
	}
	out("EndpointUrl", "The Flows endpoint: paste it as the Flow's endpoint URI (WhatsApp Manager, or endpoint_uri in the Flows API)", e.url.Url())
	out("EndpointFunctionName", "The Flows endpoint Lambda; its logs are in EndpointLogGroupName", e.fn.FunctionName())
	out("EndpointLogGroupName", "The Flows endpoint's log group: one line per request, never a payload field", e.logs.LogGroupName())
	out("EndpointRoleArn", "The endpoint's execution role, for key policies and backend resource policies outside this stack", e.role.RoleArn())
}

// endpointNagAppliesTo are the wildcard resources of the endpoint's role:
// X-Ray's *, the custody keys and, with the fleet on, its prefixes.
func endpointNagAppliesTo(fleet *fleetNames) *[]any {
	out := []any{"Resource::*", &cdknag.RegexAppliesTo{Regex: jsii.String(custodyKeysRegex)}}
	if fleet != nil {
		out = append(out, fleet.nagRegexes()...)
	}
	return &out
}

// endpointFleetNagReason extends the suppression's reason with the fleet's
// prefixes.
func endpointFleetNagReason(fleet *fleetNames) string {
	if fleet == nil {
		return ""
	}
	return "; tenants are enrolled at run time, so the tenants' (and their app secrets') name prefixes are the narrowest resources, " +
		"and reading a tenant's key secret also requires secretsmanager:ResourceTag/flowkey:fleet = this stack"
}
