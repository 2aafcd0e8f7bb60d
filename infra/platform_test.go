package main

import (
	"slices"
	"testing"

	"github.com/flowkey/flowkey/internal/keypair"
)

// untaggable are the resource types CloudFormation cannot tag.
var untaggable = []string{
	"AWS::IAM::Policy", "AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig", "AWS::KMS::Alias",
	"AWS::SNS::TopicPolicy", "AWS::SNS::Subscription", "AWS::SecretsManager::RotationSchedule", "Custom::AWS",
	"AWS::Lambda::Url",
}

// The tags are on every resource that takes tags, and on the stack.
func TestTagsOnEveryResource(t *testing.T) {
	v := synthesized.platform
	want := []any{map[string]any{"Key": "cost-center", "Value": "1234"}, map[string]any{"Key": "team", "Value": "payments"}}
	for id, r := range v.template["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if slices.Contains(untaggable, res["Type"].(string)) {
			continue
		}
		assertEqual(t, id+" ("+res["Type"].(string)+") Tags", properties(res)["Tags"], want)
	}
	assertEqual(t, "stack tags", synthesized.stackTags[testPlatformStackName], testTags)
	// Without the setting, no tags anywhere.
	for id, r := range synthesized.template["Resources"].(map[string]any) {
		if tags, ok := properties(r.(map[string]any))["Tags"]; ok {
			t.Errorf("main: %s has Tags %v", id, tags)
		}
	}
	assertEqual(t, "main stack tags", synthesized.stackTags[testStackName], map[string]string{})
}

// Every role gets the permissions boundary and the name prefix; the
// rotator's name is the one the token key's policy names before the
// first deploy.
func TestRolesForPlatformTeams(t *testing.T) {
	v := synthesized.platform
	roles := resourcesIn(v.template, "AWS::IAM::Role")
	names := map[string]any{}
	for id, r := range roles {
		p := properties(r)
		assertEqual(t, id+" PermissionsBoundary", p["PermissionsBoundary"], testBoundaryARN)
		names[id] = p["RoleName"]
	}
	assertEqual(t, "role names", names, map[string]any{
		cfnIDIn(t, v.stack, "RotatorRole"):    testRolePrefix + testPlatformStackName + "-rotator-" + testRegion,
		cfnIDIn(t, v.stack, "SecretSeedRole"): testRolePrefix + testPlatformStackName + "-seed-" + testRegion,
		cfnIDIn(t, v.stack, "EndpointRole"):   testRolePrefix + testPlatformStackName + "-endpoint-" + testRegion,
	})
	// The key policy names the prefixed role.
	_, key := onlyIn(t, v.template, "AWS::KMS::Key")
	for _, s := range properties(key)["KeyPolicy"].(map[string]any)["Statement"].([]any) {
		if st := s.(map[string]any); st["Sid"] == "RotatorGeneratesKeyPairsForThisSecretOnly" {
			assertEqual(t, "key policy's rotator", st["Condition"].(map[string]any)["ArnEquals"], map[string]any{
				"aws:PrincipalArn": partitionARN(":iam::" + testAccount + ":role/" + testRolePrefix + testPlatformStackName + "-rotator-" + testRegion),
			})
		}
	}
}

// Log retention and the logs' KMS key, on every log group.
func TestLogSettings(t *testing.T) {
	for name, v := range map[string]variant{"main": {synthesized.stack, synthesized.template}, "platform": synthesized.platform} {
		want := map[string]any{"RetentionInDays": DefaultLogRetentionDays}
		if name == "platform" {
			want = map[string]any{"RetentionInDays": testLogRetentionDays, "KmsKeyId": testLogKeyARN, "Tags": properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorLogs")))["Tags"]}
		}
		paths := []string{"RotatorLogs", "SecretSeedLogs"}
		if name == "platform" {
			paths = append(paths, "EndpointLogs")
		}
		for _, path := range paths {
			assertEqual(t, name+" "+path, properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, path))), want)
		}
	}
}

func TestTerminationProtection(t *testing.T) {
	assertEqual(t, "termination protection by stack", synthesized.terminationProtection, map[string]bool{
		testStackName: false, testOffStackName: false, testPlatformStackName: true, testAdoptedStackName: false, testAgnosticStackName: true,
		testEndpointStackName: false, testKMSStackName: false, testKMSEndpointStackName: false,
		testFleetStackName: false, testFleetAgnosticStackName: false,
	})
}

