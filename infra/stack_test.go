package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

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
		// errors, throttles, duration, rotation events undelivered; drift,
		// heartbeat, rotation overdue, status schedule undelivered.
		"AWS::CloudWatch::Alarm": 8,
	})
}

// An ARN outside the stack's region fails synthesis like any bad setting,
// naming the setting and the fix.
func TestEnvironmentMismatchBecomesAnErrorAnnotation(t *testing.T) {
	app := newTestApp(t.TempDir(), map[string]any{})
	stack := NewRotationStack(app, "Elsewhere", &RotationStackProps{
		StackProps:           awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(testAccount), Region: jsii.String("eu-west-1")}},
		SecretName:           testSecretName,
		PhoneNumberIDs:       testPhoneIDs,
		AccessTokenSecretARN: testTokenARN,
		GraphAPIVersion:      testGraphVerion,
		Schedule:             DefaultSchedule,
		RotationWindow:       DefaultRotationWindow,
		StatusSchedule:       DefaultStatusSchedule,
		CodePath:             synthesized.codeDir,
		LogRetentionDays:     DefaultLogRetentionDays,
	})
	errs := annotationTexts(t, assertions.Annotations_FromStack(stack).FindError(jsii.String("*"), assertions.Match_AnyValue()))
	if len(errs) != 1 {
		t.Fatalf("%d error annotations, want 1: %q", len(errs), errs)
	}
	for _, want := range []string{settingTokenSecretARN.Env, "region us-east-1, not the stack's region eu-west-1", "fix:"} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("annotation %q does not mention %q", errs[0], want)
		}
	}
}
