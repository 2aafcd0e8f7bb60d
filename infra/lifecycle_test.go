package main

import (
	"slices"
	"testing"

	"github.com/aws/jsii-runtime-go"
)

// Item 1 of issue 10: what the stack keeps is kept on update and delete
// but removed when the creation that made it rolls back, so that a failed
// first deploy can be retried and leaves no key ($1 a month) behind. No
// resource of any variant is plain Retain (the custom resource says
// Delete, which CloudFormation's default is anyway).
func TestNothingSurvivesAFailedCreation(t *testing.T) {
	for name, v := range allVariants() {
		kept := map[string]bool{}
		for id, r := range v.template["Resources"].(map[string]any) {
			res := r.(map[string]any)
			policy, replace := res["DeletionPolicy"], res["UpdateReplacePolicy"]
			switch {
			case policy == nil && replace == nil, policy == "Delete" && replace == "Delete":
			case policy == "RetainExceptOnCreate" && replace == "Retain":
				kept[res["Type"].(string)+" "+id] = true
			default:
				t.Errorf("%s: %s has DeletionPolicy/UpdateReplacePolicy %v/%v, want none or RetainExceptOnCreate/Retain", name, id, policy, replace)
			}
		}
		want := map[string]bool{}
		for _, path := range [][]string{{"Key"}, {"Secret"}, {"RotatorLogs"}, {"SecretSeedLogs"}, {"EndpointLogs"}} {
			if name == "adopted" && (path[0] != "RotatorLogs") {
				continue // adopted: no key, no secret, no seed
			}
			if path[0] == "EndpointLogs" && v.stack.Node().TryFindChild(jsii.String("Endpoint")) == nil {
				continue // no endpoint
			}
			id := cfnIDIn(t, v.stack, path...)
			want[resourceIn(t, v.template, id)["Type"].(string)+" "+id] = true
		}
		assertEqual(t, name+": resources kept on update and delete", kept, want)
	}
}

// Item 5: a renamed secret is a new, empty secret; the seed's update call
// fills it (TestSecretSeed, TestNoDeployAfterTheFirstWritesTheSecret), and
// the key policy keeps the secrets of earlier names decryptable for their
// consumers while they move to the new one.
func TestRetainedSecretNamesStayDecryptable(t *testing.T) {
	v := synthesized.platform
	_, key := onlyIn(t, v.template, "AWS::KMS::Key")
	stmts := properties(key)["KeyPolicy"].(map[string]any)["Statement"].([]any)
	pattern := func(name string) any {
		return partitionARN(":secretsmanager:" + testRegion + ":" + testAccount + ":secret:" + name + "-??????")
	}
	for _, s := range stmts {
		st := s.(map[string]any)
		cond, _ := st["Condition"].(map[string]any)
		like, _ := cond["StringLike"].(map[string]any)
		switch st["Sid"] {
		case "UseThroughSecretsManagerForThisSecretOnly":
			assertEqual(t, "secrets consumers may decrypt", like["kms:EncryptionContext:SecretARN"], []any{pattern(testSecretName), pattern(testRetainedName)})
		case "RotatorGeneratesKeyPairsForThisSecretOnly":
			// Key pairs only for the secret the stack rotates.
			assertEqual(t, "secret the rotator generates key pairs for", like["kms:EncryptionContext:flowkey-secret-arn"], pattern(testSecretName))
		}
	}
	_, secret := onlyIn(t, v.template, "AWS::SecretsManager::Secret")
	if got := properties(secret)["Name"]; got != testSecretName {
		t.Errorf("secret Name = %v, want %s", got, testSecretName)
	}
}

// Item 6: creating the schedule runs testSecret, which reads the token,
// the secret and every number. Everything it needs exists first: the
// invoke permission, the seed, the function with its role's policies, and
// the VPC endpoints. Then a failure is the check's (its message names
// cause and fix), never an ordering accident.
func TestDeployCheckWaitsForWhatTestSecretNeeds(t *testing.T) {
	for name, v := range map[string]variant{"main": {synthesized.stack, synthesized.template}, "platform": synthesized.platform, "adopted": synthesized.adopted} {
		id, schedule := onlyIn(t, v.template, "AWS::SecretsManager::RotationSchedule")
		deps, _ := schedule["DependsOn"].([]any)
		want := []string{cfnIDIn(t, v.stack, "SecretsManagerInvokesRotator")}
		if name != "adopted" {
			want = append(want, cfnIDIn(t, v.stack, "SecretSeed", "Resource", "Default"))
		}
		if name == "platform" {
			for _, e := range endpointServices(false) {
				want = append(want, cfnIDIn(t, v.stack, e.id))
			}
		}
		for _, w := range want {
			if !slices.Contains(deps, any(w)) {
				t.Errorf("%s: %s DependsOn = %v, want it to include %s", name, id, deps, w)
			}
		}
		fn := resourceIn(t, v.template, cfnIDIn(t, v.stack, "Rotator"))
		fnDeps, _ := fn["DependsOn"].([]any)
		for _, w := range []string{cfnIDIn(t, v.stack, "RotatorRole"), cfnIDIn(t, v.stack, "RotatorRole", "DefaultPolicy")} {
			if !slices.Contains(fnDeps, any(w)) {
				t.Errorf("%s: function DependsOn = %v, want %s (testSecret reads the token with it)", name, fnDeps, w)
			}
		}
	}
}