// Item 3: a token secret under its own KMS key. The rotator may decrypt
// it through Secrets Manager, for that secret only; without the setting
// there is no such grant.
func TestTokenSecretKeyGrant(t *testing.T) {
	v := synthesized.platform
	doc := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorRole", "DefaultPolicy")))["PolicyDocument"].(map[string]any)
	stmts := doc["Statement"].([]any)
	var sids []any
	for _, s := range stmts {
		sids = append(sids, s.(map[string]any)["Sid"])
	}
	assertEqual(t, "platform: rotator statements", sids, []any{
		"RotateThisSecret", "ReadGraphAccessToken", "DecryptGraphAccessToken", "GenerateKeyPairsForThisSecret",
		"UseKeyThroughSecretsManagerForThisSecret", "WriteOwnLogs", nil,
	})
	assertEqual(t, "token key grant", stmts[2], map[string]any{
		"Sid": "DecryptGraphAccessToken", "Effect": "Allow", "Resource": testTokenKeyARN, "Action": "kms:Decrypt",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"kms:ViaService":                  "secretsmanager." + testRegion + ".amazonaws.com",
			"kms:EncryptionContext:SecretARN": testTokenARN,
		}},
	})
	// The key pair grant is unchanged by the other settings.
	assertEqual(t, "key pair grant", stmts[3].(map[string]any)["Condition"], map[string]any{"StringEquals": map[string]any{
		"kms:EncryptionContext:" + keypair.EncryptionContextKey: ref(cfnIDIn(t, v.stack, "Secret")),
		"kms:DataKeyPairSpec": "RSA_2048",
	}})
}

// The VPC variant: both functions in the subnets and security groups, a
// network policy of their own that they wait for, the interface endpoints
// reachable from the functions only, and everything that calls AWS at
// deploy time waiting for the endpoints. cdk-nag finds nothing, with one
// reviewed suppression per network policy.
func TestVPCPlacement(t *testing.T) {
	v := synthesized.platform
	seedFn := cfnIDIn(t, v.stack, "AWS"+providerUUID())
	network := map[string]string{
		cfnIDIn(t, v.stack, "Rotator"):  cfnIDIn(t, v.stack, "RotatorNetworkPolicy"),
		seedFn:                          cfnIDIn(t, v.stack, "SecretSeedNetworkPolicy"),
		cfnIDIn(t, v.stack, "Endpoint"): cfnIDIn(t, v.stack, "EndpointNetworkPolicy"),
	}
	roles := map[string]string{
		cfnIDIn(t, v.stack, "Rotator"):  cfnIDIn(t, v.stack, "RotatorRole"),
		seedFn:                          cfnIDIn(t, v.stack, "SecretSeedRole"),
		cfnIDIn(t, v.stack, "Endpoint"): cfnIDIn(t, v.stack, "EndpointRole"),
	}
	ec2 := func(rest string) any { return partitionARN(":ec2:" + testRegion + ":" + testAccount + ":" + rest) }
	for fnID, policyID := range network {
		fn := resourceIn(t, v.template, fnID)
		assertEqual(t, fnID+" VpcConfig", properties(fn)["VpcConfig"], map[string]any{"SubnetIds": testSubnetIDs, "SecurityGroupIds": testSGIDs})
		if deps, _ := fn["DependsOn"].([]any); !slices.Contains(deps, any(policyID)) {
			t.Errorf("%s DependsOn = %v, want its network policy %s (Lambda checks it at creation)", fnID, deps, policyID)
		}
		p := properties(resourceIn(t, v.template, policyID))
		assertEqual(t, policyID+" roles", p["Roles"], []any{ref(roles[fnID])})
		assertEqual(t, policyID+" document", p["PolicyDocument"], map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{
				map[string]any{
					"Sid": "CreateNetworkInterfacesInTheseSubnets", "Effect": "Allow", "Action": "ec2:CreateNetworkInterface",
					"Resource": []any{ec2("network-interface/*"), ec2("security-group/" + testSGIDs[0]), ec2("subnet/" + testSubnetIDs[1]), ec2("subnet/" + testSubnetIDs[0])},
				},
				map[string]any{
					"Sid": "ManageNetworkInterfaces", "Effect": "Allow", "Resource": ec2("network-interface/*"),
					"Action": []any{"ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"},
				},
				map[string]any{
					"Sid": "DescribeNetwork", "Effect": "Allow", "Resource": "*",
					"Action": []any{"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"},
				},
			},
		})
	}
	// No VPC anywhere else.
	if _, ok := properties(resource(t, ids(t).fn))["VpcConfig"]; ok {
		t.Error("main: the rotator has a VpcConfig")
	}

	sgID, sg := onlyIn(t, v.template, "AWS::EC2::SecurityGroup")
	p := properties(sg)
	delete(p, "Tags")
	assertEqual(t, "endpoint security group", p, map[string]any{
		"GroupDescription": "flowkey: the interface endpoints of " + testPlatformStackName + ", reachable from its functions only",
		"VpcId":            testVPCID,
		"SecurityGroupIngress": []any{map[string]any{
			"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": testSGIDs[0], "Description": "HTTPS from the flowkey functions",
		}},
		"SecurityGroupEgress": []any{map[string]any{
			"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic",
		}},
	})
	endpoints := map[string]any{}
	for id, e := range resourcesIn(v.template, "AWS::EC2::VPCEndpoint") {
		p := properties(e)
		delete(p, "Tags")
		endpoints[id] = p
	}
	want := map[string]any{}
	// The endpoint's backend is a URL here: no Lambda endpoint.
	for _, e := range []struct{ id, service string }{{"SecretsManagerEndpoint", "secretsmanager"}, {"KmsEndpoint", "kms"}, {"XRayEndpoint", "xray"}} {
		want[cfnIDIn(t, v.stack, e.id)] = map[string]any{
			"VpcId": testVPCID, "ServiceName": "com.amazonaws." + testRegion + "." + e.service, "VpcEndpointType": "Interface",
			"SubnetIds": testSubnetIDs, "SecurityGroupIds": []any{getAtt(sgID, "GroupId")}, "PrivateDnsEnabled": true,
		}
	}
	assertEqual(t, "endpoints", endpoints, want)
	// The seed calls Secrets Manager at deploy time too.
	deps, _ := resourceIn(t, v.template, cfnIDIn(t, v.stack, "SecretSeed", "Resource", "Default"))["DependsOn"].([]any)
	for id := range want {
		if !slices.Contains(deps, any(id)) {
			t.Errorf("seed DependsOn = %v, want the endpoint %s", deps, id)
		}
	}

	assertNagClean(t, "platform", v)
	assertEqual(t, "platform: cdk-nag suppressions", nagSuppressions(t, v.template), platformSuppressions(t, v))
	assertEqual(t, "platform resource types", typeCounts(v.template), map[string]int{
		"AWS::KMS::Key": 1, "AWS::KMS::Alias": 1, "AWS::SecretsManager::Secret": 1, "AWS::SecretsManager::RotationSchedule": 1,
		"Custom::AWS": 1, "AWS::IAM::Role": 3, "AWS::IAM::Policy": 8, "AWS::Logs::LogGroup": 3, "AWS::Lambda::Function": 3,
		"AWS::Lambda::Permission": 4, "AWS::Lambda::EventInvokeConfig": 1, "AWS::Lambda::Url": 1, "AWS::SNS::Topic": 1, "AWS::SNS::TopicPolicy": 1,
		"AWS::SNS::Subscription": 1, "AWS::Events::Rule": 2, "AWS::CloudWatch::Alarm": 13,
		"AWS::EC2::SecurityGroup": 1, "AWS::EC2::VPCEndpoint": 3,
	})
}

