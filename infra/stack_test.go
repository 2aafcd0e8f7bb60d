package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/uuid"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Template helpers. Expected values are written the way CloudFormation
// JSON spells them and compared whole, so an extra action, resource or
// condition fails the test.

func ref(id string) any          { return map[string]any{"Ref": id} }
func getAtt(id, attr string) any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }

// partitionARN: with a concrete region, cdk.json's
// @aws-cdk/core:enablePartitionLiterals writes the partition literally.
func partitionARN(rest string) any { return "arn:aws" + rest }
func join(parts ...any) any        { return map[string]any{"Fn::Join": []any{"", parts}} }

// normalize makes Go literals comparable with the decoded template
// ([]string becomes []any, int becomes float64).
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := normalize(t, got), normalize(t, want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", "  ")
		wb, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("%s:\n got: %s\nwant: %s", what, gb, wb)
	}
}

func resources(t *testing.T, typ string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

// only returns the one resource of a type, failing if there are others: a
// second policy or permission would escape the exact checks.
func only(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := resources(t, typ)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1: %v", len(rs), typ, slices.Sorted(mapsKeys(rs)))
	}
	for id, r := range rs {
		return id, r
	}
	panic("unreachable")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func properties(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

// resource returns the resource with a logical ID.
func resource(t *testing.T, id string) map[string]any {
	t.Helper()
	r, ok := synthesized.template["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("no resource %q in the template", id)
	}
	return r
}

// cfnID is the logical ID of the CloudFormation resource that the
// construct at path (construct IDs below the stack) stands for, following
// default children down to it. It tells apart resources of a type the
// stack has twice (the rotator's and the seed's role, function, log group).
func cfnID(t *testing.T, path ...string) string {
	t.Helper()
	var c constructs.IConstruct = synthesized.stack
	for _, id := range path {
		c = c.Node().TryFindChild(jsii.String(id))
		if c == nil {
			t.Fatalf("no construct %s below the stack", strings.Join(path, "/"))
		}
	}
	for range 4 {
		if el, ok := c.(awscdk.CfnElement); ok {
			return *synthesized.stack.GetLogicalId(el)
		}
		if c = c.Node().DefaultChild(); c == nil {
			break
		}
	}
	t.Fatalf("construct %s has no CloudFormation resource", strings.Join(path, "/"))
	return ""
}

// ids of the resources the expectations refer to.
type logicalIDs struct {
	key, secret, role, policy, fn, logs, topic, rule, alarm, permission string
	seed, seedRole, seedPolicy, seedFn, seedLogs                        string
	operatorPolicy, invokeConfig                                        string
	statusRule, statusPermission, driftAlarm                            string
}

func ids(t *testing.T) logicalIDs {
	t.Helper()
	var l logicalIDs
	l.key, _ = only(t, "AWS::KMS::Key")
	l.secret, _ = only(t, "AWS::SecretsManager::Secret")
	l.role = cfnID(t, "RotatorRole")
	l.policy = cfnID(t, "RotatorRole", "DefaultPolicy")
	l.fn = cfnID(t, "Rotator")
	l.logs = cfnID(t, "RotatorLogs")
	l.topic, _ = only(t, "AWS::SNS::Topic")
	l.rule = cfnID(t, "RotationFailedRule")
	l.alarm = cfnID(t, "RotatorErrorsAlarm")
	l.permission = cfnID(t, "SecretsManagerInvokesRotator")
	l.operatorPolicy = cfnID(t, "RotatorOperatorPolicy")
	l.invokeConfig = cfnID(t, "Rotator", "EventInvokeConfig")
	l.statusRule = cfnID(t, "StatusScheduleRule")
	l.statusPermission = cfnID(t, "StatusScheduleInvokesRotator")
	l.driftAlarm = cfnID(t, "DriftAlarm")
	l.seed, _ = only(t, "Custom::AWS")
	l.seedRole = cfnID(t, "SecretSeedRole")
	l.seedPolicy = cfnID(t, "SecretSeed", "CustomResourcePolicy")
	// CDK's singleton provider lives at the stack's root, named by its UUID.
	l.seedFn = cfnID(t, "AWS"+strings.ReplaceAll(*customresources.AwsCustomResource_PROVIDER_FUNCTION_UUID(), "-", ""))
	l.seedLogs = cfnID(t, "SecretSeedLogs")
	return l
}

var (
	accountRoot      = map[string]any{"AWS": partitionARN(":iam::" + testAccount + ":root")}
	secretARNPattern = partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testSecretName + "-??????")
	topicARN         = partitionARN(":sns:" + testRegion + ":" + testAccount + ":" + testStackName + "-alerts")
	alarmARN         = partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + testStackName + "-rotator-errors")
	driftAlarmARN    = partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + testStackName + "-drift")
)

