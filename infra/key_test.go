package main

import (
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/keypair"
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
