package main

import (
	"maps"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// NewRotationStack defines the key, the secret, the rotator and its alerts,
// and, when the settings ask for it, the Flows endpoint and its alarms.
// Invalid props become an error annotation on the stack (synthesis then
// fails with that message) instead of a panic.
//
// Each concern has its constructor, called in the order below: the order
// in which constructs are added is the order of the template's resources
// and of the statements in each policy, so it is part of the template.
// The rotator's role comes first because its policies are added as the
// resources they name appear.
func NewRotationStack(scope constructs.Construct, id string, props *RotationStackProps) awscdk.Stack {
	var sp awscdk.StackProps
	if props != nil {
		sp = props.StackProps
		if props.TerminationProtection {
			sp.TerminationProtection = jsii.Bool(true)
		}
		// On the stack itself too (cdk.json's explicitStackTags), where
		// policies that require tags on cloudformation:CreateStack look.
		if len(props.Tags) > 0 && sp.Tags == nil {
			tags := map[string]*string{}
			for k, v := range props.Tags {
				tags[k] = jsii.String(v)
			}
			sp.Tags = &tags
		}
	}
	if sp.Description == nil {
		sp.Description = jsii.String("flowkey: rotates the WhatsApp Flows business RSA-2048 key held in Secrets Manager")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	documents, err := secretDocumentsOf(props)
	if err == nil {
		err = props.checkEnvironment(*stack.StackName(), known(stack.Region()), known(stack.Account()))
	}
	if err != nil {
		awscdk.Annotations_Of(stack).AddError(jsii.String(err.Error()))
		return stack
	}

	applyPlatformSettings(stack, props)
	names := newStackNames(stack, props)
	role := newRotatorRole(stack, names)
	var endpointRole awsiam.Role
	if props.endpointOn() {
		endpointRole = newEndpointRole(stack, names)
	}
	key := newKey(stack, props, names)
	logs := newLogSettings(stack, props)
	network := newNetwork(stack, props)
	secret := newSecret(stack, props, key, names, logs, network, documents.initial)
	rotator := newRotator(stack, props, role, key, secret, names, logs, network, newCustodyEnvironment(props, role, endpointRole))
	if props.custodyOn() {
		grantKeyCustody(stack, role, rotator.fn, names.secretScope(secret.arn), names.fleet)
	}
	newRotationSchedule(stack, props, rotator.fn, secret, network)
	if names.fleet != nil {
		grantFleet(stack, role, names.fleet, key.key.KeyArn(), names.viaSecretsManager)
		allowSecretsManagerForTenants(stack, rotator.fn, names.fleet)
	}
	alerts := newAlerts(stack, props, names, key, secret.arn, rotator.fn)
	newOutputs(stack, stackOutputs{
		secretARN: secret.arn, key: key.key, rotator: rotator, role: role, topicARN: alerts.topic.TopicArn(),
		configJSON: documents.configJSON,
	})
	if props.endpointOn() {
		endpoint := newEndpoint(stack, props, endpointRole, key, secret, names, logs, network)
		newEndpointAlarms(alerts, props, endpoint)
		endpointOutputs(stack, endpoint)
	}
	return stack
}

// known is a value that synthesis knows, or "" for a token (an
// environment-agnostic stack's account or region).
func known(v *string) string {
	if v == nil || *awscdk.Token_IsUnresolved(v) {
		return ""
	}
	return *v
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

// applyPlatformSettings tags every resource that takes tags and puts the
// permissions boundary on every role, the seed's provider included.
func applyPlatformSettings(stack awscdk.Stack, props *RotationStackProps) {
	for _, k := range slices.Sorted(maps.Keys(props.Tags)) {
		awscdk.Tags_Of(stack).Add(jsii.String(k), jsii.String(props.Tags[k]), nil)
	}
	if props.PermissionsBoundaryARN != "" {
		boundary := awsiam.ManagedPolicy_FromManagedPolicyArn(stack, jsii.String("PermissionsBoundary"), jsii.String(props.PermissionsBoundaryARN))
		awsiam.PermissionsBoundary_Of(stack).Apply(boundary)
	}
}

// stackNames are the names and ARNs that policies need before the
// resources they stand for exist, or after they were re-created.
type stackNames struct {
	// The topic and the alarms get fixed names so that the key policy can
	// name them: a Ref from the key policy would be a cycle (topic -> key
	// -> topic).
	topicName string
	topicARN  *string
	alarms    alarmNames
	// The roles get fixed names so that key policies outside the stack (a
	// token secret under its own key) can name the rotator before the first
	// deploy, and the stack's own key policy names it by aws:PrincipalArn:
	// a key adopted after `cdk destroy` still lets the re-created role in,
	// where a principal would have turned into the deleted role's ID.
	rotatorRoleName, seedRoleName, endpointRoleName string
	rotatorRoleARN                                  *string
	endpointAlarms                                  endpointAlarmNames
	// The secret's own ARN cannot appear in the key policy (the secret is
	// encrypted with the key); its name plus the 6 random characters that
	// Secrets Manager appends is as narrow. Retained secrets of earlier
	// names follow it.
	secretARNPatterns []*string
	// viaSecretsManager is the kms:ViaService of calls Secrets Manager
	// makes on a caller's behalf.
	viaSecretsManager *string
	// fleet is the fleet's names and patterns; nil with the fleet off.
	fleet *fleetNames
}

func newStackNames(stack awscdk.Stack, props *RotationStackProps) stackNames {
	stackName := *stack.StackName()
	n := stackNames{
		topicName:         stackName + "-alerts",
		alarms:            newAlarmNames(stackName),
		rotatorRoleName:   roleName(props.RoleNamePrefix, stackName, rotatorRoleSuffix, *stack.Region()),
		seedRoleName:      roleName(props.RoleNamePrefix, stackName, seedRoleSuffix, *stack.Region()),
		endpointRoleName:  roleName(props.RoleNamePrefix, stackName, endpointRoleSuffix, *stack.Region()),
		endpointAlarms:    newEndpointAlarmNames(stackName),
		viaSecretsManager: jsii.String("secretsmanager." + *stack.Region() + ".amazonaws.com"),
		fleet:             newFleetNames(stack, props.Fleet),
	}
	n.topicARN = stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("sns"), Resource: jsii.String(n.topicName)})
	n.rotatorRoleARN = stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("iam"), Region: jsii.String(""), Resource: jsii.String("role"), ResourceName: jsii.String(n.rotatorRoleName),
	})
	for _, name := range append([]string{props.SecretName}, props.RetainedSecretNames...) {
		n.secretARNPatterns = append(n.secretARNPatterns, stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"),
			ResourceName: jsii.String(name + "-??????"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		}))
	}
	return n
}

