package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/jsii-runtime-go"
)

// The seed: the secret's first version, written once (see newSeed).
const (
	// seedVersionID is the ClientRequestToken, and so the VersionId, of the
	// first version: uuid.NewSHA1(uuid.NameSpaceURL,
	// "https://github.com/flowkey/flowkey/infra#seed-version"). It must
	// never change: because it is fixed, PutSecretValue can add the seed to
	// a secret at most once and fails on any later attempt with other data.
	seedVersionID = "e0d1db6c-1e5b-5247-af7f-df9e462ab3b5"
	// seedStage is the only label the seed asks for. Secrets Manager adds
	// AWSCURRENT by itself to the first version of a secret, and only to
	// that; the label also keeps the version from being deprecated and
	// deleted, so seedVersionID stays taken for the life of the secret.
	seedStage = "flowkey-seed"
)

// secret is the rotated secret and the custom resource that writes its
// first version.
type secret struct {
	arn  *string // Ref of AWS::SecretsManager::Secret is its ARN
	seed customresources.AwsCustomResource
}

// newSecret is the secret, encrypted with key, and its seed, the
// configuration-only document initial.
func newSecret(stack awscdk.Stack, secretName string, key awskms.Key, viaSecretsManager *string, initial string) secret {
	// No SecretString and no GenerateSecretString: CloudFormation creates
	// the secret empty (no version) and, as neither property exists, never
	// writes a version on a later deploy. A SecretString built from the
	// settings would: any changed setting would make CloudFormation put a
	// configuration-only version as AWSCURRENT, moving the live private key
	// to AWSPREVIOUS while Meta still holds its public key.
	s := awssecretsmanager.NewCfnSecret(stack, jsii.String("Secret"), &awssecretsmanager.CfnSecretProps{
		Name:        jsii.String(secretName),
		Description: jsii.String("flowkey: the WhatsApp Flows business key pair and its configuration"),
		KmsKeyId:    key.KeyArn(),
	})
	// Retained for the same reason as the key: it holds the live private key.
	s.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	arn := s.Ref()
	return secret{arn: arn, seed: newSeed(stack, arn, key.KeyArn(), viaSecretsManager, initial)}
}

// newSeed writes the secret's first version, the configuration-only
// document, when the stack is created, and never again.
//
// Why a create-only AwsCustomResource next to a value-less CfnSecret,
// rather than a custom resource that creates the secret itself: the
// secret stays an ordinary CloudFormation resource (name, KMS key,
// description, Retain, drift detection), and its Ref stays the ARN that
// the policies, the schedule and the outputs use. Only its value leaves
// the template's control. Each lifecycle event, one by one:
//
//   - Update: no onUpdate, so the provider makes no call. A changed
//     setting changes this resource's Create property and the
//     SecretConfiguration output, nothing in the secret (infra/README.md,
//     "Changing the numbers after the first deploy").
//   - Create: runs when the stack is created. Should it ever run again (a
//     renamed construct replaces the resource), the secret already has a
//     version seedVersionID, which Secrets Manager decrypts to compare
//     with the request: this role may not, so the call fails (were it
//     allowed: nothing for the same document, ResourceExistsException for
//     another). And the seed never asks for AWSCURRENT, which Secrets
//     Manager gives by itself only to a secret's first version.
//   - Delete: no call; the secret is retained.
//
// The provider is CDK's singleton Lambda. It runs with its own role, not
// the default one with AWSLambdaBasicExecutionRole (logs on every group):
// the one policy below is all it can do. Its log group receives the event,
// which holds the document: phone number or WABA IDs, no key, no token.
func newSeed(stack awscdk.Stack, secretARN, keyARN, viaSecretsManager *string, document string) customresources.AwsCustomResource {
	logs := awslogs.NewLogGroup(stack, jsii.String("SecretSeedLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	role := awsiam.NewRole(stack, jsii.String("SecretSeedRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("flowkey seed: writes the first version of one secret, once"),
	})
	return customresources.NewAwsCustomResource(stack, jsii.String("SecretSeed"), &customresources.AwsCustomResourceProps{
		OnCreate: &customresources.AwsSdkCall{
			Service: jsii.String("SecretsManager"),
			Action:  jsii.String("PutSecretValue"),
			Parameters: map[string]any{
				"SecretId":           secretARN,
				"ClientRequestToken": seedVersionID,
				"SecretString":       document,
				"VersionStages":      []string{seedStage},
			},
			PhysicalResourceId: customresources.PhysicalResourceId_Of(jsii.String(seedVersionID)),
		},
		Role: role,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SeedThisSecret"),
				Actions:   jsii.Strings("secretsmanager:PutSecretValue"),
				Resources: &[]*string{secretARN},
			}),
			// PutSecretValue makes Secrets Manager call GenerateDataKey on
			// the caller's behalf; Decrypt only to compare with an existing
			// version, which the seed must never meet.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("EncryptSeedThroughSecretsManager"),
				Actions:   jsii.Strings("kms:GenerateDataKey"),
				Resources: &[]*string{keyARN},
				Conditions: &map[string]any{"StringEquals": map[string]any{
					"kms:ViaService":                  viaSecretsManager,
					"kms:EncryptionContext:SecretARN": secretARN,
				}},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("WriteOwnLogs"),
				Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
				Resources: &[]*string{logs.LogGroupArn()},
			}),
		}),
		LogGroup: logs,
		// The call is in every Lambda Node.js runtime's SDK; installing
		// the latest from npm would need internet access and a minute.
		InstallLatestAwsSdk: jsii.Bool(false),
		// A provider that never answers fails the deploy after 5 minutes,
		// not CloudFormation's default hour.
		ServiceTimeout: awscdk.Duration_Minutes(jsii.Number(5)),
	})
}
