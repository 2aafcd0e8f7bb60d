package main

import (
	"encoding/json"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fleet"
)

// Fleet mode (issue 13): the fleet variant (every fleet setting, the
// endpoint, KMS custody) and the environment-agnostic one (the defaults).

// tenantsARN and the other patterns of the fleet variant.
var (
	tenantsARN    = partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testFleetSecretPrefix + "*")
	tokensARN     = partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testFleetTokenPrefix + "*")
	appSecretsARN = partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testFleetAppPrefix + "*")
	fleetTagged   = map[string]any{"secretsmanager:ResourceTag/" + fleet.TagFleet: testFleetStackName}
	viaSM         = "secretsmanager." + testRegion + ".amazonaws.com"
)

// With the fleet off nothing of it is in any template: the stacks of
// before fleet mode are unchanged (every other test compares their
// policies, environments and alarms whole).
func TestFleetOffAddsNothing(t *testing.T) {
	for name, v := range allVariants() {
		if strings.HasPrefix(name, "fleet") {
			continue
		}
		b, err := json.Marshal(v.template)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(config.FleetNames(), config.EnvEndpointRingCache, fleet.TagFleet, fleet.DefaultSecretPrefix, fleet.DefaultTokenPrefix,
			"RotatorFleetPolicy", "ForTenants", "Tenant", tenantsUnhealthyMetric) {
			if strings.Contains(string(b), s) {
				t.Errorf("%s: the template contains %q with the fleet off", name, s)
			}
		}
	}
}

// The rotator's fleet policy, statement by statement (fleet.go says why
// each one is as it is).
func TestFleetRotatorPolicy(t *testing.T) {
	v := synthesized.fleet
	key := getAtt(cfnIDIn(t, v.stack, "Key"), "Arn")
	id := cfnIDIn(t, v.stack, "RotatorFleetPolicy")
	p := properties(resourceIn(t, v.template, id))
	assertEqual(t, "fleet policy roles", p["Roles"], []any{ref(cfnIDIn(t, v.stack, "RotatorRole"))})
	assertEqual(t, "fleet: rotator role description", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorRole")))["Description"],
		"flowkey rotator: rotates one secret and the tenants of its fleet, nothing else")
	assertEqual(t, "fleet policy", p["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "CreateAndTagTenantSecretsOfThisFleet", "Effect": "Allow", "Resource": tenantsARN,
				"Action": []string{"secretsmanager:CreateSecret", "secretsmanager:TagResource"},
				"Condition": map[string]any{
					"StringEquals":              map[string]any{"aws:RequestTag/flowkey:fleet": testFleetStackName},
					"StringEqualsIfExists":      fleetTagged,
					"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": []string{fleet.TagFleet, fleet.TagTenant, fleet.TagEnrolled}},
				},
			},
			map[string]any{
				"Sid": "RotateTenantSecretsOfThisFleet", "Effect": "Allow", "Resource": tenantsARN,
				"Action": []string{"secretsmanager:CancelRotateSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
					"secretsmanager:RotateSecret", "secretsmanager:UpdateSecretVersionStage"},
				"Condition": map[string]any{"StringEquals": fleetTagged},
			},
			map[string]any{
				"Sid": "DescribeTenantSecrets", "Effect": "Allow", "Resource": tenantsARN, "Action": "secretsmanager:DescribeSecret",
				"Condition": map[string]any{"StringEqualsIfExists": fleetTagged},
			},
			map[string]any{"Sid": "ListTheFleet", "Effect": "Allow", "Resource": "*", "Action": "secretsmanager:ListSecrets"},
			map[string]any{"Sid": "ReadTenantGraphTokens", "Effect": "Allow", "Resource": tokensARN, "Action": "secretsmanager:GetSecretValue"},
			map[string]any{
				"Sid": "UseKeyThroughSecretsManagerForTenants", "Effect": "Allow", "Resource": key, "Action": []string{"kms:Decrypt", "kms:GenerateDataKey"},
				"Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaSM}, "StringLike": map[string]any{"kms:EncryptionContext:SecretARN": tenantsARN}},
			},
			map[string]any{
				"Sid": "DecryptTenantGraphTokensThroughSecretsManager", "Effect": "Allow", "Resource": key, "Action": "kms:Decrypt",
				"Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaSM}, "StringLike": map[string]any{"kms:EncryptionContext:SecretARN": tokensARN}},
			},
			map[string]any{
				"Sid": "GenerateKeyPairsForTenants", "Effect": "Allow", "Resource": key, "Action": "kms:GenerateDataKeyPair",
				"Condition": map[string]any{"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"}, "StringLike": map[string]any{"kms:EncryptionContext:flowkey-secret-arn": tenantsARN}},
			},
		},
	})
	// No "*" on a secret action but ListSecrets, in any fleet policy.
	for name, v := range map[string]variant{"fleet": synthesized.fleet, "fleet-agnostic": synthesized.fleetAgnostic} {
		for pid, r := range resourcesIn(v.template, "AWS::IAM::Policy") {
			for _, s := range properties(r)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := s.(map[string]any)
				for _, a := range actionsOf(st) {
					if strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:ListSecrets" && st["Resource"] == "*" {
						t.Errorf("%s: %s grants %s on *", name, pid, a)
					}
				}
			}
		}
	}
	// The function waits for neither the fleet policy nor the operator
	// policy, whose InvokeFunction on the function's own unqualified ARN is
	// what the fleet status's continuation calls.
	fn := cfnIDIn(t, v.stack, "Rotator")
	if deps, _ := resourceIn(t, v.template, fn)["DependsOn"].([]any); slices.Contains(deps, any(id)) {
		t.Errorf("the rotator depends on the fleet policy: %v", deps)
	}
	op := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorOperatorPolicy")))["PolicyDocument"].(map[string]any)["Statement"].([]any)
	assertEqual(t, "fleet: the rotator may invoke itself", op[1], map[string]any{
		"Sid": "InvokeThisFunctionForRotateSecret", "Effect": "Allow", "Resource": getAtt(fn, "Arn"), "Action": "lambda:InvokeFunction",
	})
}

