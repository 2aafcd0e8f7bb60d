package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"
	"github.com/google/uuid"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Key custody in KMS (issue 12): the setting seeds the secret's custody;
// the grants and the rotator's CUSTODY_KEY_* variables follow from who
// could decrypt (the endpoint, the roles of the settings), not from the
// setting, since set-config changes the custody after the first deploy.

// allVariants are every stack of the test app, by name.
func allVariants() map[string]variant {
	return map[string]variant{
		"main": {synthesized.stack, synthesized.template}, "off": {synthesized.offStack, synthesized.offTemplate},
		"platform": synthesized.platform, "adopted": synthesized.adopted, "agnostic": synthesized.agnostic,
		"endpoint": synthesized.endpoint, "kms": synthesized.kms, "kms+endpoint": synthesized.kmsEndpoint,
		"fleet": synthesized.fleet, "fleet-agnostic": synthesized.fleetAgnostic,
	}
}

// custodyVariants are the variants that grant KMS custody: a role could
// decrypt. The others (no endpoint, no roles of the settings) grant none.
var custodyVariants = []string{"platform", "agnostic", "endpoint", "kms", "kms+endpoint", "fleet"}

func rotatorVars(t *testing.T, v variant) map[string]any {
	t.Helper()
	fn := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "Rotator")))
	return fn["Environment"].(map[string]any)["Variables"].(map[string]any)
}

func TestCustodyEnvironment(t *testing.T) {
	v := allVariants()
	rotator := func(name string) any { return getAtt(cfnIDIn(t, v[name].stack, "RotatorRole"), "Arn") }
	endpoint := func(name string) any { return getAtt(cfnIDIn(t, v[name].stack, "EndpointRole"), "Arn") }
	want := map[string][3]any{
		"main": {"", "", "30"}, "off": {"", "", "30"}, "adopted": {"", "", "30"},
		"endpoint": {rotator("endpoint"), endpoint("endpoint"), "30"},
		"platform": {rotator("platform"), endpoint("platform"), "30"},
		"agnostic": {rotator("agnostic"), endpoint("agnostic"), "30"},
		"kms":      {rotator("kms"), testConsumerRoleARN + "," + testConsumerPathRoleARN, "7"},
		// The endpoint's role by its Arn attribute: CloudFormation creates
		// it before the rotator that names it in key policies.
		"kms+endpoint":   {rotator("kms+endpoint"), map[string]any{"Fn::Join": []any{",", []any{endpoint("kms+endpoint"), testConsumerRoleARN}}}, "30"},
		"fleet":          {rotator("fleet"), map[string]any{"Fn::Join": []any{",", []any{endpoint("fleet"), testConsumerRoleARN}}}, "30"},
		"fleet-agnostic": {"", "", "30"},
	}
	assertEqual(t, "variants", slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(v)))
	for name, w := range want {
		vars := rotatorVars(t, v[name])
		assertEqual(t, name+": CUSTODY_KEY_* variables", [3]any{
			vars[config.EnvCustodyKeyRotatorRoleARN], vars[config.EnvCustodyKeyDecryptRoleARNs], vars[config.EnvCustodyKeyDeletionDays],
		}, w)
	}
}

// resolveRoleARNs renders the rotator's environment as it is at deploy
// time: each role's Arn attribute is the ARN of its fixed name.
func resolveRoleARNs(t *testing.T, v variant, value any) string {
	t.Helper()
	switch x := value.(type) {
	case string:
		return x
	case map[string]any:
		if ga, ok := x["Fn::GetAtt"].([]any); ok && ga[1] == "Arn" {
			r := resourceIn(t, v.template, ga[0].(string))
			if r["Type"] != "AWS::IAM::Role" {
				break
			}
			return "arn:aws:iam::" + testAccount + ":role/" + properties(r)["RoleName"].(string)
		}
		if j, ok := x["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, resolveRoleARNs(t, v, p))
			}
			return strings.Join(parts, j[0].(string))
		}
		if _, ok := x["Ref"]; ok {
			return "resolved-at-deploy"
		}
	}
	t.Fatalf("cannot resolve %v", value)
	return ""
}