// alarmARN is the ARN an alarm of this name will have.
func alarmARN(stack awscdk.Stack, name string) *string {
	return stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("cloudwatch"), Resource: jsii.String("alarm"),
		ResourceName: jsii.String(name), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
}

// secretARNCondition is the StringLike value for the secret's ARN: one
// pattern, or a list once the secret has been renamed; with the fleet on,
// the tenants' and their token secrets' patterns too.
func (n stackNames) secretARNCondition() any {
	if n.fleet != nil {
		return append(slices.Clone(n.secretARNPatterns), n.fleet.tenants, n.fleet.tokens)
	}
	if len(n.secretARNPatterns) == 1 {
		return n.secretARNPatterns[0]
	}
	return n.secretARNPatterns
}

// keyPairSecretARNCondition is the StringLike value of the key pairs'
// encryption context: the secret, and with the fleet on the tenants.
func (n stackNames) keyPairSecretARNCondition() any {
	if n.fleet != nil {
		return []*string{n.secretARNPatterns[0], n.fleet.tenants}
	}
	return n.secretARNPatterns[0]
}

// secretScope is what the custody grants reach.
func (n stackNames) secretScope(secretARN *string) secretScope {
	s := secretScope{arn: secretARN}
	if n.fleet != nil {
		s.tenants = n.fleet.tenants
	}
	return s
}

// logSettings apply to every log group: the rotator's, the seed's and the
// endpoint's.
type logSettings struct {
	retention     awslogs.RetentionDays
	encryptionKey awskms.IKey // nil: CloudWatch Logs' own encryption
}

func newLogSettings(stack awscdk.Stack, props *RotationStackProps) logSettings {
	s := logSettings{retention: logRetentions[props.LogRetentionDays]}
	if props.LogKeyARN != "" {
		s.encryptionKey = awskms.Key_FromKeyArn(stack, jsii.String("LogKey"), jsii.String(props.LogKeyARN))
	}
	return s
}

// logGroup is a log group with the log settings. It is kept on update and
// delete (the rotator's holds the audit trail of the live key) but
// removed when the stack creation that made it rolls back, so that a
// failed first deploy leaves nothing behind.
func (s logSettings) logGroup(stack awscdk.Stack, id string) awslogs.LogGroup {
	return awslogs.NewLogGroup(stack, jsii.String(id), &awslogs.LogGroupProps{
		Retention:     s.retention,
		EncryptionKey: s.encryptionKey,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
}

// stackOutputs is what the outputs report.
type stackOutputs struct {
	secretARN  *string
	key        awskms.IKey
	rotator    rotator
	role       awsiam.Role
	topicARN   *string
	configJSON string
}

func newOutputs(stack awscdk.Stack, o stackOutputs) {
	out := func(id, desc string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: value})
	}
	out("SecretArn", "The secret that holds the key; consumers read AWSCURRENT, AWSPENDING and AWSPREVIOUS", o.secretARN)
	out("KeyArn", "The KMS key of the secret; consumers need kms:Decrypt on it", o.key.KeyArn())
	out("RotatorFunctionName", "The rotation Lambda; its logs are in RotatorLogGroupName", o.rotator.fn.FunctionName())
	out("RotatorLogGroupName", "The rotation Lambda's log group", o.rotator.logs.LogGroupName())
	out("RotatorRoleArn", "The rotator's execution role, for key policies outside this stack (a token secret under its own KMS key)", o.role.RoleArn())
	out("AlertTopicArn", "Rotation failures and rotator errors are published here", o.topicARN)
	out("RotateSecretCommand", "Starts a rotation now", jsii.String("aws secretsmanager rotate-secret --region "+*stack.Region()+" --secret-id "+*o.secretARN))
	out("SecretConfiguration", "The secret's config as the settings describe it. Only a deploy that creates the secret writes it; "+
		"apply a change with the README's 'Changing the numbers after the first deploy'", jsii.String(o.configJSON))
}

// addNagChecks runs cdk-nag's AwsSolutions pack on every stack of the app;
// findings become error/warning annotations, which fail `cdk synth`.
func addNagChecks(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}