// Secrets Manager may invoke the rotator for the tenants' secrets of this
// account, besides the stack's own.
func TestFleetInvokePermission(t *testing.T) {
	v := synthesized.fleet
	fn := cfnIDIn(t, v.stack, "Rotator")
	assertEqual(t, "tenants' invoke permission", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "SecretsManagerInvokesRotatorForTenants"))), map[string]any{
		"Action": "lambda:InvokeFunction", "FunctionName": getAtt(fn, "Arn"), "Principal": "secretsmanager.amazonaws.com",
		"SourceAccount": testAccount, "SourceArn": tenantsARN,
	})
	assertEqual(t, "the stack's own invoke permission", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "SecretsManagerInvokesRotator")))["SourceArn"],
		ref(cfnIDIn(t, v.stack, "Secret")))
}

// The key policy admits the tenants' (and their token secrets') ARNs for
// use through Secrets Manager, and the tenants' for the rotator's key pairs.
func TestFleetKeyPolicy(t *testing.T) {
	v := synthesized.fleet
	own := partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + testSecretName + "-??????")
	stmts := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "Key")))["KeyPolicy"].(map[string]any)["Statement"].([]any)
	bySid := map[string]map[string]any{}
	for _, s := range stmts {
		bySid[s.(map[string]any)["Sid"].(string)] = s.(map[string]any)
	}
	assertEqual(t, "through Secrets Manager", bySid["UseThroughSecretsManagerForThisSecretOnly"]["Condition"].(map[string]any)["StringLike"],
		map[string]any{"kms:EncryptionContext:SecretARN": []any{own, tenantsARN, tokensARN}})
	assertEqual(t, "key pairs", bySid["RotatorGeneratesKeyPairsForThisSecretOnly"]["Condition"].(map[string]any)["StringLike"],
		map[string]any{"kms:EncryptionContext:flowkey-secret-arn": []any{own, tenantsARN}})
}

// KMS custody reaches the keys of the stack's secret and of the tenants'
// (StringLike on both), and writes its record on tenant secrets of this
// fleet only.
func TestFleetCustodyPolicy(t *testing.T) {
	v := synthesized.fleet
	secret := ref(cfnIDIn(t, v.stack, "Secret"))
	stmts := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy")))["PolicyDocument"].(map[string]any)["Statement"].([]any)
	scoped := 0
	for _, s := range stmts {
		st := s.(map[string]any)
		c, _ := st["Condition"].(map[string]any)
		for op, keys := range c {
			for k, val := range keys.(map[string]any) {
				if !strings.HasSuffix(k, "/flowkey:secret-arn") {
					continue
				}
				scoped++
				if op != "StringLike" {
					t.Errorf("%v: %s on %s, want StringLike", st["Sid"], op, k)
				}
				assertEqual(t, st["Sid"].(string)+" "+k, val, []any{secret, tenantsARN})
			}
		}
	}
	if scoped != 5 {
		t.Errorf("%d statements name the secret by tag, want 5 (create, tag, alias, manage, decrypt)", scoped)
	}
	var record map[string]any
	for _, s := range stmts {
		if s.(map[string]any)["Sid"] == "RecordKeyCreationOnTenantSecrets" {
			record = s.(map[string]any)
		}
	}
	assertEqual(t, "record on tenant secrets", record, map[string]any{
		"Sid": "RecordKeyCreationOnTenantSecrets", "Effect": "Allow", "Resource": tenantsARN, "Action": "secretsmanager:TagResource",
		"Condition": map[string]any{
			"StringEquals":              fleetTagged,
			"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": []string{"flowkey:kms-key-creation"}},
			"Null":                      map[string]any{"aws:TagKeys": "false"},
		},
	})
}