// The rotator accepts the environment, and names in key policies the
// roles that exist: its own, the endpoint's, the settings'.
func TestCustodyEnvironmentLoads(t *testing.T) {
	for _, name := range []string{"endpoint", "kms", "kms+endpoint"} {
		v := allVariants()[name]
		env := map[string]string{}
		for k, val := range rotatorVars(t, v) {
			if strings.HasPrefix(k, "CUSTODY_KEY_") {
				env[k] = resolveRoleARNs(t, v, val)
			} else if s, ok := val.(string); ok {
				env[k] = s
			} else {
				env[k] = "resolved-at-deploy"
			}
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: config.Load: %v", name, err)
		}
		role := func(id string) string {
			return "arn:aws:iam::" + testAccount + ":role/" + properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, id)))["RoleName"].(string)
		}
		decrypt, days := []string{testConsumerRoleARN, testConsumerPathRoleARN}, testKMSDeletionDays
		switch name {
		case "endpoint":
			decrypt, days = []string{role("EndpointRole")}, DefaultCustodyKeyDeletionDays
		case "kms+endpoint":
			decrypt, days = []string{role("EndpointRole"), testConsumerRoleARN}, DefaultCustodyKeyDeletionDays
		}
		assertEqual(t, name+": custody roles", []any{cfg.CustodyKeyRotatorRoleARN, cfg.CustodyKeyDecryptRoleARNs, cfg.CustodyKeyDeletionDays},
			[]any{role("RotatorRole"), decrypt, days})
	}
}

// wantCustodyPolicy is the rotator's KMS custody policy, whole, for a
// stack of the test account and region whose secret is secret.
func wantCustodyPolicy(secret any) map[string]any {
	keys := partitionARN(":kms:" + testRegion + ":" + testAccount + ":key/*")
	tagged := map[string]any{"aws:ResourceTag/flowkey:secret-arn": secret}
	tagKeys := map[string]any{"aws:TagKeys": []string{"flowkey:secret-arn", "flowkey:rotation-token"}}
	otherKeys := func(sid, key, value string) map[string]any {
		return map[string]any{
			"Sid": sid, "Effect": "Deny", "Resource": keys,
			"Action":    []string{"kms:CreateAlias", "kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:TagResource"},
			"Condition": map[string]any{"StringNotEquals": map[string]any{key: value}, "Null": map[string]any{key: "false"}},
		}
	}
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "CreateCustodyKeysForThisSecret", "Effect": "Allow", "Resource": "*", "Action": "kms:CreateKey",
				"Condition": map[string]any{
					"StringEquals": map[string]any{
						"aws:RequestTag/flowkey:secret-arn": secret, "kms:KeySpec": "RSA_2048", "kms:KeyUsage": "ENCRYPT_DECRYPT",
					},
					"ForAllValues:StringEquals": tagKeys,
				},
			},
			map[string]any{
				"Sid": "TagCustodyKeysAtCreation", "Effect": "Allow", "Resource": keys, "Action": "kms:TagResource",
				"Condition": map[string]any{
					"StringEquals":              map[string]any{"aws:RequestTag/flowkey:secret-arn": secret},
					"ForAllValues:StringEquals": tagKeys,
				},
			},
			map[string]any{
				"Sid": "CreateCustodyKeyAliases", "Effect": "Allow", "Action": "kms:CreateAlias",
				"Resource": partitionARN(":kms:" + testRegion + ":" + testAccount + ":alias/flowkey/????????????????/*"),
			},
			map[string]any{
				"Sid": "AliasOnlyKeysOfThisSecret", "Effect": "Allow", "Resource": keys, "Action": "kms:CreateAlias",
				"Condition": map[string]any{"StringEquals": tagged},
			},
			map[string]any{
				"Sid": "ManageKeysOfThisSecret", "Effect": "Allow", "Resource": keys,
				"Action":    []string{"kms:DescribeKey", "kms:DisableKey", "kms:GetPublicKey", "kms:ListResourceTags", "kms:ScheduleKeyDeletion"},
				"Condition": map[string]any{"StringEquals": tagged},
			},
			map[string]any{
				"Sid": "ProveDecryptionWithKeysOfThisSecret", "Effect": "Allow", "Resource": keys, "Action": "kms:Decrypt",
				"Condition": map[string]any{"StringEquals": map[string]any{
					"aws:ResourceTag/flowkey:secret-arn": secret, "kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
				}},
			},
			map[string]any{
				"Sid": "ListAliasesAndKeys", "Effect": "Allow", "Resource": "*", "Action": []string{"kms:ListAliases", "kms:ListKeys"},
			},
			map[string]any{
				"Sid": "RecordKeyCreationOnTheSecret", "Effect": "Allow", "Resource": secret, "Action": "secretsmanager:TagResource",
				"Condition": map[string]any{
					"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": []string{"flowkey:kms-key-creation"}},
					"Null":                      map[string]any{"aws:TagKeys": "false"},
				},
			},
			otherKeys("NeverTouchKeysOfAnotherSpec", "kms:KeySpec", "RSA_2048"),
			otherKeys("NeverTouchKeysOfAnotherUsage", "kms:KeyUsage", "ENCRYPT_DECRYPT"),
		},
	}
}

