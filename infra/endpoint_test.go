package main

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/gateway"
)

// The Flows endpoint (issue 11): off unless its settings ask for it; then a
// Lambda behind a public Function URL whose role reads the two secrets and
// invokes the one backend, with its own log group and alarms.

// endpointIDs are the endpoint's resources in a variant.
type endpointIDs struct {
	fn, role, policy, logs, url, key, secret string
}

func endpointIDsOf(t *testing.T, v variant) endpointIDs {
	t.Helper()
	e := endpointIDs{
		fn:     cfnIDIn(t, v.stack, "Endpoint"),
		role:   cfnIDIn(t, v.stack, "EndpointRole"),
		policy: cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy"),
		logs:   cfnIDIn(t, v.stack, "EndpointLogs"),
		url:    cfnIDIn(t, v.stack, "Endpoint", "FunctionUrl"),
		secret: cfnIDIn(t, v.stack, "Secret"),
	}
	e.key, _ = onlyIn(t, v.template, "AWS::KMS::Key")
	return e
}

// endpointVariants are the variants with the endpoint, by name.
func endpointVariants() map[string]variant {
	return map[string]variant{"endpoint": synthesized.endpoint, "platform": synthesized.platform, "agnostic": synthesized.agnostic, "kms+endpoint": synthesized.kmsEndpoint}
}

// Without its settings, the stack has no endpoint: no URL, no role, no
// alarm, no output.
func TestEndpointOffByDefault(t *testing.T) {
	for name, v := range map[string]variant{
		"main": {synthesized.stack, synthesized.template}, "off": {synthesized.offStack, synthesized.offTemplate}, "adopted": synthesized.adopted,
	} {
		if c := v.stack.Node().TryFindChild(jsii.String("Endpoint")); c != nil {
			t.Errorf("%s: an Endpoint construct exists", name)
		}
		if rs := resourcesIn(v.template, "AWS::Lambda::Url"); len(rs) != 0 {
			t.Errorf("%s: Function URLs %v", name, slices.Sorted(maps.Keys(rs)))
		}
		for k := range v.template["Outputs"].(map[string]any) {
			if strings.HasPrefix(k, "Endpoint") {
				t.Errorf("%s: output %s", name, k)
			}
		}
	}
}

func TestEndpointFunction(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	p := properties(resourceIn(t, v.template, e.fn))
	for k, want := range map[string]any{
		"Runtime":       "provided.al2023",
		"Architectures": []string{"arm64"},
		"Handler":       "bootstrap",
		"Timeout":       10,
		"MemorySize":    512,
		"TracingConfig": map[string]any{"Mode": "Active"},
		"LoggingConfig": map[string]any{"LogGroup": ref(e.logs)},
		"Role":          getAtt(e.role, "Arn"),
		"Description":   "flowkey Flows endpoint for " + testSecretName,
	} {
		assertEqual(t, "endpoint "+k, p[k], want)
	}
	for _, k := range []string{"ReservedConcurrentExecutions", "VpcConfig", "KmsKeyArn"} {
		if v, ok := p[k]; ok {
			t.Errorf("endpoint %s = %v, want unset", k, v)
		}
	}
	assertEqual(t, "endpoint environment", p["Environment"].(map[string]any)["Variables"], map[string]any{
		config.EnvKeySecretID:         ref(e.secret),
		config.EnvAppSecretID:         testAppSecretARN,
		config.EnvBackendFunction:     testBackendFunctionARN,
		config.EnvBackendTimeout:      "6s",
		config.EnvKeyringTTL:          "300s",
		config.EnvKeyringRefreshFloor: "1s",
		config.EnvMaxBodyBytes:        "1048576",
		config.EnvLogLevel:            "INFO",
	})
	assertEqual(t, "endpoint log retention", properties(resourceIn(t, v.template, e.logs)), map[string]any{"RetentionInDays": DefaultLogRetentionDays})
	// The platform variant's backend is a URL.
	vars := properties(resourceIn(t, synthesized.platform.template, cfnIDIn(t, synthesized.platform.stack, "Endpoint")))["Environment"].(map[string]any)["Variables"].(map[string]any)
	if vars[config.EnvBackendURL] != testBackendURL || vars[config.EnvBackendFunction] != nil {
		t.Errorf("platform: BACKEND_URL/BACKEND_FUNCTION = %v/%v, want the URL alone", vars[config.EnvBackendURL], vars[config.EnvBackendFunction])
	}
}

