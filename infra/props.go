package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// RotationStackProps are the deployment settings. Every field but
// StackProps is validated by Validate (and, against the stack's account
// and region, by checkEnvironment); propsFromSettings fills them from CDK
// context or the environment.
type RotationStackProps struct {
	awscdk.StackProps

	// SecretName names the secret that holds the key (and is rotated).
	SecretName string
	// PhoneNumberIDs or WABAID (exactly one) say which numbers get the key.
	PhoneNumberIDs []string
	WABAID         string
	// AccessTokenSecretARN is the complete ARN (with the 6-character
	// suffix) of an existing secret that holds the Graph system user token.
	// The stack only reads it: the token never appears in a template. It
	// must be in the stack's account and region: the rotator's Secrets
	// Manager client is regional.
	AccessTokenSecretARN string
	// AccessTokenSecretKeyARN is the customer-managed KMS key that encrypts
	// the token secret, if it is not aws/secretsmanager: the rotator gets
	// kms:Decrypt on it through Secrets Manager for that secret only.
	AccessTokenSecretKeyARN string
	// GraphAPIVersion is the function's GRAPH_API_VERSION.
	GraphAPIVersion string
	// Schedule is "rate(N days|hours)" or "cron(...)"; RotationWindow is the
	// Duration during which Secrets Manager may start the rotation ("2h").
	Schedule       string
	RotationWindow string
	// StatusSchedule is the EventBridge schedule expression ("rate(1 hour)",
	// "cron(0 * * * ? *)") on which the rotator runs {"command":"status"},
	// with the drift, heartbeat and rotation-overdue alarms on what it
	// publishes; StatusScheduleOff for none of them.
	StatusSchedule string
	// AlertEmail, when set, subscribes that address to the alert topic.
	AlertEmail string
	// AlertTopicARN, when set, is an existing SNS topic (central alerting)
	// that every alert goes to instead of a topic of the stack's own.
	AlertTopicARN string
	// CodePath is the directory that holds the linux/arm64 bootstrap
	// (make build-arm64), relative to the working directory of the app.
	CodePath string

	// ExistingSecretARN and ExistingKeyARN adopt a secret and a KMS key
	// that an earlier stack left behind (cdk destroy retains both) instead
	// of creating them. An adopted secret is never written by a deploy.
	ExistingSecretARN string
	ExistingKeyARN    string
	// RetainedSecretNames are names this stack's secret had before a
	// rename: CloudFormation keeps the replaced secrets, and the key policy
	// keeps letting their consumers decrypt them.
	RetainedSecretNames []string

	// TerminationProtection turns on the stack's termination protection.
	TerminationProtection bool
	// Tags go on every resource that takes tags.
	Tags map[string]string
	// PermissionsBoundaryARN is a managed policy set as the permissions
	// boundary of every role of the stack.
	PermissionsBoundaryARN string
	// RoleNamePrefix starts the name of every role of the stack.
	RoleNamePrefix string
	// LogRetentionDays is the retention of both log groups, one of the
	// values CloudWatch Logs accepts; LogKeyARN, when set, encrypts them.
	LogRetentionDays int
	LogKeyARN        string
	// Network places the rotator, the seed function and the endpoint in a
	// VPC.
	Network Network
	// Endpoint, when enabled, deploys the Flows endpoint (functions/endpoint)
	// behind a Function URL.
	Endpoint FlowsEndpoint
	// Custody is where the secret keeps its Flows private keys, and who may
	// decrypt with the keys held in KMS (custody.go).
	Custody KeyCustody
	// Fleet is fleet mode (fleet.go): off (zero) by default.
	Fleet Fleet
}

// KeyCustody is the key custody of the stack's secret. Zero is today's
// custody, the private key in the secret, with the defaults below.
type KeyCustody struct {
	// Mode seeds config.key_custody in the secret's first version:
	// secretdoc.CustodySecretsManager ("" too) or secretdoc.CustodyKMS.
	// Later changes are set-config's, like the numbers'.
	Mode string
	// DecryptRoleARNs are IAM roles of the stack's account, besides the
	// endpoint's, that every KMS custody key's policy lets decrypt (your
	// own Flows endpoint, for example). Each must exist before the first
	// rotation in KMS custody: KMS refuses a policy naming a missing one.
	DecryptRoleARNs []string
	// DeletionDays is the waiting period of a retired custody key, 7-30;
	// 0 is DefaultCustodyKeyDeletionDays.
	DeletionDays int
}