func TestKey(t *testing.T) {
	l := ids(t)
	_, key := only(t, "AWS::KMS::Key")
	p := properties(key)
	if p["EnableKeyRotation"] != true {
		t.Errorf("EnableKeyRotation = %v, want true", p["EnableKeyRotation"])
	}
	if key["DeletionPolicy"] != "Retain" || key["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("key DeletionPolicy/UpdateReplacePolicy = %v/%v, want Retain: it protects the live private key", key["DeletionPolicy"], key["UpdateReplacePolicy"])
	}
	for _, k := range []string{"KeySpec", "KeyUsage", "MultiRegion"} {
		if v, ok := p[k]; ok {
			t.Errorf("%s = %v, want the default (symmetric ENCRYPT_DECRYPT, single region)", k, v)
		}
	}
	_, alias := only(t, "AWS::KMS::Alias")
	assertEqual(t, "alias", properties(alias), map[string]any{
		"AliasName":   "alias/flowkey/" + testStackName,
		"TargetKeyId": getAtt(l.key, "Arn"),
	})
	assertEqual(t, "key policy", p["KeyPolicy"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "KeyAdministration", "Effect": "Allow", "Principal": accountRoot, "Resource": "*",
				"Action": []string{
					"kms:CancelKeyDeletion", "kms:CreateAlias", "kms:Delete*", "kms:Describe*",
					"kms:Disable*", "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*",
					"kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
					"kms:TagResource", "kms:UntagResource", "kms:Update*",
				},
			},
			map[string]any{
				"Sid": "UseThroughSecretsManagerForThisSecretOnly", "Effect": "Allow", "Principal": accountRoot, "Resource": "*",
				"Action": []string{"kms:Decrypt", "kms:GenerateDataKey"},
				"Condition": map[string]any{
					"StringEquals": map[string]any{"kms:CallerAccount": testAccount, "kms:ViaService": "secretsmanager." + testRegion + ".amazonaws.com"},
					"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": secretARNPattern},
				},
			},
			map[string]any{
				"Sid": "RotatorGeneratesKeyPairsForThisSecretOnly", "Effect": "Allow", "Resource": "*",
				"Principal": map[string]any{"AWS": getAtt(l.role, "Arn")},
				"Action":    "kms:GenerateDataKeyPair",
				"Condition": map[string]any{
					"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"},
					"StringLike":   map[string]any{"kms:EncryptionContext:" + keypair.EncryptionContextKey: secretARNPattern},
				},
			},
			map[string]any{
				"Sid": "EventBridgePublishesToAlertTopic", "Effect": "Allow", "Resource": "*",
				"Principal": map[string]any{"Service": "events.amazonaws.com"},
				"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey*"},
				"Condition": map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN}},
			},
			map[string]any{
				"Sid": "CloudWatchAlarmPublishesToAlertTopic", "Effect": "Allow", "Resource": "*",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey*"},
				"Condition": map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": testAccount},
					"ArnEquals":    map[string]any{"aws:SourceArn": alarmARN},
				},
			},
			map[string]any{
				"Sid": "DriftAlarmPublishesToAlertTopic", "Effect": "Allow", "Resource": "*",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey*"},
				"Condition": map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": testAccount},
					"ArnEquals":    map[string]any{"aws:SourceArn": driftAlarmARN},
				},
			},
		},
	})
}

