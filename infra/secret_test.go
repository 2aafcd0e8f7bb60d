package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

func TestSecret(t *testing.T) {
	l := ids(t)
	_, secret := only(t, "AWS::SecretsManager::Secret")
	// Kept on delete and replacement (a rename); removed when the
	// operation that created it rolls back, so that the retry can take
	// the name again.
	if secret["DeletionPolicy"] != "RetainExceptOnCreate" || secret["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("secret DeletionPolicy/UpdateReplacePolicy = %v/%v, want RetainExceptOnCreate/Retain", secret["DeletionPolicy"], secret["UpdateReplacePolicy"])
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
	assertEqual(t, "seed property names", slices.Sorted(maps.Keys(p)), []string{"Create", "InstallLatestAwsSdk", "ServiceTimeout", "ServiceToken", "Update"})
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
	// The same call on update, for the secret a rename replaced; on a
	// secret that has its seed it writes nothing (see
	// TestNoDeployAfterTheFirstWritesTheSecret).
	assertEqual(t, "seed Update call", sdkCall(t, p["Update"], map[string]string{l.secret: "REF:" + l.secret}), map[string]any{
		"service": "SecretsManager",
		"action":  "PutSecretValue",
		"parameters": map[string]any{
			"SecretId":           "REF:" + l.secret,
			"ClientRequestToken": wantSeedVersionID,
			"SecretString":       wantDocument,
			"VersionStages":      []string{"flowkey-seed"},
		},
		"physicalResourceId":       map[string]any{"id": wantSeedVersionID},
		"ignoreErrorCodesMatching": "^ResourceExistsException$",
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

// No deploy may ever write a version over the key secret's versions: a
// version written over the live one would take the private key that Meta
// holds out of AWSCURRENT. A deploy writes only into a secret that has no
// version (a new one, or the new secret of a rename), and only the seed.
func TestNoDeployAfterTheFirstWritesTheSecret(t *testing.T) {
	l := ids(t)
	// CloudFormation writes a version on update only from these properties.
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		for _, path := range findKeys(r.(map[string]any)["Properties"], "", "SecretString", "GenerateSecretString", "SecretBinary") {
			t.Errorf("%s has %s: CloudFormation would write a secret version when it changes", id, path)
		}
	}
	// The seed is the only custom resource. It has no Delete call, and
	// its Update call is its Create call under the fixed version ID, which
	// ignores exactly the error of a secret that already holds that ID
	// with other data: on a seeded secret it writes nothing.
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		typ := r.(map[string]any)["Type"].(string)
		if !strings.HasPrefix(typ, "Custom::") && typ != "AWS::CloudFormation::CustomResource" {
			continue
		}
		if id != l.seed {
			t.Errorf("custom resource %s (%s): only the seed may be one", id, typ)
		}
		if v, ok := properties(r.(map[string]any))["Delete"]; ok {
			t.Errorf("custom resource %s has a Delete call %v", id, v)
		}
	}
	refs := map[string]string{l.secret: "REF"}
	create := sdkCall(t, properties(resource(t, l.seed))["Create"], refs)
	update := sdkCall(t, properties(resource(t, l.seed))["Update"], refs)
	if got := update["ignoreErrorCodesMatching"]; got != "^ResourceExistsException$" {
		t.Errorf("seed Update ignores %v, want exactly ^ResourceExistsException$ (any other error must fail the deploy)", got)
	}
	delete(update, "ignoreErrorCodesMatching")
	assertEqual(t, "seed Update call without its ignored error", update, create)
	if id := create["parameters"].(map[string]any)["ClientRequestToken"]; id != wantSeedVersionID {
		t.Errorf("seed ClientRequestToken = %v, want the fixed %s", id, wantSeedVersionID)
	}
	// Whenever it runs, it must not take AWSCURRENT.
	stages, _ := create["parameters"].(map[string]any)["VersionStages"].([]any)
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
		"RoleName":    testStackName + "-seed-" + testRegion,
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
			// To compare with the version the seed ID holds; no
			// GetSecretValue, so the role can never read the secret.
			map[string]any{
				"Sid": "CompareSeedThroughSecretsManager", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": "kms:Decrypt",
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
	assertEqual(t, "seed function property names", slices.Sorted(maps.Keys(fn)), []string{"Code", "Handler", "LoggingConfig", "Role", "Runtime", "Timeout"})
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