// Every variant's environment is one the endpoint accepts, names only
// variables it reads, never turns the signature check off, and leaves the
// backend's deadline inside the function's timeout.
func TestEndpointEnvironmentLoadsAndFits(t *testing.T) {
	for name, v := range endpointVariants() {
		fn := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "Endpoint")))
		vars := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
		if _, ok := vars[config.EnvSkipSignatureCheck]; ok {
			t.Errorf("%s: the environment sets %s", name, config.EnvSkipSignatureCheck)
		}
		env := map[string]string{}
		for k, val := range vars {
			if !slices.Contains(config.EndpointNames(), k) {
				t.Errorf("%s: %s is not a variable the endpoint reads", name, k)
			}
			s, ok := val.(string)
			if !ok {
				s = "resolved-at-deploy" // the secret's Ref: its ARN at deploy time
			}
			env[k] = s
		}
		cfg, err := config.LoadEndpoint(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: config.LoadEndpoint on the stack's environment: %v", name, err)
		}
		timeout := time.Duration(fn["Timeout"].(float64)) * time.Second
		if cfg.SkipSignatureCheck || cfg.BackendTimeout+gateway.AnswerReserve >= timeout {
			t.Errorf("%s: skip %v, backend timeout %s + %s does not fit the %s timeout", name, cfg.SkipSignatureCheck, cfg.BackendTimeout, gateway.AnswerReserve, timeout)
		}
	}
}

// Auth type NONE (the HMAC check is the authentication), buffered, and
// exactly the two public statements a URL created since October 2025
// needs: InvokeFunctionUrl for auth type NONE, and InvokeFunction only
// through the URL, so that * cannot invoke the function directly.
func TestEndpointFunctionURL(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	assertEqual(t, "function URL", properties(resourceIn(t, v.template, e.url)), map[string]any{
		"AuthType": "NONE", "InvokeMode": "BUFFERED", "TargetFunctionArn": getAtt(e.fn, "Arn"),
	})
	var public []any
	for _, r := range resourcesIn(v.template, "AWS::Lambda::Permission") {
		if p := properties(r); reflect.DeepEqual(p["FunctionName"], getAtt(e.fn, "Arn")) || p["Principal"] == "*" {
			public = append(public, p)
		}
	}
	slices.SortFunc(public, func(a, b any) int {
		return strings.Compare(a.(map[string]any)["Action"].(string), b.(map[string]any)["Action"].(string))
	})
	assertEqual(t, "the endpoint's permissions", public, []any{
		map[string]any{"Action": "lambda:InvokeFunction", "FunctionName": getAtt(e.fn, "Arn"), "Principal": "*", "InvokedViaFunctionUrl": true},
		map[string]any{"Action": "lambda:InvokeFunctionUrl", "FunctionName": getAtt(e.fn, "Arn"), "Principal": "*", "FunctionUrlAuthType": "NONE"},
	})
}