// The key policy names the topic and alarm by constructed ARNs; they must
// be the ARNs of the resources actually created.
func TestConstructedARNsMatchResources(t *testing.T) {
	_, topic := only(t, "AWS::SNS::Topic")
	if got := properties(topic)["TopicName"]; got != testStackName+"-alerts" {
		t.Errorf("TopicName = %v, want %s-alerts (the key policy's aws:sns:topicArn)", got, testStackName)
	}
	l := ids(t)
	if got := properties(resource(t, l.alarm))["AlarmName"]; got != testStackName+"-rotator-errors" {
		t.Errorf("AlarmName = %v, want %s-rotator-errors (the key policy's aws:SourceArn)", got, testStackName)
	}
	if got := properties(resource(t, l.driftAlarm))["AlarmName"]; got != testStackName+"-drift" {
		t.Errorf("drift AlarmName = %v, want %s-drift (the key policy's aws:SourceArn)", got, testStackName)
	}
	if !strings.HasPrefix(testSecretName, "flowkey/") {
		t.Fatal("fixture changed")
	}
	_, secret := only(t, "AWS::SecretsManager::Secret")
	if got := properties(secret)["Name"]; got != testSecretName {
		t.Errorf("secret Name = %v, want %s (the key policy's SecretARN pattern)", got, testSecretName)
	}
}

func TestSecret(t *testing.T) {
	l := ids(t)
	_, secret := only(t, "AWS::SecretsManager::Secret")
	if secret["DeletionPolicy"] != "Retain" || secret["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("secret DeletionPolicy/UpdateReplacePolicy = %v/%v, want Retain", secret["DeletionPolicy"], secret["UpdateReplacePolicy"])
	}
	// Whole: a SecretString or GenerateSecretString here would let a
	// deploy write a version (see TestNoDeployAfterTheFirstWritesTheSecret).
	assertEqual(t, "secret properties", properties(secret), map[string]any{
		"Name":        testSecretName,
		"Description": "flowkey: the WhatsApp Flows business key pair and its configuration",
		"KmsKeyId":    getAtt(l.key, "Arn"),
	})
}

// The fixed version ID of the seed. A literal, not seedVersionID: a stack
// deployed with one value must never see another, or a replaced seed
// could add a version.
const wantSeedVersionID = "e0d1db6c-1e5b-5247-af7f-df9e462ab3b5"

// The seed's one call, compared whole, and its document read as the
// rotator reads it.
func TestSecretSeed(t *testing.T) {
	l := ids(t)
	// A new logical ID would replace the resource on deployed stacks: its
	// Create would run again and fail (see newSeed).
	if l.seed != "SecretSeedA3884800" {
		t.Errorf("seed logical ID = %s, want SecretSeedA3884800: keep the construct's ID and place", l.seed)
	}
	seed := resource(t, l.seed)
	p := properties(seed)
	assertEqual(t, "seed property names", slices.Sorted(mapsKeys(p)), []string{"Create", "InstallLatestAwsSdk", "ServiceTimeout", "ServiceToken"})
	assertEqual(t, "seed ServiceToken", p["ServiceToken"], getAtt(l.seedFn, "Arn"))
	assertEqual(t, "seed InstallLatestAwsSdk", p["InstallLatestAwsSdk"], false)
	assertEqual(t, "seed ServiceTimeout", p["ServiceTimeout"], "300")

	const wantDocument = `{"schema_version":1,"config":{"phone_number_ids":["106540352242922","106540352242923"]}}`
	assertEqual(t, "seed Create call", sdkCall(t, p["Create"], map[string]string{l.secret: "REF:" + l.secret}), map[string]any{
		"service": "SecretsManager",
		"action":  "PutSecretValue",
		"parameters": map[string]any{
			"SecretId":           "REF:" + l.secret,
			"ClientRequestToken": wantSeedVersionID,
			"SecretString":       wantDocument,
			"VersionStages":      []string{"flowkey-seed"},
		},
		"physicalResourceId": map[string]any{"id": wantSeedVersionID},
	})

	doc, err := secretdoc.Parse([]byte(wantDocument))
	if err != nil {
		t.Fatalf("the seed is not a valid secret document: %v", err)
	}
	if doc.Key != nil {
		t.Error("the seed holds a key")
	}
	// The token ARN and Graph version stay out: the function's environment
	// carries them, and every deploy may change those.
	assertEqual(t, "seed config", doc.Config, secretdoc.Config{PhoneNumberIDs: testPhoneIDs})

	if got := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/flowkey/flowkey/infra#seed-version")).String(); got != wantSeedVersionID {
		t.Errorf("seedVersionID's comment derives %s, not %s", got, wantSeedVersionID)
	}
	// The permissions exist before the call; the deletion of the resource
	// calls nothing, whatever its policy.
	if deps, _ := seed["DependsOn"].([]any); !slices.Contains(deps, any(l.seedPolicy)) {
		t.Errorf("seed DependsOn = %v, want its policy %s", seed["DependsOn"], l.seedPolicy)
	}
}

