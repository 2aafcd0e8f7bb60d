package main

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
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
	return resourcesIn(synthesized.template, typ)
}

// resourcesIn are the resources of a type in a template.
func resourcesIn(template map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range template["Resources"].(map[string]any) {
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
	return onlyIn(t, synthesized.template, typ)
}

func onlyIn(t *testing.T, template map[string]any, typ string) (string, map[string]any) {
	t.Helper()
	rs := resourcesIn(template, typ)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1: %v", len(rs), typ, slices.Sorted(maps.Keys(rs)))
	}
	for id, r := range rs {
		return id, r
	}
	panic("unreachable")
}

func properties(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

// resource returns the resource with a logical ID.
func resource(t *testing.T, id string) map[string]any {
	t.Helper()
	return resourceIn(t, synthesized.template, id)
}

func resourceIn(t *testing.T, template map[string]any, id string) map[string]any {
	t.Helper()
	r, ok := template["Resources"].(map[string]any)[id].(map[string]any)
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
	return cfnIDIn(t, synthesized.stack, path...)
}

func cfnIDIn(t *testing.T, stack awscdk.Stack, path ...string) string {
	t.Helper()
	var c constructs.IConstruct = stack
	for _, id := range path {
		c = c.Node().TryFindChild(jsii.String(id))
		if c == nil {
			t.Fatalf("no construct %s below the stack", strings.Join(path, "/"))
		}
	}
	for range 4 {
		if el, ok := c.(awscdk.CfnElement); ok {
			return *stack.GetLogicalId(el)
		}
		if c = c.Node().DefaultChild(); c == nil {
			break
		}
	}
	t.Fatalf("construct %s has no CloudFormation resource", strings.Join(path, "/"))
	return ""
}

// providerUUID names CDK's singleton AwsCustomResource provider.
func providerUUID() string {
	return strings.ReplaceAll(*customresources.AwsCustomResource_PROVIDER_FUNCTION_UUID(), "-", "")
}

// ids of the resources the expectations refer to.
type logicalIDs struct {
	key, secret, role, policy, fn, logs, topic, rule, alarm, permission string
	seed, seedRole, seedPolicy, seedFn, seedLogs                        string
	operatorPolicy, invokeConfig                                        string
	statusRule, statusPermission, driftAlarm                            string
	throttlesAlarm, durationAlarm, rotationEventsAlarm                  string
	heartbeatAlarm, overdueAlarm, statusEventsAlarm                     string
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
	l.throttlesAlarm = cfnID(t, "RotatorThrottlesAlarm")
	l.durationAlarm = cfnID(t, "RotatorDurationAlarm")
	l.rotationEventsAlarm = cfnID(t, "RotationEventsDeliveryAlarm")
	l.heartbeatAlarm = cfnID(t, "StatusHeartbeatAlarm")
	l.overdueAlarm = cfnID(t, "RotationOverdueAlarm")
	l.statusEventsAlarm = cfnID(t, "StatusScheduleDeliveryAlarm")
	l.seed, _ = only(t, "Custom::AWS")
	l.seedRole = cfnID(t, "SecretSeedRole")
	l.seedPolicy = cfnID(t, "SecretSeed", "CustomResourcePolicy")
	// CDK's singleton provider lives at the stack's root, named by its UUID.
	l.seedFn = cfnID(t, "AWS"+providerUUID())
	l.seedLogs = cfnID(t, "SecretSeedLogs")
	return l
}

// alarmARNOf is the ARN of an alarm of the main test stack by its name's suffix.
func alarmARNOf(suffix string) any {
	return partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + testStackName + "-" + suffix)
}

var (
	accountRoot      = map[string]any{"AWS": partitionARN(":iam::" + testAccount + ":root")}
	rotatorRoleARN   = partitionARN(":iam::" + testAccount + ":role/" + testStackName + "-rotator-" + testRegion)
	secretARNPattern = partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testSecretName + "-??????")
	topicARN         = partitionARN(":sns:" + testRegion + ":" + testAccount + ":" + testStackName + "-alerts")
	errorsAlarmARN   = partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + testStackName + "-rotator-errors")
	driftAlarmARN    = partitionARN(":cloudwatch:" + testRegion + ":" + testAccount + ":alarm:" + testStackName + "-drift")
)
