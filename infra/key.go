package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/keypair"
)

// newKey is the KMS key that encrypts the secret and the alert topic and
// generates the rotator's RSA-2048 key pairs. Its policy names role, the
// secret by n.secretARNPattern and the alert topic and errors alarm by
// their constructed ARNs; the drift alarm's statement is added with the
// alarm (addStatusSchedule).
func newKey(stack awscdk.Stack, secretName string, n stackNames, role awsiam.IRole) awskms.Key {
	account := stack.Account()
	return awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("flowkey: encrypts " + secretName + " and generates its RSA-2048 key pairs"),
		Alias:             jsii.String("alias/flowkey/" + *stack.StackName()),
		EnableKeyRotation: jsii.Bool(true),
		// Retained: consumers must still decrypt old versions after a stack
		// is deleted by mistake. Deleting the key is a deliberate manual step.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		Policy: awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
			// Administration only: unlike CDK's default (kms:* for the
			// account), no principal gets cryptographic use of the key from
			// IAM alone. The account keeps managing it, so it cannot be
			// locked out.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("KeyAdministration"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
				Actions: jsii.Strings(
					"kms:CancelKeyDeletion", "kms:CreateAlias", "kms:Delete*", "kms:Describe*",
					"kms:Disable*", "kms:Enable*", "kms:Get*", "kms:List*", "kms:Put*",
					"kms:Revoke*", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion",
					"kms:TagResource", "kms:UntagResource", "kms:Update*",
				),
				Resources: jsii.Strings("*"),
			}),
			// Reading and writing this secret: the seed custom resource
			// writing its first version, the rotator, and the consumers of
			// the key. Each still needs secretsmanager and kms permissions
			// in its own IAM policy.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("UseThroughSecretsManagerForThisSecretOnly"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
				Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:ViaService": n.viaSecretsManager, "kms:CallerAccount": account},
					"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": n.secretARNPattern},
				},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("RotatorGeneratesKeyPairsForThisSecretOnly"),
				Principals: &[]awsiam.IPrincipal{role},
				Actions:    jsii.Strings("kms:GenerateDataKeyPair"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"},
					"StringLike":   map[string]any{"kms:EncryptionContext:" + keypair.EncryptionContextKey: n.secretARNPattern},
				},
			}),
			// The alert topic is encrypted with this key, so the services
			// that publish to it must be able to use it for that topic.
			// EventBridge does not send aws:SourceArn/aws:SourceAccount on
			// this path; the topic's encryption context is its limit.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EventBridgePublishesToAlertTopic"),
				Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
				Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
				Resources:  jsii.Strings("*"),
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": n.topicARN},
				},
			}),
			alarmUsesKeyForAlertTopic("CloudWatchAlarmPublishesToAlertTopic", n.topicARN, n.errorsAlarmARN, account),
		}}),
	})
}

// alarmUsesKeyForAlertTopic lets exactly one CloudWatch alarm of this
// account use the key to publish to the alert topic. Both are named by
// their constructed ARNs (a Ref would be a cycle: key -> alarm -> topic
// -> key).
func alarmUsesKeyForAlertTopic(sid string, topicARN, alarmARN, account *string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String(sid),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": topicARN, "aws:SourceAccount": account},
			"ArnEquals":    map[string]any{"aws:SourceArn": alarmARN},
		},
	})
}