// No deploy after the first may ever write a version of the key secret:
// a version written over the live one would take the private key that
// Meta holds out of AWSCURRENT.
func TestNoDeployAfterTheFirstWritesTheSecret(t *testing.T) {
	l := ids(t)
	// CloudFormation writes a version on update only from these properties.
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		for _, path := range findKeys(r.(map[string]any)["Properties"], "", "SecretString", "GenerateSecretString", "SecretBinary") {
			t.Errorf("%s has %s: CloudFormation would write a secret version when it changes", id, path)
		}
	}
	// The seed's call runs on Create only: no Update or Delete call, and
	// it is the only custom resource.
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		typ := r.(map[string]any)["Type"].(string)
		if !strings.HasPrefix(typ, "Custom::") && typ != "AWS::CloudFormation::CustomResource" {
			continue
		}
		if id != l.seed {
			t.Errorf("custom resource %s (%s): only the seed may be one", id, typ)
		}
		for _, k := range []string{"Update", "Delete"} {
			if v, ok := properties(r.(map[string]any))[k]; ok {
				t.Errorf("custom resource %s has an %s call %v: a deploy could write the secret", id, k, v)
			}
		}
	}
	// Should the seed's Create ever run again, it must not take AWSCURRENT.
	call := sdkCall(t, properties(resource(t, l.seed))["Create"], map[string]string{l.secret: "REF"})
	stages, _ := call["parameters"].(map[string]any)["VersionStages"].([]any)
	if len(stages) == 0 || slices.Contains(stages, any("AWSCURRENT")) {
		t.Errorf("seed VersionStages = %v: without stages, or with AWSCURRENT, PutSecretValue moves AWSCURRENT to the seed", stages)
	}
	// And the schedule, when it changes, does not start a rotation.
	_, schedule := only(t, "AWS::SecretsManager::RotationSchedule")
	if got := properties(schedule)["RotateImmediatelyOnUpdate"]; got != false {
		t.Errorf("RotateImmediatelyOnUpdate = %v, want false", got)
	}
}

// findKeys lists the paths, below v, of the map keys named names.
func findKeys(v any, path string, names ...string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if slices.Contains(names, k) {
				out = append(out, path+"."+k)
			}
			out = append(out, findKeys(c, path+"."+k, names...)...)
		}
	case []any:
		for i, c := range v {
			out = append(out, findKeys(c, fmt.Sprintf("%s[%d]", path, i), names...)...)
		}
	}
	return out
}

// sdkCall decodes an AwsCustomResource call property: JSON, or a
// Fn::Join of JSON around Refs, which refs names (logical ID -> text).
func sdkCall(t *testing.T, v any, refs map[string]string) map[string]any {
	t.Helper()
	text, ok := v.(string)
	if !ok {
		join, ok := v.(map[string]any)["Fn::Join"].([]any)
		if !ok || len(join) != 2 || join[0] != "" {
			t.Fatalf("call %v is neither a string nor a Fn::Join with an empty separator", v)
		}
		var b strings.Builder
		for _, part := range join[1].([]any) {
			switch part := part.(type) {
			case string:
				b.WriteString(part)
			case map[string]any:
				id, _ := part["Ref"].(string)
				r, ok := refs[id]
				if !ok {
					t.Fatalf("call refers to %v, which the test does not expect", part)
				}
				b.WriteString(r)
			default:
				t.Fatalf("call part %v", part)
			}
		}
		text = b.String()
	}
	var call map[string]any
	if err := json.Unmarshal([]byte(text), &call); err != nil {
		t.Fatalf("call %q: %v", text, err)
	}
	return call
}

