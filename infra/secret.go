package main

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/jsii-runtime-go"
)

// The seed: the secret's first version, written only into a secret that
// has none (see newSeed).
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
	// seedExistsCode is the error of a PutSecretValue whose version ID a
	// secret already holds with other data: the seed of a secret that
	// already has one. The update call ignores it, and only it.
	seedExistsCode = "ResourceExistsException"
)

// secret is the rotated secret and the custom resource that writes its
// first version; seed is nil for an adopted secret.
type secret struct {
	arn  *string // Ref of AWS::SecretsManager::Secret is its ARN
	seed customresources.AwsCustomResource
}

// newSecret is the secret, encrypted with key, and its seed, the
// configuration-only document initial; or the adopted secret, which no
// deploy writes.
func newSecret(stack awscdk.Stack, props *RotationStackProps, key stackKey, n stackNames, logs logSettings, network network, initial string) secret {
	if props.adoptsSecret() {
		return secret{arn: jsii.String(props.ExistingSecretARN)}
	}
	// No SecretString and no GenerateSecretString: CloudFormation creates
	// the secret empty (no version) and, as neither property exists, never
	// writes a version on a later deploy. A SecretString built from the
	// settings would: any changed setting would make CloudFormation put a
	// configuration-only version as AWSCURRENT, moving the live private key
	// to AWSPREVIOUS while Meta still holds its public key.
	s := awssecretsmanager.NewCfnSecret(stack, jsii.String("Secret"), &awssecretsmanager.CfnSecretProps{
		Name:        jsii.String(props.SecretName),
		Description: jsii.String("flowkey: the WhatsApp Flows business key pair and its configuration"),
		KmsKeyId:    key.key.KeyArn(),
	})
	// Kept on update, replacement and delete, for the same reason as the
	// key: it holds the live private key. Removed when the stack creation
	// (or the rename) that made it rolls back: it then holds only the
	// configuration, and a retained one would block the retry by its name.
	s.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE, nil)
	arn := s.Ref()
	return secret{arn: arn, seed: newSeed(stack, arn, key.key.KeyArn(), n, logs, network, initial)}
}

// newSeed writes the secret's first version, the configuration-only
// document, into a secret that has no version, and never into one that
// has.
//
// Why an AwsCustomResource next to a value-less CfnSecret, rather than a
// custom resource that creates the secret itself: the secret stays an
// ordinary CloudFormation resource (name, KMS key, description, removal
// policy, drift detection), and its Ref stays the ARN that the policies,
// the schedule and the outputs use. Only its value leaves the template's
// control. Each lifecycle event, one by one:
//
//   - Create: runs when the stack is created, on the new, empty secret.
//   - Update: the same call, for the secret the resource names now. A
//     renamed secret is a new, empty one (CloudFormation replaces it and
//     retains the old): the call seeds it, and testSecret then finds the
//     configuration. On a secret that has its seed, Secrets Manager
//     compares the request with the version seedVersionID holds: the same
//     document changes nothing, another fails with seedExistsCode, which
//     this call alone ignores. Either way nothing is written: a changed
//     setting changes this resource's properties and the
//     SecretConfiguration output, nothing in the secret (infra/README.md,
//     "Changing the numbers after the first deploy").
//   - Never AWSCURRENT: the seed asks for its own label only, and Secrets
//     Manager gives AWSCURRENT by itself to a secret's first version and
//     to no other, so no call can displace the live key.
//   - Delete: no call; the secret is retained.
//
// The provider is CDK's singleton Lambda. It runs with its own role, not
// the default one with AWSLambdaBasicExecutionRole (logs on every group):
// the one policy below is all it can do. Its log group receives the event,
// which holds the document: phone number or WABA IDs, no key, no token.
func newSeed(stack awscdk.Stack, secretARN, keyARN *string, n stackNames, logs logSettings, network network, document string) customresources.AwsCustomResource {
	logGroup := logs.logGroup(stack, "SecretSeedLogs")
	role := awsiam.NewRole(stack, jsii.String("SecretSeedRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(n.seedRoleName),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("flowkey seed: writes the first version of one secret, once"),
	})
	call := func(ignore *string) *customresources.AwsSdkCall {
		return &customresources.AwsSdkCall{
			Service: jsii.String("SecretsManager"),
			Action:  jsii.String("PutSecretValue"),
			Parameters: map[string]any{
				"SecretId":           secretARN,
				"ClientRequestToken": seedVersionID,
				"SecretString":       document,
				"VersionStages":      []string{seedStage},
			},
			PhysicalResourceId:       customresources.PhysicalResourceId_Of(jsii.String(seedVersionID)),
			IgnoreErrorCodesMatching: ignore,
		}
	}
	via := func() *map[string]any {
		return &map[string]any{"StringEquals": map[string]any{
			"kms:ViaService":                  n.viaSecretsManager,
			"kms:EncryptionContext:SecretARN": secretARN,
		}}
	}
	seed := customresources.NewAwsCustomResource(stack, jsii.String("SecretSeed"), &customresources.AwsCustomResourceProps{
		OnCreate: call(nil),
		OnUpdate: call(jsii.String("^" + seedExistsCode + "$")),
		Role:     role,
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SeedThisSecret"),
				Actions:   jsii.Strings("secretsmanager:PutSecretValue"),
				Resources: &[]*string{secretARN},
			}),
			// PutSecretValue makes Secrets Manager call GenerateDataKey on
			// the caller's behalf.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EncryptSeedThroughSecretsManager"),
				Actions:    jsii.Strings("kms:GenerateDataKey"),
				Resources:  &[]*string{keyARN},
				Conditions: via(),
			}),
			// And Decrypt, when the secret already holds seedVersionID, to
			// compare that version with the request, so that an update
			// fails with seedExistsCode rather than on access. The role
			// has no GetSecretValue: it can compare, never read.
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("CompareSeedThroughSecretsManager"),
				Actions:    jsii.Strings("kms:Decrypt"),
				Resources:  &[]*string{keyARN},
				Conditions: via(),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("WriteOwnLogs"),
				Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
				Resources: &[]*string{logGroup.LogGroupArn()},
			}),
		}),
		LogGroup: logGroup,
		// The call is in every Lambda Node.js runtime's SDK; installing
		// the latest from npm would need internet access and a minute.
		InstallLatestAwsSdk: jsii.Bool(false),
		// A provider that never answers fails the deploy after 5 minutes,
		// not CloudFormation's default hour.
		ServiceTimeout: awscdk.Duration_Minutes(jsii.Number(5)),
	})
	if network.enabled() {
		provider := stack.Node().FindChild(jsii.String("AWS" + strings.ReplaceAll(*customresources.AwsCustomResource_PROVIDER_FUNCTION_UUID(), "-", "")))
		network.place(stack, "SecretSeed", role, provider.Node().DefaultChild().(awslambda.CfnFunction))
		network.requiredBy(seed)
	}
	return seed
}