// FlowsEndpoint is the Flows endpoint's deployment. Zero is no endpoint;
// any of the first four set asks for one, which Validate then requires to
// be complete: exactly one backend and the app secret.
type FlowsEndpoint struct {
	// BackendFunctionARN is the Lambda function (a qualified ARN for an
	// alias or version) the endpoint invokes with INIT, BACK and
	// data_exchange; the endpoint may invoke it and nothing else.
	BackendFunctionARN string
	// BackendURL is the https:// URL the endpoint POSTs them to instead.
	BackendURL string
	// AppSecretARN is the complete ARN of the secret that holds the Meta
	// app secret, with which X-Hub-Signature-256 is checked. Like the
	// token secret, the stack only reads it.
	AppSecretARN string
	// AppSecretKeyARN is the customer-managed KMS key that encrypts the
	// app secret, if it is not aws/secretsmanager.
	AppSecretKeyARN string
	// CodePath is the directory that holds the endpoint's linux/arm64
	// bootstrap (make build-arm64), relative to the app's working directory.
	CodePath string
}

// requested tells whether any setting asks for the endpoint.
func (e FlowsEndpoint) requested() bool {
	return e.BackendFunctionARN != "" || e.BackendURL != "" || e.AppSecretARN != "" || e.AppSecretKeyARN != ""
}

// Network is the VPC placement of the stack's two functions. Zero is no VPC.
type Network struct {
	// SubnetIDs and SecurityGroupIDs are the functions' VpcConfig. The
	// subnets need a route to the internet (a NAT) for Graph.
	SubnetIDs        []string
	SecurityGroupIDs []string
	// CreateEndpoints adds interface endpoints for Secrets Manager, KMS
	// and X-Ray in VPCID, in the same subnets.
	CreateEndpoints bool
	VPCID           string
}

// enabled tells whether the functions run in a VPC.
func (n Network) enabled() bool { return len(n.SubnetIDs) > 0 }

// Defaults of the optional settings.
const (
	DefaultStackName        = "FlowkeyRotation"
	DefaultSecretName       = "flowkey/whatsapp-flows-key"
	DefaultSchedule         = "rate(30 days)"
	DefaultRotationWindow   = "2h"
	DefaultStatusSchedule   = "rate(1 hour)"
	DefaultCodePath         = "../.build/arm64/rotator"
	DefaultEndpointCodePath = "../.build/arm64/endpoint"
	DefaultLogRetentionDays = 365
	// DefaultCustodyKeyDeletionDays is KMS's own default waiting period.
	DefaultCustodyKeyDeletionDays = config.DefaultCustodyKeyDeletionDays
)

// StatusScheduleOff as the StatusSchedule turns the status schedule and
// the alarms on what it publishes off.
const StatusScheduleOff = "off"