// The seed's provider can do one thing: add the seed to this secret.
func TestSeedProvider(t *testing.T) {
	l := ids(t)
	role := properties(resource(t, l.seedRole))
	assertEqual(t, "seed role", role, map[string]any{
		"Description": "flowkey seed: writes the first version of one secret, once",
		"AssumeRolePolicyDocument": map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Action": "sts:AssumeRole", "Effect": "Allow",
				"Principal": map[string]any{"Service": "lambda.amazonaws.com"},
			}},
		},
	})
	var attached []string
	for id, r := range resources(t, "AWS::IAM::Policy") {
		if slices.ContainsFunc(properties(r)["Roles"].([]any), func(v any) bool { return reflect.DeepEqual(v, ref(l.seedRole)) }) {
			attached = append(attached, id)
		}
	}
	assertEqual(t, "policies of the seed role", attached, []string{l.seedPolicy})
	assertEqual(t, "seed policy", properties(resource(t, l.seedPolicy))["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "SeedThisSecret", "Effect": "Allow", "Resource": ref(l.secret),
				"Action": "secretsmanager:PutSecretValue",
			},
			map[string]any{
				"Sid": "EncryptSeedThroughSecretsManager", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": "kms:GenerateDataKey",
				"Condition": map[string]any{"StringEquals": map[string]any{
					"kms:ViaService":                  "secretsmanager." + testRegion + ".amazonaws.com",
					"kms:EncryptionContext:SecretARN": ref(l.secret),
				}},
			},
			map[string]any{
				"Sid": "WriteOwnLogs", "Effect": "Allow", "Resource": getAtt(l.seedLogs, "Arn"),
				"Action": []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			},
		},
	})

	fn := properties(resource(t, l.seedFn))
	assertEqual(t, "seed function property names", slices.Sorted(mapsKeys(fn)), []string{"Code", "Handler", "LoggingConfig", "Role", "Runtime", "Timeout"})
	assertEqual(t, "seed function role", fn["Role"], getAtt(l.seedRole, "Arn"))
	assertEqual(t, "seed function logs", fn["LoggingConfig"], map[string]any{"LogGroup": ref(l.seedLogs)})
	if rt, _ := fn["Runtime"].(string); !strings.HasPrefix(rt, "nodejs") {
		t.Errorf("seed function Runtime = %v, want a Node.js runtime (its SDK has PutSecretValue)", fn["Runtime"])
	}
	logs := resource(t, l.seedLogs)
	if got := properties(logs)["RetentionInDays"]; got != float64(365) {
		t.Errorf("seed log RetentionInDays = %v, want 365", got)
	}
}

func TestFunction(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.fn))
	for k, want := range map[string]any{
		"Runtime":       "provided.al2023",
		"Architectures": []string{"arm64"},
		"Handler":       "bootstrap",
		"Timeout":       rotatorTimeoutSeconds,
		"MemorySize":    rotatorMemoryMB,
		"TracingConfig": map[string]any{"Mode": "Active"},
		"LoggingConfig": map[string]any{"LogGroup": ref(l.logs)},
		"Role":          getAtt(l.role, "Arn"),
	} {
		assertEqual(t, "function "+k, p[k], want)
	}
	for _, k := range []string{"ReservedConcurrentExecutions", "VpcConfig", "KmsKeyArn"} {
		if v, ok := p[k]; ok {
			t.Errorf("function %s = %v, want unset", k, v)
		}
	}
	// Only asynchronous invocations (the status schedule) are affected:
	// Secrets Manager invokes the steps synchronously.
	_, invokeConfig := only(t, "AWS::Lambda::EventInvokeConfig")
	assertEqual(t, "async invoke config", properties(invokeConfig), map[string]any{
		"FunctionName":         ref(l.fn),
		"Qualifier":            "$LATEST",
		"MaximumRetryAttempts": 0,
	})
	vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
	assertEqual(t, "environment variable names", slices.Sorted(mapsKeys(vars)), sorted(config.Names()))
	assertEqual(t, "environment", vars, map[string]any{
		config.EnvKMSKeyID:            getAtt(l.key, "Arn"),
		config.EnvAccessTokenSecretID: testTokenARN,
		config.EnvGraphBaseURL:        "https://graph.facebook.com",
		config.EnvGraphVersion:        testGraphVerion,
		config.EnvGraphConcurrency:    "8",
		config.EnvGraphMaxAttempts:    "5",
		config.EnvGraphRequestTimeout: "10s",
		config.EnvVerifyTimeout:       "90s",
		config.EnvSecretID:            ref(l.secret),
		config.EnvLogLevel:            "INFO",
	})

	if got := properties(resource(t, l.logs))["RetentionInDays"]; got != float64(365) {
		t.Errorf("log RetentionInDays = %v, want 365", got)
	}
}

