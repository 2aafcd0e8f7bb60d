package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// The test deployment: fixed account and region so ARNs are literal.
const (
	testAccount     = "111122223333"
	testRegion      = "us-east-1"
	testStackName   = "FlowkeyTest"
	testSecretName  = "flowkey/whatsapp-flows-key"
	testTokenARN    = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token-AbCdEf"
	testAlertEmail  = "ops@example.com"
	testSchedule    = "cron(0 3 ? * SUN *)"
	testWindow      = "3h"
	testGraphVerion = "v23.0"
	// Not the default, so the tests see the setting arrive.
	testStatusSchedule = "cron(7 * * * ? *)"
	// The second stack of the test app turns the status schedule off.
	testOffStackName = "FlowkeyTestStatusOff"
)

var testPhoneIDs = []string{"106540352242922", "106540352242923"}

// synthesized is the one synthesis of the package, shared by every test:
// each synthesis starts a Node.js process and costs seconds.
var synthesized struct {
	stack    awscdk.Stack
	template map[string]any // CloudFormation template, normalized through JSON
	codeDir  string
	// The same settings with StatusSchedule "off", synthesized in the
	// same app (one synthesis for both).
	offStack    awscdk.Stack
	offTemplate map[string]any
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer jsii.Close()
	tmp, err := os.MkdirTemp("", "flowkey-infra-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	if err := synthesize(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "synthesis failed:", err)
		return 1
	}
	return m.Run()
}

func synthesize(tmp string) (err error) {
	// With cdk.json's flags an error annotation (a cdk-nag finding) fails
	// synthesis itself; jsii reports that as a panic.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	codeDir := filepath.Join(tmp, "code")
	if err := os.MkdirAll(codeDir, 0o755); err != nil {
		return err
	}
	// A stand-in for the arm64 build; only its presence matters here.
	if err := os.WriteFile(filepath.Join(codeDir, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		return err
	}
	ctx, err := cdkJSONContext()
	if err != nil {
		return err
	}
	app := newTestApp(filepath.Join(tmp, "cdk.out"), ctx)
	props := func(statusSchedule string) *RotationStackProps {
		return &RotationStackProps{
			StackProps:           awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(testAccount), Region: jsii.String(testRegion)}},
			SecretName:           testSecretName,
			PhoneNumberIDs:       testPhoneIDs,
			AccessTokenSecretARN: testTokenARN,
			GraphAPIVersion:      testGraphVerion,
			Schedule:             testSchedule,
			RotationWindow:       testWindow,
			StatusSchedule:       statusSchedule,
			AlertEmail:           testAlertEmail,
			CodePath:             codeDir,
		}
	}
	stack := NewRotationStack(app, testStackName, props(testStatusSchedule))
	offStack := NewRotationStack(app, testOffStackName, props(StatusScheduleOff))
	addNagChecks(app)
	assembly := app.Synth(nil)
	template := func(s awscdk.Stack) (map[string]any, error) {
		b, err := json.Marshal(assembly.GetStackArtifact(s.ArtifactId()).Template())
		if err != nil {
			return nil, err
		}
		var normalized map[string]any
		return normalized, json.Unmarshal(b, &normalized)
	}
	if synthesized.template, err = template(stack); err != nil {
		return err
	}
	if synthesized.offTemplate, err = template(offStack); err != nil {
		return err
	}
	synthesized.stack, synthesized.offStack = stack, offStack
	synthesized.codeDir = codeDir
	return nil
}

// cdkJSONContext is the context of cdk.json, so the tests see the feature
// flags `cdk synth` sees.
func cdkJSONContext() (map[string]any, error) {
	b, err := os.ReadFile("cdk.json")
	if err != nil {
		return nil, err
	}
	var f struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	if f.Context == nil {
		f.Context = map[string]any{}
	}
	return f.Context, nil
}

// newTestApp skips CDK's built-in CloudFormation validation plugin: it
// costs seconds per synthesis and checks the schema, which `make synth`
// (the real CLI) still does.
func newTestApp(outdir string, ctx map[string]any) awscdk.App {
	return awscdk.NewApp(&awscdk.AppProps{
		Outdir:                          jsii.String(outdir),
		Context:                         &ctx,
		BuiltinCloudFormationValidation: jsii.Bool(false),
	})
}