// propsFromSettings reads every parameter, applies defaults and validates
// the result, reporting every bad parameter at once. The code directory is
// checked too, so a missing `make build-arm64` fails here and not deep in
// asset staging.
func propsFromSettings(s settings) (*RotationStackProps, error) {
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	get := func(p setting, def string) string {
		v, err := s.str(p)
		collect(err)
		if v == "" {
			return def
		}
		return v
	}
	list := func(p setting) []string {
		v, err := s.list(p)
		collect(err)
		return v
	}
	p := &RotationStackProps{
		SecretName:              get(settingSecretName, DefaultSecretName),
		WABAID:                  get(settingWABAID, ""),
		AccessTokenSecretARN:    get(settingTokenSecretARN, ""),
		AccessTokenSecretKeyARN: get(settingTokenKeyARN, ""),
		GraphAPIVersion:         get(settingGraphVersion, graph.DefaultVersion),
		Schedule:                get(settingSchedule, DefaultSchedule),
		RotationWindow:          get(settingWindow, DefaultRotationWindow),
		StatusSchedule:          get(settingStatusSchedule, DefaultStatusSchedule),
		AlertEmail:              get(settingAlertEmail, ""),
		AlertTopicARN:           get(settingAlertTopicARN, ""),
		CodePath:                get(settingCodePath, DefaultCodePath),
		ExistingSecretARN:       get(settingExistingSecretARN, ""),
		ExistingKeyARN:          get(settingExistingKeyARN, ""),
		PermissionsBoundaryARN:  get(settingPermissionsBoundary, ""),
		RoleNamePrefix:          get(settingRoleNamePrefix, ""),
		LogKeyARN:               get(settingLogKeyARN, ""),
		PhoneNumberIDs:          list(settingPhoneNumberIDs),
		RetainedSecretNames:     list(settingRetainedSecretNames),
		Network: Network{
			SubnetIDs:        list(settingSubnetIDs),
			SecurityGroupIDs: list(settingSecurityGroupIDs),
			VPCID:            get(settingVPCID, ""),
		},
		Endpoint: FlowsEndpoint{
			BackendFunctionARN: get(settingEndpointBackendFunctionARN, ""),
			BackendURL:         get(settingEndpointBackendURL, ""),
			AppSecretARN:       get(settingAppSecretARN, ""),
			AppSecretKeyARN:    get(settingAppSecretKeyARN, ""),
			CodePath:           get(settingEndpointCodePath, DefaultEndpointCodePath),
		},
		Custody: KeyCustody{
			Mode:            get(settingKeyCustody, secretdoc.CustodySecretsManager),
			DecryptRoleARNs: list(settingCustodyDecryptRoles),
		},
		// Unset stays "": Validate refuses a prefix without the fleet, and
		// the Fleet methods apply the defaults.
		Fleet: Fleet{
			SecretPrefix:    get(settingFleetSecretPrefix, ""),
			TokenPrefix:     get(settingFleetTokenPrefix, ""),
			AppSecretPrefix: get(settingFleetAppSecretPrefix, ""),
			RotationWindow:  get(settingFleetWindow, ""),
		},
	}
	var err error
	p.TerminationProtection, err = s.boolean(settingTerminationProtection, false)
	collect(err)
	p.Network.CreateEndpoints, err = s.boolean(settingVPCEndpoints, false)
	collect(err)
	p.LogRetentionDays, err = s.integer(settingLogRetention, DefaultLogRetentionDays)
	collect(err)
	p.Tags, err = s.stringMap(settingTags)
	collect(err)
	p.Custody.DeletionDays, err = s.integer(settingCustodyDeletionDays, DefaultCustodyKeyDeletionDays)
	collect(err)
	p.Fleet.Enabled, err = s.boolean(settingFleet, false)
	collect(err)
	// An adopted secret names itself; the name setting may only agree.
	if p.ExistingSecretARN != "" && !s.isSet(settingSecretName) {
		if name, ok := secretNameOfARN(p.ExistingSecretARN); ok {
			p.SecretName = name
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// stackNameFromSettings is separate from the props: it names the stack,
// which StackProps carries.
func stackNameFromSettings(s settings) (string, error) {
	v, err := s.str(settingStackName)
	if err != nil {
		return "", err
	}
	if v == "" {
		return DefaultStackName, nil
	}
	if !stackNameRE.MatchString(v) {
		return "", &settingError{settingStackName, fmt.Sprintf("%q is not a CloudFormation stack name", clip(v)), "start with a letter and use only letters, digits and hyphens, at most 100 characters"}
	}
	return v, nil
}

// statusScheduleOn tells whether the stack runs the status command on a
// schedule (and alarms on what it publishes).
func (p *RotationStackProps) statusScheduleOn() bool {
	return !strings.EqualFold(p.StatusSchedule, StatusScheduleOff)
}

// endpointOn tells whether the stack deploys the Flows endpoint. After
// Validate, it also means the endpoint's settings are complete.
func (p *RotationStackProps) endpointOn() bool { return p.Endpoint.requested() }

// adoptsSecret tells whether the stack rotates an existing secret rather
// than one it creates.
func (p *RotationStackProps) adoptsSecret() bool { return p.ExistingSecretARN != "" }

// secretConfig is the configuration part of the secret document: which
// numbers get the key, and where the next rotation keeps it. The token secret's ARN and the
// Graph version are optional in the document and the rotator falls back
// to ACCESS_TOKEN_SECRET_ID and GRAPH_API_VERSION, which the stack sets
// on the function. Leaving them out keeps them ordinary settings that
// every deploy applies, together with the IAM grant on the token secret,
// while the document is written only into an empty secret (see newSeed).
//
// The key custody is in it only when it is KMS: the absent value means
// the secret, and a default stack's first version stays what it was
// before key custody existed.
func (p *RotationStackProps) secretConfig() secretdoc.Config {
	c := secretdoc.Config{
		PhoneNumberIDs: p.PhoneNumberIDs,
		WABAID:         p.WABAID,
	}
	if p.Custody.inKMS() {
		c.KeyCustody = secretdoc.CustodyKMS
	}
	return c
}

// configJSON is secretConfig as JSON, the "config" member of the document.
func (p *RotationStackProps) configJSON() (string, error) {
	b, err := json.Marshal(p.secretConfig())
	if err != nil {
		return "", fmt.Errorf("flowkey: encoding the secret's configuration: %w", err)
	}
	return string(b), nil
}

// initialSecretString is the first version of the secret: the
// configuration only. It holds IDs, no key material, so it may appear in
// the template; the first rotation adds the key.
func (p *RotationStackProps) initialSecretString() (string, error) {
	b, err := json.Marshal(secretdoc.Document{SchemaVersion: secretdoc.SchemaVersion, Config: p.secretConfig()})
	if err != nil {
		return "", fmt.Errorf("flowkey: encoding the initial secret document: %w", err)
	}
	return string(b), nil
}
