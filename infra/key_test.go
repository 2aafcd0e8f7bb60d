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
	// Kept on update and delete, where it protects the live private key;
	// removed when the creation that made it rolls back (it encrypts
	// nothing yet, and a retained key costs $1 a month per failed try).
	if key["DeletionPolicy"] != "RetainExceptOnCreate" || key["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("key DeletionPolicy/UpdateReplacePolicy = %v/%v, want RetainExceptOnCreate/Retain", key["DeletionPolicy"], key["UpdateReplacePolicy"])
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
			// The role by name: a key retained by cdk destroy still
			// admits the role a new stack of the same name creates.
			map[string]any{
				"Sid": "RotatorGeneratesKeyPairsForThisSecretOnly", "Effect": "Allow", "Resource": "*",
				"Principal": accountRoot,
				"Action":    "kms:GenerateDataKeyPair",
				"Condition": map[string]any{
					"ArnEquals":    map[string]any{"aws:PrincipalArn": rotatorRoleARN},
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
					"ArnEquals":    map[string]any{"aws:SourceArn": errorsAlarmARN},
				},
			},
			alarmKeyStatement("RotatorThrottlesAlarmPublishesToAlertTopic", "rotator-throttles"),
			alarmKeyStatement("RotatorDurationAlarmPublishesToAlertTopic", "rotator-duration"),
			alarmKeyStatement("RotationEventsDeliveryAlarmPublishesToAlertTopic", "rotation-events-undelivered"),
			map[string]any{
				"Sid": "DriftAlarmPublishesToAlertTopic", "Effect": "Allow", "Resource": "*",
				"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
				"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey*"},
				"Condition": map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": testAccount},
					"ArnEquals":    map[string]any{"aws:SourceArn": driftAlarmARN},
				},
			},
			alarmKeyStatement("StatusHeartbeatAlarmPublishesToAlertTopic", "status-heartbeat"),
			alarmKeyStatement("RotationOverdueAlarmPublishesToAlertTopic", "rotation-overdue"),
			alarmKeyStatement("StatusScheduleDeliveryAlarmPublishesToAlertTopic", "status-schedule-undelivered"),
		},
	})
}

// alarmKeyStatement lets one alarm of the main test stack use the key for
// the alert topic.
func alarmKeyStatement(sid, alarmSuffix string) any {
	return map[string]any{
		"Sid": sid, "Effect": "Allow", "Resource": "*",
		"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
		"Action":    []string{"kms:Decrypt", "kms:GenerateDataKey*"},
		"Condition": map[string]any{
			"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": testAccount},
			"ArnEquals":    map[string]any{"aws:SourceArn": alarmARNOf(alarmSuffix)},
		},
	}
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
	for id, suffix := range map[string]string{
		l.throttlesAlarm: "rotator-throttles", l.durationAlarm: "rotator-duration", l.rotationEventsAlarm: "rotation-events-undelivered",
		l.heartbeatAlarm: "status-heartbeat", l.overdueAlarm: "rotation-overdue", l.statusEventsAlarm: "status-schedule-undelivered",
	} {
		if got := properties(resource(t, id))["AlarmName"]; got != testStackName+"-"+suffix {
			t.Errorf("%s AlarmName = %v, want %s-%s (the key policy's aws:SourceArn)", id, got, testStackName, suffix)
		}
	}
	// The key policy names the rotator's role by this ARN.
	if got := properties(resource(t, l.role))["RoleName"]; got != testStackName+"-rotator-"+testRegion {
		t.Errorf("rotator RoleName = %v, want %s-rotator-%s (the key policy's aws:PrincipalArn)", got, testStackName, testRegion)
	}
	if !strings.HasPrefix(testSecretName, "flowkey/") {
		t.Fatal("fixture changed")
	}
	_, secret := only(t, "AWS::SecretsManager::Secret")
	if got := properties(secret)["Name"]; got != testSecretName {
		t.Errorf("secret Name = %v, want %s (the key policy's SecretARN pattern)", got, testSecretName)
	}
}
