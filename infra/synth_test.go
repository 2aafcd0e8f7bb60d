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
	// The third uses every platform setting: a VPC with endpoints, tags, a
	// permissions boundary, role and log settings, a token secret under
	// its own key, termination protection, a renamed secret.
	testPlatformStackName = "FlowkeyTestPlatform"
	// The fourth adopts a retained secret and key and alerts to an
	// existing topic, with the default schedules.
	testAdoptedStackName = "FlowkeyTestAdopted"
	// The fifth is the platform variant without account and region, as
	// `make synth-vpc` synthesizes it without credentials, and with the
	// endpoint's backend a function instead of a URL.
	testAgnosticStackName = "FlowkeyTestAgnostic"
	// The sixth is the main stack with the Flows endpoint (a backend
	// function) alerting to an existing topic. The platform variant has the
	// endpoint too, with a backend URL and an app secret under its own key.
	testEndpointStackName = "FlowkeyTestEndpoint"
	// The seventh and eighth seed KMS custody (issue 12): without the
	// endpoint, two roles of the settings decrypt and retired keys wait 7
	// days; with the endpoint (the endpoint variant's settings), its role
	// and one of the settings.
	testKMSStackName         = "FlowkeyTestKms"
	testKMSEndpointStackName = "FlowkeyTestKmsEndpoint"
	// The ninth and tenth are fleet mode (issue 13): the KMS custody
	// variant with the endpoint and every fleet setting; and, without
	// account and region, the main stack's settings with the fleet's
	// defaults (no endpoint, so no custody).
	testFleetStackName         = "FlowkeyTestFleet"
	testFleetAgnosticStackName = "FlowkeyTestFleetAgnostic"
)

// The fleet variant's settings.
const (
	testFleetSecretPrefix = "partner/tenants/"
	testFleetTokenPrefix  = "partner/tokens/"
	testFleetAppPrefix    = "partner/app-secrets/"
	testFleetWindow       = "4h"
)

// The KMS custody variants' settings: roles of the test account, one with
// a path.
const (
	testConsumerRoleARN     = "arn:aws:iam::111122223333:role/flows-consumer"
	testConsumerPathRoleARN = "arn:aws:iam::111122223333:role/platform/flows-consumer-2"
	testKMSDeletionDays     = 7
)

// The endpoint's settings.
const (
	testBackendFunctionARN = "arn:aws:lambda:us-east-1:111122223333:function:flows-backend:live"
	testBackendURL         = "https://flows.example.com/endpoint"
	testAppSecretARN       = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/meta-app-secret-GhIjKl"
	testAppSecretKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
)

// The platform variant's settings.
const (
	testTokenKeyARN      = "arn:aws:kms:us-east-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
	testBoundaryARN      = "arn:aws:iam::111122223333:policy/platform/flowkey-boundary"
	testRolePrefix       = "app-"
	testLogKeyARN        = "arn:aws:kms:us-east-1:111122223333:key/1a2b3c4d-5e6f-4a0b-9c8d-7e6f5a4b3c2d"
	testLogRetentionDays = 731
	testVPCID            = "vpc-0a1b2c3d4e5f60718"
	testRetainedName     = "flowkey/old-name"
)

var (
	testSubnetIDs = []string{"subnet-0a1b2c3d4e5f60718", "subnet-08f7e6d5c4b3a2910"}
	testSGIDs     = []string{"sg-0123456789abcdef0"}
	testTags      = map[string]string{"team": "payments", "cost-center": "1234"}
)

// The adopted variant's settings: what `cdk destroy` of a stack named
// FlowkeyRotation left behind, and a central topic.
const (
	testExistingSecretARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/whatsapp-flows-key-Zy9Xw8"
	testExistingKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	testAlertTopicARN     = "arn:aws:sns:us-east-1:444455556666:central-alerts"
)

var testPhoneIDs = []string{"106540352242922", "106540352242923"}