// The rotator's KMS custody policy, whole, in every variant with a
// decrypting role, attached to its role alone; the function waits for
// it. The endpoint may decrypt with the secret's custody keys only
// (TestEndpointRole).
func TestRotatorKeyCustodyPolicy(t *testing.T) {
	for _, name := range []string{"endpoint", "kms", "kms+endpoint"} {
		v := allVariants()[name]
		id := cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy")
		p := properties(resourceIn(t, v.template, id))
		secret := ref(cfnIDIn(t, v.stack, "Secret"))
		assertEqual(t, name+": custody policy roles", p["Roles"], []any{ref(cfnIDIn(t, v.stack, "RotatorRole"))})
		assertEqual(t, name+": custody policy", p["PolicyDocument"], wantCustodyPolicy(secret))
		deps, _ := resourceIn(t, v.template, cfnIDIn(t, v.stack, "Rotator"))["DependsOn"].([]any)
		if !slices.Contains(deps, any(id)) {
			t.Errorf("%s: rotator DependsOn = %v, want the custody policy %s", name, deps, id)
		}
	}
	// The endpoint's grant in the KMS custody variant is the endpoint
	// variant's.
	e := endpointIDsOf(t, synthesized.kmsEndpoint)
	stmts := properties(resourceIn(t, synthesized.kmsEndpoint.template, e.policy))["PolicyDocument"].(map[string]any)["Statement"].([]any)
	assertEqual(t, "kms+endpoint: the endpoint's custody grant", stmts[2], custodyDecryptStatement("DecryptWithCustodyKeysOfThisSecret", ref(e.secret)))
}

// Without a decrypting role nothing of KMS custody is granted; in no
// variant does an IAM policy grant kms:* or any KMS wildcard action.
func TestCustodyGrantsOnlyWhereSomeoneDecrypts(t *testing.T) {
	for name, v := range allVariants() {
		granted := v.stack.Node().TryFindChild(jsii.String("RotatorKeyCustodyPolicy")) != nil
		if want := slices.Contains(custodyVariants, name); granted != want {
			t.Errorf("%s: custody policy present = %v, want %v", name, granted, want)
		}
		for id, r := range resourcesIn(v.template, "AWS::IAM::Policy") {
			for _, s := range properties(r)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				for _, a := range actionsOf(s.(map[string]any)) {
					if strings.HasPrefix(a, "kms:") && strings.ContainsAny(a, "*?") {
						t.Errorf("%s: %s grants %s", name, id, a)
					}
					// Enroll's own tags (fleet.go; TestFleetRotatorPolicy) are not custody's.
					enrollTags := a == "secretsmanager:TagResource" && s.(map[string]any)["Sid"] == "CreateAndTagTenantSecretsOfThisFleet"
					if !granted && !enrollTags && slices.Contains([]string{"kms:CreateKey", "kms:ScheduleKeyDeletion", "secretsmanager:TagResource"}, a) {
						t.Errorf("%s: %s grants %s without KMS custody", name, id, a)
					}
				}
			}
		}
	}
}

