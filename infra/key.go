package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/jsii-runtime-go"

	"github.com/flowkey/flowkey/internal/keypair"
)

// stackKey is the KMS key that encrypts the secret and the alert topic and
// generates the rotator's RSA-2048 key pairs: created by the stack, or
// adopted (ExistingKeyARN) from one that `cdk destroy` retained.
type stackKey struct {
	key awskms.IKey
	// own is the key the stack created; nil when adopted, whose policy
	// the stack cannot change (see the README on adopting a key).
	own awskms.Key
}

// addStatement extends the policy of a key the stack created.
func (k stackKey) addStatement(st awsiam.PolicyStatement) {
	if k.own != nil {
		k.own.AddToResourcePolicy(st, jsii.Bool(false))
	}
}

// newKey is the key and its alias. Its policy names the rotator's role by
// aws:PrincipalArn, the secret by n.secretARNPatterns and the alert topic
// by its constructed ARN; each alarm adds its own statement (alerts.go).
// Every name in it is derived from the stack name and the settings, so
// the policy of a retained key still fits a new stack of the same name.
func newKey(stack awscdk.Stack, props *RotationStackProps, n stackNames) stackKey {
	alias := jsii.String("alias/flowkey/" + *stack.StackName())
	if props.ExistingKeyARN != "" {
		key := awskms.Key_FromKeyArn(stack, jsii.String("Key"), jsii.String(props.ExistingKeyARN))
		awskms.NewAlias(stack, jsii.String("KeyAlias"), &awskms.AliasProps{AliasName: alias, TargetKey: key})
		return stackKey{key: key}
	}
	statements := keyPolicy(stack, props, n)
	key := awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("flowkey: encrypts " + props.SecretName + " and generates its RSA-2048 key pairs"),
		Alias:             alias,
		EnableKeyRotation: jsii.Bool(true),
		// Kept on update and delete: consumers must still decrypt old
		// versions after a stack is deleted by mistake, and deleting the
		// key is a deliberate manual step. Removed when the stack creation
		// that made it rolls back: it then encrypts nothing yet, and a
		// retained key would cost $1 a month per failed attempt.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
		Policy:        awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &statements}),
	})
	return stackKey{key: key, own: key}
}

// keyPolicy is the key's policy before the alarms add theirs.
func keyPolicy(stack awscdk.Stack, props *RotationStackProps, n stackNames) []awsiam.PolicyStatement {
	account := stack.Account()
	statements := []awsiam.PolicyStatement{
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
		// in its own IAM policy. With the fleet on, the tenants' secrets
		// and their token secrets too (fleet.go): the Sid stays, so that
		// turning the fleet on replaces no statement.
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("UseThroughSecretsManagerForThisSecretOnly"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
			Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:ViaService": n.viaSecretsManager, "kms:CallerAccount": account},
				"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": n.secretARNCondition()},
			},
		}),
		// The rotator's role by name, not as the principal: a principal is
		// stored as the role's unique ID, which a re-created role of the
		// same name does not have. The role's IAM policy grants the same.
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("RotatorGeneratesKeyPairsForThisSecretOnly"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
			Actions:    jsii.Strings("kms:GenerateDataKeyPair"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{
				"ArnEquals":    map[string]any{"aws:PrincipalArn": n.rotatorRoleARN},
				"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"},
				"StringLike":   map[string]any{"kms:EncryptionContext:" + keypair.EncryptionContextKey: n.keyPairSecretARNCondition()},
			},
		}),
	}
	if props.AlertTopicARN == "" {
		// The alert topic is encrypted with this key, so the services
		// that publish to it must be able to use it for that topic.
		// EventBridge does not send aws:SourceArn/aws:SourceAccount on
		// this path; the topic's encryption context is its limit.
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("EventBridgePublishesToAlertTopic"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil)},
			Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:EncryptionContext:aws:sns:topicArn": n.topicARN},
			},
		}))
	}
	return statements
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
