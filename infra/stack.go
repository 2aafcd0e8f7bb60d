package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// NewRotationStack defines the key, the secret, the rotator and its alerts.
// Invalid props become an error annotation on the stack (synthesis then
// fails with that message) instead of a panic.
//
// Each concern has its constructor, called in the order below: the order
// in which constructs are added is the order of the template's resources
// and of the statements in each policy, so it is part of the template.
// The rotator's role comes first because the key policy names it.
func NewRotationStack(scope constructs.Construct, id string, props *RotationStackProps) awscdk.Stack {
	var sp awscdk.StackProps
	if props != nil {
		sp = props.StackProps
	}
	if sp.Description == nil {
		sp.Description = jsii.String("flowkey: rotates the WhatsApp Flows business RSA-2048 key held in Secrets Manager")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	documents, err := secretDocumentsOf(props)
	if err != nil {
		awscdk.Annotations_Of(stack).AddError(jsii.String(err.Error()))
		return stack
	}

	names := newStackNames(stack, props.SecretName)
	role := newRotatorRole(stack)
	key := newKey(stack, props.SecretName, names, role)
	secret := newSecret(stack, props.SecretName, key, names.viaSecretsManager, documents.initial)
	rotator := newRotator(stack, props, role, key, secret, names.viaSecretsManager)
	newRotationSchedule(stack, props, rotator.fn, secret)
	topic := newAlerts(stack, props, names, key, secret.arn, rotator.fn)
	newOutputs(stack, stackOutputs{
		secretARN: secret.arn, key: key, rotator: rotator, role: role, topic: topic,
		configJSON: documents.configJSON,
	})
	return stack
}

// secretDocuments are the two renderings of the settings that the stack
// writes: the secret's first version and the SecretConfiguration output.
type secretDocuments struct {
	initial    string
	configJSON string
}

// secretDocumentsOf validates props (nil included) and renders them.
func secretDocumentsOf(props *RotationStackProps) (secretDocuments, error) {
	if err := props.Validate(); err != nil {
		return secretDocuments{}, err
	}
	initial, err := props.initialSecretString()
	if err != nil {
		return secretDocuments{}, err
	}
	configJSON, err := props.configJSON()
	if err != nil {
		return secretDocuments{}, err
	}
	return secretDocuments{initial: initial, configJSON: configJSON}, nil
}

// stackNames are the names and ARNs the key policy needs before the
// resources they stand for exist.
type stackNames struct {
	// The topic and the alarms get fixed names so that the key policy can
	// name them: a Ref from the key policy would be a cycle (topic -> key
	// -> topic).
	topicName, errorsAlarmName, driftAlarmName string
	topicARN, errorsAlarmARN, driftAlarmARN    *string
	// The secret's own ARN cannot appear in the key policy (the secret is
	// encrypted with the key); its name plus the 6 random characters that
	// Secrets Manager appends is as narrow.
	secretARNPattern *string
	// viaSecretsManager is the kms:ViaService of calls Secrets Manager
	// makes on a caller's behalf.
	viaSecretsManager *string
}

func newStackNames(stack awscdk.Stack, secretName string) stackNames {
	stackName := *stack.StackName()
	n := stackNames{
		topicName:         stackName + "-alerts",
		errorsAlarmName:   stackName + "-rotator-errors",
		driftAlarmName:    stackName + "-drift",
		viaSecretsManager: jsii.String("secretsmanager." + *stack.Region() + ".amazonaws.com"),
	}
	n.topicARN = stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("sns"), Resource: jsii.String(n.topicName)})
	alarmARN := func(name string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"),
			ResourceName: jsii.String(name), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		})
	}
	n.errorsAlarmARN = alarmARN(n.errorsAlarmName)
	n.driftAlarmARN = alarmARN(n.driftAlarmName)
	n.secretARNPattern = stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"),
		ResourceName: jsii.String(secretName + "-??????"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	return n
}

// stackOutputs is what the outputs report.
type stackOutputs struct {
	secretARN  *string
	key        awskms.Key
	rotator    rotator
	role       awsiam.Role
	topic      awssns.Topic
	configJSON string
}

func newOutputs(stack awscdk.Stack, o stackOutputs) {
	out := func(id, desc string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: value})
	}
	out("SecretArn", "The secret that holds the key; consumers read AWSCURRENT and AWSPREVIOUS", o.secretARN)
	out("KeyArn", "The KMS key of the secret; consumers need kms:Decrypt on it", o.key.KeyArn())
	out("RotatorFunctionName", "The rotation Lambda; its logs are in RotatorLogGroupName", o.rotator.fn.FunctionName())
	out("RotatorLogGroupName", "The rotation Lambda's log group", o.rotator.logs.LogGroupName())
	out("RotatorRoleArn", "The rotator's execution role, for key policies outside this stack (a token secret under its own KMS key)", o.role.RoleArn())
	out("AlertTopicArn", "Rotation failures and rotator errors are published here", o.topic.TopicArn())
	out("RotateSecretCommand", "Starts a rotation now", jsii.String("aws secretsmanager rotate-secret --region "+*stack.Region()+" --secret-id "+*o.secretARN))
	out("SecretConfiguration", "The secret's config as the settings describe it. Only the first deploy writes it; "+
		"apply a change with the README's 'Changing the numbers after the first deploy'", jsii.String(o.configJSON))
}

// logRetention applies to both log groups, the rotator's and the seed's.
const logRetention = awslogs.RetentionDays_ONE_YEAR

// addNagChecks runs cdk-nag's AwsSolutions pack on every stack of the app;
// findings become error/warning annotations, which fail `cdk synth`.
func addNagChecks(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}