// The endpoint reads the tenants' key secrets (described even before they
// exist, read only when tagged for the fleet), their app secrets under the
// app prefix, and decrypts them through Secrets Manager.
func TestFleetEndpointPolicy(t *testing.T) {
	v := synthesized.fleet
	key := getAtt(cfnIDIn(t, v.stack, "Key"), "Arn")
	stmts := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy")))["PolicyDocument"].(map[string]any)["Statement"].([]any)
	assertEqual(t, "custody statement", stmts[2].(map[string]any)["Condition"], map[string]any{
		"StringEquals": map[string]any{"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
		"StringLike":   map[string]any{"aws:ResourceTag/flowkey:secret-arn": []any{ref(cfnIDIn(t, v.stack, "Secret")), tenantsARN}},
	})
	assertEqual(t, "fleet statements", stmts[5:9], []any{
		map[string]any{"Sid": "DescribeTenantKeySecrets", "Effect": "Allow", "Resource": tenantsARN, "Action": "secretsmanager:DescribeSecret",
			"Condition": map[string]any{"StringEqualsIfExists": fleetTagged}},
		map[string]any{"Sid": "ReadTenantKeySecrets", "Effect": "Allow", "Resource": tenantsARN, "Action": "secretsmanager:GetSecretValue",
			"Condition": map[string]any{"StringEquals": fleetTagged}},
		map[string]any{"Sid": "DecryptTenantKeySecretsThroughSecretsManager", "Effect": "Allow", "Resource": key, "Action": "kms:Decrypt",
			"Condition": map[string]any{"StringEquals": map[string]any{"kms:ViaService": viaSM}, "StringLike": map[string]any{"kms:EncryptionContext:SecretARN": tenantsARN}}},
		map[string]any{"Sid": "ReadTenantAppSecrets", "Effect": "Allow", "Resource": appSecretsARN, "Action": "secretsmanager:GetSecretValue"},
	})
}

// IAM limits a role's inline policies to 10,240 characters together
// (without whitespace). Each Ref or GetAtt is counted as a 120-character
// ARN, longer than any it resolves to here.
func TestFleetRolePoliciesFitIAMsLimit(t *testing.T) {
	token := regexp.MustCompile(`\{"(Ref|Fn::GetAtt)":[^{}]*\}`)
	for name, v := range map[string]variant{"fleet": synthesized.fleet, "fleet-agnostic": synthesized.fleetAgnostic} {
		size := map[string]int{}
		for _, r := range resourcesIn(v.template, "AWS::IAM::Policy") {
			b, err := json.Marshal(properties(r)["PolicyDocument"])
			if err != nil {
				t.Fatal(err)
			}
			n := len(token.ReplaceAll(b, []byte(`"`+strings.Repeat("x", 118)+`"`)))
			for _, role := range properties(r)["Roles"].([]any) {
				b, _ := json.Marshal(role)
				size[string(b)] += n
			}
		}
		for role, n := range size {
			if n > 10240 {
				t.Errorf("%s: the inline policies of %s take about %d characters, IAM allows 10,240", name, role, n)
			}
		}
	}
}

// The overdue alarm waits for a tenant's longest gap (fleet.OverdueAfter),
// or the secret's own if longer; drift and heartbeat are the stack's; a
// tenant unhealthy for three hourly statuses alarms.
func TestFleetAlarms(t *testing.T) {
	days := func(w time.Duration) float64 { return math.Ceil(fleet.OverdueAfter(w).Hours()/24*1000) / 1000 }
	if got := days(2 * time.Hour); got != 31.125 {
		t.Fatalf("OverdueAfter(2h) = %v days, want 31.125", got)
	}
	main := synthesized.template
	for name, tc := range map[string]struct {
		v    variant
		days float64
	}{"fleet": {synthesized.fleet, days(4 * time.Hour)}, "fleet-agnostic": {synthesized.fleetAgnostic, 31.125}} {
		v := tc.v
		overdue := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotationOverdueAlarm")))
		assertEqual(t, name+": overdue threshold", overdue["Threshold"], tc.days)
		if !strings.Contains(overdue["AlarmDescription"].(string), "tenant") {
			t.Errorf("%s: overdue description %q does not mention the tenants", name, overdue["AlarmDescription"])
		}
		for _, id := range []string{"DriftAlarm", "StatusHeartbeatAlarm"} {
			got, want := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, id))), properties(resourceIn(t, main, cfnID(t, id)))
			for _, k := range []string{"MetricName", "Namespace", "Statistic", "Period", "Threshold", "EvaluationPeriods", "ComparisonOperator", "TreatMissingData"} {
				assertEqual(t, name+": "+id+" "+k, got[k], want[k])
			}
		}
		alarm := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "TenantsUnhealthyAlarm")))
		fn := cfnIDIn(t, v.stack, "Rotator")
		for k, w := range map[string]any{
			"AlarmName": *v.stack.StackName() + "-tenants-unhealthy", "MetricName": tenantsUnhealthyMetric, "Namespace": "flowkey",
			"Dimensions": []any{map[string]any{"Name": "Function", "Value": ref(fn)}}, "Statistic": "Sum", "Period": 3600,
			"Threshold": 0, "EvaluationPeriods": 3, "DatapointsToAlarm": 3, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "ignore",
		} {
			assertEqual(t, name+": tenants alarm "+k, alarm[k], w)
		}
		if n, want := len(resourcesIn(v.template, "AWS::CloudWatch::Alarm")), len(resourcesIn(main, "AWS::CloudWatch::Alarm"))+1; name == "fleet-agnostic" && n != want {
			t.Errorf("%s: %d alarms, want the main stack's and one", name, n)
		}
	}
}