// synthesized is the one synthesis of the package, shared by every test:
// each synthesis starts a Node.js process and costs seconds.
var synthesized struct {
	stack                    awscdk.Stack
	template                 map[string]any // CloudFormation template, normalized through JSON
	codeDir, endpointCodeDir string
	// The same settings with StatusSchedule "off", synthesized in the
	// same app (one synthesis for all).
	offStack    awscdk.Stack
	offTemplate map[string]any
	// The platform, adopted, agnostic and endpoint variants (see the stack
	// names).
	platform, adopted, agnostic, endpoint variant
	// The KMS custody variants.
	kms, kmsEndpoint variant
	// The fleet variants.
	fleet, fleetAgnostic variant
	// terminationProtection and the tags of each stack's artifact, by
	// stack name: they are properties of the deployment, not of the
	// template.
	terminationProtection map[string]bool
	stackTags             map[string]map[string]string
}

// variant is one stack of the test app and its template.
type variant struct {
	stack    awscdk.Stack
	template map[string]any
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
	// Stand-ins for the arm64 builds; only their presence matters here.
	endpointCodeDir := filepath.Join(tmp, "endpoint-code")
	for _, dir := range []string{codeDir, endpointCodeDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/sh\n# "+filepath.Base(dir)+"\n"), 0o755); err != nil {
			return err
		}
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
			LogRetentionDays:     DefaultLogRetentionDays,
			// Off: a code path alone asks for no endpoint.
			Endpoint: FlowsEndpoint{CodePath: endpointCodeDir},
		}
	}
	stack := NewRotationStack(app, testStackName, props(testStatusSchedule))
	offStack := NewRotationStack(app, testOffStackName, props(StatusScheduleOff))
	platformStack := NewRotationStack(app, testPlatformStackName, platformProps(props(testStatusSchedule)))
	adoptedStack := NewRotationStack(app, testAdoptedStackName, adoptedProps(props(DefaultStatusSchedule)))
	agnostic := platformProps(props(testStatusSchedule))
	agnostic.StackProps = awscdk.StackProps{}
	agnostic.Endpoint.BackendURL, agnostic.Endpoint.BackendFunctionARN = "", testBackendFunctionARN
	agnosticStack := NewRotationStack(app, testAgnosticStackName, agnostic)
	endpointStack := NewRotationStack(app, testEndpointStackName, endpointProps(props(testStatusSchedule)))
	kms := props(testStatusSchedule)
	kms.Custody = KeyCustody{Mode: "kms", DecryptRoleARNs: []string{testConsumerRoleARN, testConsumerPathRoleARN}, DeletionDays: testKMSDeletionDays}
	kmsStack := NewRotationStack(app, testKMSStackName, kms)
	kmsEndpoint := endpointProps(props(testStatusSchedule))
	kmsEndpoint.Custody = KeyCustody{Mode: "kms", DecryptRoleARNs: []string{testConsumerRoleARN}}
	kmsEndpointStack := NewRotationStack(app, testKMSEndpointStackName, kmsEndpoint)
	fleetProps := endpointProps(props(testStatusSchedule))
	fleetProps.Custody = KeyCustody{Mode: "kms", DecryptRoleARNs: []string{testConsumerRoleARN}}
	fleetProps.Fleet = Fleet{Enabled: true, SecretPrefix: testFleetSecretPrefix, TokenPrefix: testFleetTokenPrefix, AppSecretPrefix: testFleetAppPrefix, RotationWindow: testFleetWindow}
	fleetStack := NewRotationStack(app, testFleetStackName, fleetProps)
	fleetAgnostic := props(testStatusSchedule)
	fleetAgnostic.StackProps = awscdk.StackProps{}
	fleetAgnostic.Fleet = Fleet{Enabled: true}
	fleetAgnosticStack := NewRotationStack(app, testFleetAgnosticStackName, fleetAgnostic)
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
	synthesized.platform.stack, synthesized.adopted.stack = platformStack, adoptedStack
	if synthesized.platform.template, err = template(platformStack); err != nil {
		return err
	}
	if synthesized.adopted.template, err = template(adoptedStack); err != nil {
		return err
	}
	synthesized.agnostic.stack = agnosticStack
	if synthesized.agnostic.template, err = template(agnosticStack); err != nil {
		return err
	}
	synthesized.endpoint.stack = endpointStack
	if synthesized.endpoint.template, err = template(endpointStack); err != nil {
		return err
	}
	synthesized.kms.stack, synthesized.kmsEndpoint.stack = kmsStack, kmsEndpointStack
	if synthesized.kms.template, err = template(kmsStack); err != nil {
		return err
	}
	if synthesized.kmsEndpoint.template, err = template(kmsEndpointStack); err != nil {
		return err
	}
	synthesized.fleet.stack, synthesized.fleetAgnostic.stack = fleetStack, fleetAgnosticStack
	if synthesized.fleet.template, err = template(fleetStack); err != nil {
		return err
	}
	if synthesized.fleetAgnostic.template, err = template(fleetAgnosticStack); err != nil {
		return err
	}
	synthesized.terminationProtection = map[string]bool{}
	synthesized.stackTags = map[string]map[string]string{}
	for _, s := range []awscdk.Stack{stack, offStack, platformStack, adoptedStack, agnosticStack, endpointStack, kmsStack, kmsEndpointStack, fleetStack, fleetAgnosticStack} {
		artifact := assembly.GetStackArtifact(s.ArtifactId())
		tp := artifact.TerminationProtection()
		synthesized.terminationProtection[*s.StackName()] = tp != nil && *tp
		tags := map[string]string{}
		if t := artifact.Tags(); t != nil {
			for k, v := range *t {
				tags[k] = *v
			}
		}
		synthesized.stackTags[*s.StackName()] = tags
	}
	synthesized.stack, synthesized.offStack = stack, offStack
	synthesized.codeDir, synthesized.endpointCodeDir = codeDir, endpointCodeDir
	return nil
}