// The rotator must accept the environment the stack gives it, and the
// function's timeout must cover testSecret's worst case under it.
func TestFunctionEnvironmentLoadsAndFitsTheTimeout(t *testing.T) {
	fn := resource(t, ids(t).fn)
	vars := properties(fn)["Environment"].(map[string]any)["Variables"].(map[string]any)
	env := map[string]string{}
	for k, v := range vars {
		s, ok := v.(string)
		if !ok {
			s = "resolved-at-deploy" // a Ref or GetAtt: an ARN at deploy time
		}
		env[k] = s
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.Load on the stack's environment: %v", err)
	}
	timeout := time.Duration(properties(fn)["Timeout"].(float64)) * time.Second
	// testSecret: verification polling, then a rollback whose uploads are
	// each retried GraphMaxAttempts times; a minute for cold start and the
	// Secrets Manager calls.
	worst := cfg.VerifyTimeout + time.Duration(cfg.GraphMaxAttempts)*cfg.GraphRequestTimeout + time.Minute
	if worst > timeout {
		t.Errorf("testSecret may need %s but the function times out after %s", worst, timeout)
	}
}

func TestExecutionRole(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.role))
	assertEqual(t, "trust policy", p["AssumeRolePolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow",
			"Principal": map[string]any{"Service": "lambda.amazonaws.com"},
		}},
	})
	for _, k := range []string{"ManagedPolicyArns", "Policies", "PermissionsBoundary"} {
		if v, ok := p[k]; ok {
			t.Errorf("role %s = %v, want none: every permission is in the one policy below", k, v)
		}
	}
	for _, typ := range []string{"AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"} {
		if rs := resources(t, typ); len(rs) != 0 {
			t.Errorf("unexpected %s: %v", typ, slices.Sorted(mapsKeys(rs)))
		}
	}
	var attached []string
	for id, r := range resources(t, "AWS::IAM::Policy") {
		if slices.ContainsFunc(properties(r)["Roles"].([]any), func(v any) bool { return reflect.DeepEqual(v, ref(l.role)) }) {
			attached = append(attached, id)
		}
	}
	assertEqual(t, "policies of the rotator role", sorted(attached), sorted([]string{l.policy, l.operatorPolicy}))
	pp := properties(resource(t, l.policy))
	assertEqual(t, "policy roles", pp["Roles"], []any{ref(l.role)})
	assertEqual(t, "execution role policy", pp["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "RotateThisSecret", "Effect": "Allow", "Resource": ref(l.secret),
				"Action": []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"},
			},
			map[string]any{
				"Sid": "ReadGraphAccessToken", "Effect": "Allow", "Resource": testTokenARN,
				"Action": "secretsmanager:GetSecretValue",
			},
			map[string]any{
				"Sid": "GenerateKeyPairsForThisSecret", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": "kms:GenerateDataKeyPair",
				"Condition": map[string]any{"StringEquals": map[string]any{
					"kms:EncryptionContext:" + keypair.EncryptionContextKey: ref(l.secret),
					"kms:DataKeyPairSpec": "RSA_2048",
				}},
			},
			map[string]any{
				"Sid": "UseKeyThroughSecretsManagerForThisSecret", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": []string{"kms:Decrypt", "kms:GenerateDataKey"},
				"Condition": map[string]any{"StringEquals": map[string]any{
					"kms:ViaService":                  "secretsmanager." + testRegion + ".amazonaws.com",
					"kms:EncryptionContext:SecretARN": ref(l.secret),
				}},
			},
			map[string]any{
				"Sid": "WriteOwnLogs", "Effect": "Allow", "Resource": getAtt(l.logs, "Arn"),
				"Action": []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			},
			map[string]any{
				"Effect": "Allow", "Resource": "*",
				"Action": []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"},
			},
		},
	})
}