// Both fleet variants pass cdk-nag, with suppressions that name the
// fleet's prefixes and nothing broader.
func TestFleetNag(t *testing.T) {
	for name, v := range map[string]variant{"fleet": synthesized.fleet, "fleet-agnostic": synthesized.fleetAgnostic} {
		assertNagClean(t, name, v)
	}
	v := synthesized.fleet
	re := func(prefix string) string {
		return "regex:" + `/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):secretsmanager:([a-z0-9-]+|<AWS::Region>):([0-9]{12}|<AWS::AccountId>):secret:` +
			strings.ReplaceAll(regexp.QuoteMeta(prefix), "/", `\/`) + `\*$/g`
	}
	endpoint := " AwsSolutions-IAM5 Resource::*,regex:" + custodyKeysRegex + "," + re(testFleetSecretPrefix) + "," + re(testFleetTokenPrefix) + "," + re(testFleetAppPrefix)
	rotator := " AwsSolutions-IAM5 Resource::*"
	assertEqual(t, "fleet: cdk-nag suppressions", nagSuppressions(t, v.template), sorted([]string{
		cfnIDIn(t, v.stack, "RotatorRole") + rotator, cfnIDIn(t, v.stack, "RotatorRole", "DefaultPolicy") + rotator,
		cfnIDIn(t, v.stack, "EndpointRole") + endpoint, cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy") + endpoint,
		cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy") + custodyPolicySuppression + "," + re(testFleetSecretPrefix),
		cfnIDIn(t, v.stack, "RotatorFleetPolicy") + " AwsSolutions-IAM5 Resource::*," + re(testFleetSecretPrefix) + "," + re(testFleetTokenPrefix) + "," + re(testFleetAppPrefix),
	}))
	// The regexes match the patterns as cdk-nag renders them, concrete and
	// environment-agnostic, and not a broader one.
	jsRegex := func(s string) *regexp.Regexp {
		return regexp.MustCompile(strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(s, "regex:"), "/"), "/g"), `\/`, "/"))
	}
	for s, want := range map[string]bool{
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:partner/tenants/*":                           true,
		"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:partner/tenants/*":      true,
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:*":                                           false,
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:partner/*":                                   false,
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:partner/tenants/acme/*":                      false,
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:partnerXtenants/*":                           false,
		"Resource::arn:aws:secretsmanager:us-east-1:111122223333:secret:partner/tenants/*,arn:aws:kms:us-east-1:1:*": false,
	} {
		if got := jsRegex(re(testFleetSecretPrefix)).MatchString(s); got != want {
			t.Errorf("tenants regex on %q = %v, want %v", s, got, want)
		}
	}
}

// The fleet settings, read and checked like every other.
func TestFleetSettings(t *testing.T) {
	base := map[string]string{settingPhoneNumberIDs.Env: "106540352242922", settingTokenSecretARN.Env: testTokenARN, settingCodePath.Env: synthesized.codeDir}
	with := func(m map[string]string) map[string]string { out := maps.Clone(base); maps.Copy(out, m); return out }
	for _, tc := range []struct {
		name    string
		ctx     map[string]any
		env     map[string]string
		want    Fleet
		wantErr []string
	}{
		{name: "off by default", env: base},
		{name: "on, defaults", env: with(map[string]string{settingFleet.Env: "true"}), want: Fleet{Enabled: true}},
		{name: "on, every setting as context", ctx: map[string]any{settingFleet.Context: true, settingFleetSecretPrefix.Context: testFleetSecretPrefix,
			settingFleetTokenPrefix.Context: testFleetTokenPrefix, settingFleetAppSecretPrefix.Context: testFleetAppPrefix, settingFleetWindow.Context: "12h"}, env: base,
			want: Fleet{Enabled: true, SecretPrefix: testFleetSecretPrefix, TokenPrefix: testFleetTokenPrefix, AppSecretPrefix: testFleetAppPrefix, RotationWindow: "12h"}},
		{name: "not a boolean", env: with(map[string]string{settingFleet.Env: "yes"}), wantErr: []string{settingFleet.Env, "not true or false"}},
		{name: "a prefix without the fleet", env: with(map[string]string{settingFleetSecretPrefix.Env: "a/"}), wantErr: []string{settingFleetSecretPrefix.Env, "is set, but flowkey:fleet is not true"}},
		{name: "a window without the fleet", env: with(map[string]string{settingFleetWindow.Env: "2h"}), wantErr: []string{settingFleetWindow.Env, "flowkey:fleet"}},
		{name: "no trailing slash", env: with(map[string]string{settingFleet.Env: "true", settingFleetSecretPrefix.Env: "flowkey/tenants"}),
			wantErr: []string{settingFleetSecretPrefix.Env, "ending with \"/\""}},
		{name: "a wildcard", env: with(map[string]string{settingFleet.Env: "true", settingFleetTokenPrefix.Env: "tokens*/"}), wantErr: []string{settingFleetTokenPrefix.Env, "not a prefix"}},
		{name: "token prefix inside the tenants'", env: with(map[string]string{settingFleet.Env: "true", settingFleetTokenPrefix.Env: "flowkey/tenants/tokens/"}),
			wantErr: []string{settingFleetTokenPrefix.Env, "overlaps"}},
		{name: "tenants' prefix inside the app prefix", env: with(map[string]string{settingFleet.Env: "true", settingFleetAppSecretPrefix.Env: "flowkey/"}),
			wantErr: []string{settingFleetAppSecretPrefix.Env, "overlaps"}},
		{name: "app prefix is the token prefix", env: with(map[string]string{settingFleet.Env: "true", settingFleetAppSecretPrefix.Env: "flowkey/tokens/"}),
			wantErr: []string{settingFleetAppSecretPrefix.Env, "overlaps the token prefix"}},
		{name: "the stack's secret under the tenants' prefix", env: with(map[string]string{settingFleet.Env: "true", settingSecretName.Env: "flowkey/tenants/main"}),
			wantErr: []string{settingSecretName.Env, "under the tenants' prefix"}},
		{name: "window too long", env: with(map[string]string{settingFleet.Env: "true", settingFleetWindow.Env: "13h"}), wantErr: []string{settingFleetWindow.Env, "1h to 12h"}},
		{name: "window zero", env: with(map[string]string{settingFleet.Env: "true", settingFleetWindow.Env: "0h"}), wantErr: []string{settingFleetWindow.Env, "whole number of hours"}},
		{name: "window in minutes", env: with(map[string]string{settingFleet.Env: "true", settingFleetWindow.Env: "90m"}), wantErr: []string{settingFleetWindow.Env, "\"2h\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := propsFromSettings(fakeSettings(tc.ctx, tc.env))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				assertEqual(t, "fleet", p.Fleet, tc.want)
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range append(tc.wantErr, "fix:") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