func TestEndpointRole(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	p := properties(resourceIn(t, v.template, e.role))
	assertEqual(t, "endpoint role", p, map[string]any{
		"RoleName":    testEndpointStackName + "-endpoint-" + testRegion,
		"Description": "flowkey Flows endpoint: reads the key and app secrets, invokes its backend, nothing else",
		"AssumeRolePolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"},
			}},
		},
	})
	var attached []string
	for id, r := range resourcesIn(v.template, "AWS::IAM::Policy") {
		if slices.ContainsFunc(properties(r)["Roles"].([]any), func(x any) bool { return reflect.DeepEqual(x, ref(e.role)) }) {
			attached = append(attached, id)
		}
	}
	assertEqual(t, "policies of the endpoint role", attached, []string{e.policy})
	assertEqual(t, "endpoint policy", properties(resourceIn(t, v.template, e.policy))["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "ReadKeySecret", "Effect": "Allow", "Resource": ref(e.secret),
				"Action": []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"},
			},
			viaSecretsManagerStatement("DecryptKeySecretThroughSecretsManager", getAtt(e.key, "Arn"), ref(e.secret)),
			custodyDecryptStatement("DecryptWithCustodyKeysOfThisSecret", ref(e.secret)),
			map[string]any{"Sid": "ReadAppSecret", "Effect": "Allow", "Resource": testAppSecretARN, "Action": "secretsmanager:GetSecretValue"},
			map[string]any{"Sid": "InvokeBackend", "Effect": "Allow", "Resource": testBackendFunctionARN, "Action": "lambda:InvokeFunction"},
			map[string]any{
				"Sid": "WriteOwnLogs", "Effect": "Allow", "Resource": getAtt(e.logs, "Arn"),
				"Action": []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			},
			map[string]any{"Effect": "Allow", "Resource": "*", "Action": []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"}},
		},
	})
}

// With an HTTPS backend the role invokes nothing; an app secret under its
// own key is decrypted through Secrets Manager for that secret only; in a
// VPC the network policy is the rotator's.
func TestEndpointRoleOnThePlatform(t *testing.T) {
	v := synthesized.platform
	e := endpointIDsOf(t, v)
	stmts := properties(resourceIn(t, v.template, e.policy))["PolicyDocument"].(map[string]any)["Statement"].([]any)
	var sids []any
	for _, s := range stmts {
		sids = append(sids, s.(map[string]any)["Sid"])
	}
	assertEqual(t, "platform: endpoint statements", sids, []any{
		"ReadKeySecret", "DecryptKeySecretThroughSecretsManager", "DecryptWithCustodyKeysOfThisSecret", "ReadAppSecret", "DecryptAppSecret", "WriteOwnLogs", nil,
	})
	assertEqual(t, "app secret key grant", stmts[4], viaSecretsManagerStatement("DecryptAppSecret", testAppSecretKeyARN, testAppSecretARN))
	assertEqual(t, "platform: endpoint role boundary", properties(resourceIn(t, v.template, e.role))["PermissionsBoundary"], testBoundaryARN)
}

// roleSuppressions are the reviewed cdk-nag suppressions of the roles of a
// variant with the endpoint: the X-Ray statement of each role that traces,
// the endpoint's KMS custody Decrypt, and the rotator's KMS custody policy.
func roleSuppressions(t *testing.T, v variant) []string {
	t.Helper()
	rotator, endpoint := " AwsSolutions-IAM5 Resource::*", " AwsSolutions-IAM5 Resource::*,regex:"+custodyKeysRegex
	return sorted([]string{
		cfnIDIn(t, v.stack, "RotatorRole") + rotator, cfnIDIn(t, v.stack, "RotatorRole", "DefaultPolicy") + rotator,
		cfnIDIn(t, v.stack, "EndpointRole") + endpoint, cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy") + endpoint,
		cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy") + custodyPolicySuppression,
	})
}

// custodyPolicySuppression is the rotator's KMS custody policy's.
const custodyPolicySuppression = " AwsSolutions-IAM5 Resource::*,regex:" + custodyKeysRegex + ",regex:" + custodyAliasesRegex

func viaSecretsManagerStatement(sid string, key, secret any) map[string]any {
	return map[string]any{
		"Sid": sid, "Effect": "Allow", "Resource": key, "Action": "kms:Decrypt",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"kms:ViaService":                  "secretsmanager." + testRegion + ".amazonaws.com",
			"kms:EncryptionContext:SecretARN": secret,
		}},
	}
}