// What the rotate command needs, in a policy of its own: the function
// does not depend on it, so it can name the function's ARN.
func TestOperatorPolicy(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.operatorPolicy))
	assertEqual(t, "operator policy roles", p["Roles"], []any{ref(l.role)})
	assertEqual(t, "operator policy", p["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "StartRotationOfThisSecret", "Effect": "Allow", "Resource": ref(l.secret),
				"Action": "secretsmanager:RotateSecret",
			},
			map[string]any{
				"Sid": "InvokeThisFunctionForRotateSecret", "Effect": "Allow", "Resource": getAtt(l.fn, "Arn"),
				"Action": "lambda:InvokeFunction",
			},
		},
	})
	// Were the function to depend on this policy, its ARN in the policy
	// would be a cycle; CloudFormation would reject the template.
	deps, _ := resource(t, l.fn)["DependsOn"].([]any)
	if slices.Contains(deps, any(l.operatorPolicy)) {
		t.Errorf("function DependsOn = %v, includes the operator policy", deps)
	}
}

func TestInvokePermissionAndSchedule(t *testing.T) {
	l := ids(t)
	perm := resource(t, l.permission)
	assertEqual(t, "invoke permission", properties(perm), map[string]any{
		"Action":        "lambda:InvokeFunction",
		"FunctionName":  getAtt(l.fn, "Arn"),
		"Principal":     "secretsmanager.amazonaws.com",
		"SourceAccount": testAccount,
		"SourceArn":     ref(l.secret),
	})
	_, schedule := only(t, "AWS::SecretsManager::RotationSchedule")
	assertEqual(t, "rotation schedule", properties(schedule), map[string]any{
		"SecretId":                  ref(l.secret),
		"RotationLambdaARN":         getAtt(l.fn, "Arn"),
		"RotationRules":             map[string]any{"ScheduleExpression": testSchedule, "Duration": testWindow},
		"RotateImmediatelyOnUpdate": false,
	})
	deps, _ := schedule["DependsOn"].([]any)
	if !slices.Contains(deps, any(l.permission)) {
		t.Errorf("schedule DependsOn = %v, want it to include the invoke permission %s (aws-cdk #26481)", schedule["DependsOn"], l.permission)
	}
	// Creating the schedule runs testSecret on AWSCURRENT: the seed first.
	if !slices.Contains(deps, any(l.seed)) {
		t.Errorf("schedule DependsOn = %v, want it to include the seed %s", schedule["DependsOn"], l.seed)
	}
}

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
				map[string]any{
					"Sid": "DriftAlarmPublishes", "Effect": "Allow",
					"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
					"Action":    "sns:Publish", "Resource": ref(l.topic),
					"Condition": map[string]any{
						"ArnEquals":    map[string]any{"aws:SourceArn": getAtt(l.driftAlarm, "Arn")},
						"StringEquals": map[string]any{"aws:SourceAccount": testAccount},
					},
				},
			},
		},
	})

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
	})
}

func TestOutputs(t *testing.T) {
	l := ids(t)
	outputs := synthesized.template["Outputs"].(map[string]any)
	want := map[string]any{
		"SecretArn":           ref(l.secret),
		"KeyArn":              getAtt(l.key, "Arn"),
		"RotatorFunctionName": ref(l.fn),
		"RotatorLogGroupName": ref(l.logs),
		"RotatorRoleArn":      getAtt(l.role, "Arn"),
		"AlertTopicArn":       ref(l.topic),
		"RotateSecretCommand": join("aws secretsmanager rotate-secret --region "+testRegion+" --secret-id ", ref(l.secret)),
		"SecretConfiguration": `{"phone_number_ids":["106540352242922","106540352242923"]}`,
	}
	got := map[string]any{}
	for k, o := range outputs {
		got[k] = o.(map[string]any)["Value"]
	}
	assertEqual(t, "outputs", got, want)
}