func actionsOf(s map[string]any) []string {
	switch a := s["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// Every alias internal/custody makes is one the CreateAlias grant covers,
// and the stack key's alias (alias/flowkey/<stack>) is not.
func TestCustodyAliasPatternCoversEveryCustodyAlias(t *testing.T) {
	p := properties(resourceIn(t, synthesized.kms.template, cfnIDIn(t, synthesized.kms.stack, "RotatorKeyCustodyPolicy")))
	resource := p["PolicyDocument"].(map[string]any)["Statement"].([]any)[2].(map[string]any)["Resource"].(string)
	_, pattern, _ := strings.Cut(resource, ":alias/")
	for _, secret := range []string{testExistingSecretARN, "arn:aws:secretsmanager:eu-west-1:999988887777:secret:x-AbCdEf"} {
		alias := strings.TrimPrefix(custody.AliasName(secret, uuid.NewString()), "alias/")
		if ok, err := path.Match(pattern, alias); !ok || err != nil {
			t.Errorf("alias %s does not match the grant's %s (%v)", alias, pattern, err)
		}
	}
	if ok, _ := path.Match(pattern, "flowkey/"+testKMSStackName); ok {
		t.Errorf("the grant's %s matches the stack key's alias", pattern)
	}
	if !regexp.MustCompile(strings.Trim(strings.TrimSuffix(custodyAliasesRegex, "g"), "/")).MatchString("Resource::" + resource) {
		t.Errorf("the cdk-nag suppression's regex does not match %s", resource)
	}
}

// Both roles a custody key's policy names exist before the first CreateKey:
// the rotator's environment refers to the endpoint's role, so CloudFormation
// creates the role first, and no template has a dependency cycle.
func TestCustodyRolesExistBeforeTheRotatorNamesThem(t *testing.T) {
	// The detector finds a cycle that exists.
	if c := findCycle(map[string]map[string]bool{"A": {"B": true}, "B": {"C": true}, "C": {"A": true}}); len(c) != 4 {
		t.Fatalf("findCycle on A->B->C->A = %v", c)
	}
	for name, v := range allVariants() {
		graph := dependencies(v.template)
		if cycle := findCycle(graph); cycle != nil {
			t.Errorf("%s: dependency cycle %v", name, cycle)
		}
		if v.stack.Node().TryFindChild(jsii.String("EndpointRole")) == nil {
			continue
		}
		rotator, role := cfnIDIn(t, v.stack, "Rotator"), cfnIDIn(t, v.stack, "EndpointRole")
		if !graph[rotator][role] {
			t.Errorf("%s: the rotator does not depend on the endpoint's role: %v", name, slices.Sorted(maps.Keys(graph[rotator])))
		}
	}
}

// dependencies maps each resource to those it refers to (Ref, Fn::GetAtt,
// Fn::Sub) or DependsOn.
func dependencies(template map[string]any) map[string]map[string]bool {
	res := template["Resources"].(map[string]any)
	sub := regexp.MustCompile(`\$\{([A-Za-z0-9]+)[.}]`)
	out := map[string]map[string]bool{}
	for id, r := range res {
		deps := map[string]bool{}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, c := range x {
					switch k {
					case "Ref":
						if s, ok := c.(string); ok && res[s] != nil {
							deps[s] = true
						}
					case "Fn::GetAtt":
						if a, ok := c.([]any); ok && res[a[0].(string)] != nil {
							deps[a[0].(string)] = true
						}
					case "Fn::Sub":
						s, _ := c.(string)
						if a, ok := c.([]any); ok {
							s, _ = a[0].(string)
						}
						for _, m := range sub.FindAllStringSubmatch(s, -1) {
							if res[m[1]] != nil {
								deps[m[1]] = true
							}
						}
					}
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		walk(r.(map[string]any)["Properties"])
		switch d := r.(map[string]any)["DependsOn"].(type) {
		case string:
			deps[d] = true
		case []any:
			for _, x := range d {
				deps[x.(string)] = true
			}
		}
		out[id] = deps
	}
	return out
}

// findCycle returns a dependency cycle, or nil.
func findCycle(graph map[string]map[string]bool) []string {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var stack []string
	var visit func(id string) []string
	visit = func(id string) []string {
		switch state[id] {
		case visiting:
			return append(slices.Clone(stack), id)
		case done:
			return nil
		}
		state[id] = visiting
		stack = append(stack, id)
		for _, d := range slices.Sorted(maps.Keys(graph[id])) {
			if c := visit(d); c != nil {
				return c
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(graph)) {
		if c := visit(id); c != nil {
			return c
		}
	}
	return nil
}

// The setting seeds config.key_custody "kms" in the first version (and
// the SecretConfiguration output, which set-config applies); the default
// seed is unchanged, with no key_custody at all.
func TestSeedCarriesTheKeyCustody(t *testing.T) {
	for name, want := range map[string]string{"main": "", "endpoint": "", "kms": "kms", "kms+endpoint": "kms"} {
		v := allVariants()[name]
		secret := cfnIDIn(t, v.stack, "Secret")
		seed, _ := onlyIn(t, v.template, "Custom::AWS")
		call := sdkCall(t, properties(resourceIn(t, v.template, seed))["Create"], map[string]string{secret: "REF"})
		text := call["parameters"].(map[string]any)["SecretString"].(string)
		doc, err := secretdoc.Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s: the seed is not a valid secret document: %v", name, err)
		}
		if doc.Config.KeyCustody != want || strings.Contains(text, "key_custody") != (want != "") {
			t.Errorf("%s: seed %s, want key_custody %q", name, text, want)
		}
		if want == "" {
			want = secretdoc.CustodySecretsManager
		}
		if doc.Config.Custody() != want {
			t.Errorf("%s: the seed's custody is %s, want %s", name, doc.Config.Custody(), want)
		}
		out := v.template["Outputs"].(map[string]any)["SecretConfiguration"].(map[string]any)["Value"].(string)
		var cfg secretdoc.Config
		if err := json.Unmarshal([]byte(out), &cfg); err != nil || cfg.KeyCustody != doc.Config.KeyCustody {
			t.Errorf("%s: SecretConfiguration %s (%v), want the seed's key_custody %q", name, out, err, doc.Config.KeyCustody)
		}
	}
}

// The KMS custody variants: nothing beyond their PEM twins' resources but
// the custody policy (the endpoint variant already has it), and cdk-nag
// finds nothing, with the custody policy's reviewed suppression.
func TestCustodyVariantsInventoryAndNag(t *testing.T) {
	want := typeCounts(synthesized.template)
	want["AWS::IAM::Policy"]++
	assertEqual(t, "kms resource types", typeCounts(synthesized.kms.template), want)
	assertEqual(t, "kms+endpoint resource types", typeCounts(synthesized.kmsEndpoint.template), typeCounts(synthesized.endpoint.template))
	for name, v := range map[string]variant{"kms": synthesized.kms, "kms+endpoint": synthesized.kmsEndpoint} {
		assertNagClean(t, name, v)
	}
	r := cfnIDIn(t, synthesized.kms.stack, "RotatorRole")
	assertEqual(t, "kms: cdk-nag suppressions", nagSuppressions(t, synthesized.kms.template), sorted([]string{
		r + " AwsSolutions-IAM5 Resource::*", cfnIDIn(t, synthesized.kms.stack, "RotatorRole", "DefaultPolicy") + " AwsSolutions-IAM5 Resource::*",
		cfnIDIn(t, synthesized.kms.stack, "RotatorKeyCustodyPolicy") + custodyPolicySuppression,
	}))
	assertEqual(t, "kms+endpoint: cdk-nag suppressions", nagSuppressions(t, synthesized.kmsEndpoint.template), roleSuppressions(t, synthesized.kmsEndpoint))
}

// The custody settings, read and checked like every other.
func TestCustodySettings(t *testing.T) {
	code := synthesized.codeDir
	base := map[string]string{settingPhoneNumberIDs.Env: "106540352242922", settingTokenSecretARN.Env: testTokenARN, settingCodePath.Env: code}
	endpoint := map[string]string{settingEndpointBackendURL.Env: testBackendURL, settingAppSecretARN.Env: testAppSecretARN, settingEndpointCodePath.Env: synthesized.endpointCodeDir}
	with := func(sets ...map[string]string) map[string]string {
		out := maps.Clone(base)
		for _, s := range sets {
			maps.Copy(out, s)
		}
		return out
	}
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("arn:aws:iam::111122223333:role/r%d", i)
	}
	for _, tc := range []struct {
		name    string
		ctx     map[string]any
		env     map[string]string
		want    KeyCustody
		wantErr []string
	}{
		{name: "defaults", env: with(), want: KeyCustody{Mode: "secrets_manager", DeletionDays: 30}},
		{name: "kms with the endpoint", env: with(endpoint, map[string]string{settingKeyCustody.Env: "kms"}), want: KeyCustody{Mode: "kms", DeletionDays: 30}},
		{name: "kms with roles of the settings, as context", ctx: map[string]any{
			settingKeyCustody.Context: "kms", settingCustodyDecryptRoles.Context: []any{testConsumerRoleARN, testConsumerPathRoleARN}, settingCustodyDeletionDays.Context: 7.0,
		}, env: with(), want: KeyCustody{Mode: "kms", DecryptRoleARNs: []string{testConsumerRoleARN, testConsumerPathRoleARN}, DeletionDays: 7}},
		{name: "roles without kms: ready for a set-config", env: with(map[string]string{settingCustodyDecryptRoles.Env: testConsumerRoleARN + ", " + testConsumerPathRoleARN}),
			want: KeyCustody{Mode: "secrets_manager", DecryptRoleARNs: []string{testConsumerRoleARN, testConsumerPathRoleARN}, DeletionDays: 30}},
		{name: "kms with nobody to decrypt", env: with(map[string]string{settingKeyCustody.Env: "kms"}),
			wantErr: []string{settingKeyCustody.Env, "nothing could decrypt", settingCustodyDecryptRoles.Context, settingEndpointBackendFunctionARN.Context, "secrets_manager"}},
		{name: "custody in capitals", env: with(endpoint, map[string]string{settingKeyCustody.Env: "KMS"}), wantErr: []string{settingKeyCustody.Env, `"KMS" is not a key custody`, `"kms"`}},
		{name: "deletion too soon", env: with(map[string]string{settingCustodyDeletionDays.Env: "6"}), wantErr: []string{settingCustodyDeletionDays.Env, "6 is outside 7-30"}},
		{name: "deletion too late", env: with(map[string]string{settingCustodyDeletionDays.Env: "31"}), wantErr: []string{settingCustodyDeletionDays.Env, "31 is outside 7-30"}},
		{name: "deletion in words", env: with(map[string]string{settingCustodyDeletionDays.Env: "a month"}), wantErr: []string{settingCustodyDeletionDays.Env, "whole number"}},
		{name: "a user instead of a role", env: with(map[string]string{settingCustodyDecryptRoles.Env: testConsumerRoleARN + ",arn:aws:iam::111122223333:user/alice"}),
			wantErr: []string{settingCustodyDecryptRoles.Env, `[1] "arn:aws:iam::111122223333:user/alice" is not an IAM role ARN`, "get-role"}},
		{name: "an assumed-role session", env: with(map[string]string{settingCustodyDecryptRoles.Env: "arn:aws:sts::111122223333:assumed-role/flows/i-0abc"}),
			wantErr: []string{settingCustodyDecryptRoles.Env, "[0]", "not an IAM role ARN"}},
		{name: "a role twice", env: with(map[string]string{settingCustodyDecryptRoles.Env: testConsumerRoleARN + "," + testConsumerRoleARN}),
			wantErr: []string{settingCustodyDecryptRoles.Env, "[1]", "listed twice"}},
		{name: "too many roles", env: with(map[string]string{settingCustodyDecryptRoles.Env: strings.Join(eleven, ",")}),
			wantErr: []string{settingCustodyDecryptRoles.Env, "lists 11 roles", "at most 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := propsFromSettings(fakeSettings(tc.ctx, tc.env))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				assertEqual(t, "custody", p.Custody, tc.want)
				return
			}
			if err == nil {
				t.Fatalf("no error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A decrypting role of another account fails synthesis: the secret that
// names the keys is readable only in the stack's account.
func TestCustodyRolesOfAnotherAccount(t *testing.T) {
	other := strings.Replace(testConsumerRoleARN, testAccount, "999988887777", 1)
	for _, tc := range []struct {
		name    string
		account string
		roles   []string
		wantErr bool
	}{
		{"the stack's account", testAccount, []string{testConsumerRoleARN, testConsumerPathRoleARN}, false},
		{"another account", testAccount, []string{testConsumerRoleARN, other}, true},
		{"environment-agnostic: the token's account", "", []string{testConsumerRoleARN}, false},
		{"environment-agnostic: another account than the token's", "", []string{other}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &RotationStackProps{AccessTokenSecretARN: testTokenARN, Custody: KeyCustody{DecryptRoleARNs: tc.roles}}
			err := p.checkEnvironment(DefaultStackName, "", tc.account)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), settingCustodyDecryptRoles.Env) || !strings.Contains(err.Error(), "account 999988887777, not the stack's account 111122223333") {
				t.Errorf("error %v, want one naming the setting and both accounts", err)
			}
		})
	}
}