// platformProps turns the test settings into the platform variant's.
func platformProps(p *RotationStackProps) *RotationStackProps {
	p.AccessTokenSecretKeyARN = testTokenKeyARN
	p.TerminationProtection = true
	p.Tags = testTags
	p.PermissionsBoundaryARN = testBoundaryARN
	p.RoleNamePrefix = testRolePrefix
	p.LogRetentionDays = testLogRetentionDays
	p.LogKeyARN = testLogKeyARN
	p.RetainedSecretNames = []string{testRetainedName}
	p.Network = Network{SubnetIDs: testSubnetIDs, SecurityGroupIDs: testSGIDs, CreateEndpoints: true, VPCID: testVPCID}
	p.Endpoint = FlowsEndpoint{BackendURL: testBackendURL, AppSecretARN: testAppSecretARN, AppSecretKeyARN: testAppSecretKeyARN, CodePath: p.Endpoint.CodePath}
	return p
}

// endpointProps turns the test settings into the endpoint variant's.
func endpointProps(p *RotationStackProps) *RotationStackProps {
	p.Endpoint = FlowsEndpoint{BackendFunctionARN: testBackendFunctionARN, AppSecretARN: testAppSecretARN, CodePath: p.Endpoint.CodePath}
	p.AlertTopicARN, p.AlertEmail = testAlertTopicARN, ""
	return p
}

// adoptedProps turns the test settings into the adopted variant's.
func adoptedProps(p *RotationStackProps) *RotationStackProps {
	p.ExistingSecretARN = testExistingSecretARN
	p.ExistingKeyARN = testExistingKeyARN
	p.AlertTopicARN = testAlertTopicARN
	p.AlertEmail = ""
	p.Schedule, p.RotationWindow = DefaultSchedule, DefaultRotationWindow
	return p
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