// platformSuppressions are the reviewed cdk-nag suppressions of a VPC
// variant with the endpoint: the roles' (roleSuppressions), and each
// network policy.
func platformSuppressions(t *testing.T, v variant) []string {
	t.Helper()
	want := roleSuppressions(t, v)
	for _, policy := range []string{"RotatorNetworkPolicy", "SecretSeedNetworkPolicy", "EndpointNetworkPolicy"} {
		want = append(want, cfnIDIn(t, v.stack, policy)+" AwsSolutions-IAM5 Resource::*,regex:"+networkInterfacesRegex)
	}
	return sorted(want)
}

// `make synth-vpc` without credentials: the same stack with the account
// and region left to the deploy, clean under cdk-nag too, and the role
// names the key policies rely on carry the deploy's region.
func TestAgnosticVPCVariant(t *testing.T) {
	v := synthesized.agnostic
	assertNagClean(t, "agnostic", v)
	assertEqual(t, "agnostic: cdk-nag suppressions", nagSuppressions(t, v.template), platformSuppressions(t, v))
	// Its endpoint's backend is a function: one interface endpoint more,
	// for the Lambda API.
	want := typeCounts(synthesized.platform.template)
	want["AWS::EC2::VPCEndpoint"]++
	assertEqual(t, "agnostic resource types", typeCounts(v.template), want)
	assertEqual(t, "agnostic Lambda endpoint", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "LambdaEndpoint")))["ServiceName"],
		join("com.amazonaws.", ref("AWS::Region"), ".lambda"))
	assertEqual(t, "agnostic endpoint role name", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "EndpointRole")))["RoleName"],
		join(testRolePrefix+testAgnosticStackName+"-endpoint-", ref("AWS::Region")))
	assertEqual(t, "agnostic rotator role name", properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "RotatorRole")))["RoleName"],
		join(testRolePrefix+testAgnosticStackName+"-rotator-", ref("AWS::Region")))
}

func typeCounts(template map[string]any) map[string]int {
	got := map[string]int{}
	for _, r := range template["Resources"].(map[string]any) {
		got[r.(map[string]any)["Type"].(string)]++
	}
	return got
}