// The stack's key policy admits the endpoint's Decrypt as it admits every
// consumer's: account principals with the IAM permission, through Secrets
// Manager, for this secret. The endpoint's role is an account principal,
// and its grant asks for no more than the statement allows.
func TestKeyPolicyAdmitsTheEndpoint(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	var use map[string]any
	for _, s := range properties(resourceIn(t, v.template, e.key))["KeyPolicy"].(map[string]any)["Statement"].([]any) {
		if st := s.(map[string]any); st["Sid"] == "UseThroughSecretsManagerForThisSecretOnly" {
			use = st
		}
	}
	if use == nil {
		t.Fatal("no UseThroughSecretsManagerForThisSecretOnly statement in the key policy")
	}
	assertEqual(t, "key policy statement for consumers", use, map[string]any{
		"Sid": "UseThroughSecretsManagerForThisSecretOnly", "Effect": "Allow", "Principal": accountRoot, "Resource": "*",
		"Action": []any{"kms:Decrypt", "kms:GenerateDataKey"},
		"Condition": map[string]any{
			"StringEquals": map[string]any{"kms:ViaService": "secretsmanager." + testRegion + ".amazonaws.com", "kms:CallerAccount": testAccount},
			"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": secretARNPattern},
		},
	})
	// The secret this pattern matches is the one the endpoint's grant names.
	assertEqual(t, "the secret's name", properties(resourceIn(t, v.template, e.secret))["Name"], testSecretName)
}

func TestEndpointOutputs(t *testing.T) {
	v := synthesized.endpoint
	e := endpointIDsOf(t, v)
	outputs := v.template["Outputs"].(map[string]any)
	for k, want := range map[string]any{
		"EndpointUrl":          getAtt(e.url, "FunctionUrl"),
		"EndpointFunctionName": ref(e.fn),
		"EndpointLogGroupName": ref(e.logs),
		"EndpointRoleArn":      getAtt(e.role, "Arn"),
	} {
		o, ok := outputs[k].(map[string]any)
		if !ok {
			t.Errorf("no output %s", k)
			continue
		}
		assertEqual(t, "output "+k, o["Value"], want)
	}
	if d := outputs["EndpointUrl"].(map[string]any)["Description"].(string); !strings.Contains(d, "endpoint_uri") {
		t.Errorf("EndpointUrl description %q does not say where it goes", d)
	}
}

// The endpoint variant: nothing beyond the main stack's resources (without
// the stack's own topic) and the endpoint's, and cdk-nag finds nothing,
// with one reviewed suppression per role that traces.
func TestEndpointInventoryAndNag(t *testing.T) {
	v := synthesized.endpoint
	assertEqual(t, "endpoint resource types", typeCounts(v.template), map[string]int{
		"AWS::KMS::Key": 1, "AWS::KMS::Alias": 1, "AWS::SecretsManager::Secret": 1, "AWS::SecretsManager::RotationSchedule": 1,
		"Custom::AWS": 1, "AWS::IAM::Role": 3, "AWS::IAM::Policy": 5, "AWS::Logs::LogGroup": 3, "AWS::Lambda::Function": 3,
		"AWS::Lambda::Permission": 4, "AWS::Lambda::EventInvokeConfig": 1, "AWS::Lambda::Url": 1,
		"AWS::Events::Rule": 2, "AWS::CloudWatch::Alarm": 13,
	})
	assertNagClean(t, "endpoint", v)
	assertEqual(t, "endpoint: cdk-nag suppressions", nagSuppressions(t, v.template), roleSuppressions(t, v))
}

// custodyDecryptStatement is a kms:Decrypt with the KMS custody keys of the
// secret (key/* of the test account and region, tagged for it), with
// RSAES_OAEP_SHA_256 only.
func custodyDecryptStatement(sid string, secret any) map[string]any {
	return map[string]any{
		"Sid": sid, "Effect": "Allow", "Resource": partitionARN(":kms:" + testRegion + ":" + testAccount + ":key/*"), "Action": "kms:Decrypt",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"aws:ResourceTag/flowkey:secret-arn": secret,
			"kms:EncryptionAlgorithm":            "RSAES_OAEP_SHA_256",
		}},
	}
}