// cdk-nag's AwsSolutions pack finds nothing, and the only suppression is
// the reviewed one.
func TestNag(t *testing.T) {
	a := assertions.Annotations_FromStack(synthesized.stack)
	for _, m := range annotationTexts(t, a.FindError(jsii.String("*"), assertions.Match_AnyValue())) {
		t.Errorf("error annotation: %s", m)
	}
	for _, m := range annotationTexts(t, a.FindWarning(jsii.String("*"), assertions.Match_AnyValue())) {
		t.Errorf("warning annotation: %s", m)
	}

	type suppression struct{ Resource, Rule, AppliesTo string }
	var got []suppression
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		md, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, rule := range rules {
			rm := rule.(map[string]any)
			if reason, _ := rm["reason"].(string); len(reason) < 40 {
				t.Errorf("%s suppresses %v with a reason a reviewer cannot judge: %q", id, rm["id"], reason)
			}
			applies, _ := json.Marshal(rm["applies_to"])
			got = append(got, suppression{id, rm["id"].(string), string(applies)})
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Resource < got[j].Resource })
	l := ids(t)
	// The role's suppression is inherited by its policy, where the
	// statement is; it covers only Resource::* (the X-Ray statement).
	// The seed's provider needs none: its own role, no managed policy.
	want := []suppression{
		{l.role, "AwsSolutions-IAM5", `["Resource::*"]`},
		{l.policy, "AwsSolutions-IAM5", `["Resource::*"]`},
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Resource < want[j].Resource })
	assertEqual(t, "cdk-nag suppressions", got, want)
}

// Invalid settings fail synthesis with a readable annotation, never a panic.
func TestInvalidPropsBecomeAnErrorAnnotation(t *testing.T) {
	app := newTestApp(t.TempDir(), map[string]any{})
	stack := NewRotationStack(app, "Invalid", &RotationStackProps{SecretName: testSecretName, CodePath: synthesized.codeDir})
	errs := annotationTexts(t, assertions.Annotations_FromStack(stack).FindError(jsii.String("*"), assertions.Match_AnyValue()))
	if len(errs) != 1 {
		t.Fatalf("%d error annotations, want 1: %q", len(errs), errs)
	}
	msg := errs[0]
	for _, want := range []string{settingPhoneNumberIDs.Context, settingTokenSecretARN.Env, "fix:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("annotation %q does not mention %q", msg, want)
		}
	}
}

// annotationTexts renders synthesis messages as "path: text" through their
// JSON form (the Go fields are deprecated aliases).
func annotationTexts[M any](t *testing.T, msgs *[]M) []string {
	t.Helper()
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []struct {
		ID    string `json:"id"`
		Entry struct {
			Data any `json:"data"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(decoded))
	for _, m := range decoded {
		out = append(out, fmt.Sprintf("%s: %v", m.ID, m.Entry.Data))
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// Nothing beyond what the tests above check: no helper Lambda but the
// seed's provider (no log retention function), no other policy,
// permission or topic.
func TestResourceInventory(t *testing.T) {
	got := map[string]int{}
	for _, r := range synthesized.template["Resources"].(map[string]any) {
		got[r.(map[string]any)["Type"].(string)]++
	}
	assertEqual(t, "resource types", got, map[string]int{
		"AWS::KMS::Key":                         1,
		"AWS::KMS::Alias":                       1,
		"AWS::SecretsManager::Secret":           1,
		"AWS::SecretsManager::RotationSchedule": 1,
		"Custom::AWS":                           1,
		"AWS::IAM::Role":                        2,
		"AWS::IAM::Policy":                      3,
		"AWS::Logs::LogGroup":                   2,
		"AWS::Lambda::Function":                 2,
		"AWS::Lambda::Permission":               2,
		"AWS::Lambda::EventInvokeConfig":        1,
		"AWS::SNS::Topic":                       1,
		"AWS::SNS::TopicPolicy":                 1,
		"AWS::SNS::Subscription":                1,
		"AWS::Events::Rule":                     2,
		"AWS::CloudWatch::Alarm":                2,
	})
}
