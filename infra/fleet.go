package main

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keypair"
)

// Fleet mode (issue 13; internal/fleet): the stack's rotator also rotates
// the secrets of tenants that the enroll command adds at run time, each
// named <secret prefix><tenant> and tagged flowkey:fleet = the stack name,
// and the endpoint serves them under /t/<tenant>. Off, the template is
// what it was before fleet mode existed: no variable, statement or
// resource below is added.
//
// IAM reaches the tenants by two limits together, never by "*" on
// secrets: the prefix ARN pattern (fleetNames.tenants, P) and the fleet
// tag. The one "*" is secretsmanager:ListSecrets, which has no
// resource-level permissions and returns metadata only.

// Fleet is fleet mode's settings. Zero is off. The prefixes and the window
// are "" when unset; the methods apply the defaults.
type Fleet struct {
	Enabled bool
	// SecretPrefix names the tenants' key secrets (fleet.DefaultSecretPrefix).
	SecretPrefix string
	// TokenPrefix is where a tenant's own Graph token secret must be
	// (fleet.DefaultTokenPrefix): the rotator may read those and no other.
	TokenPrefix string
	// AppSecretPrefix is where a tenant's own Meta app secret may be; ""
	// allows none (every tenant uses the endpoint's app secret).
	AppSecretPrefix string
	// RotationWindow is each tenant's window, whole hours from 1h to 12h
	// ("2h").
	RotationWindow string
}

// fleetStatusConcurrency is FLEET_STATUS_CONCURRENCY: the product's default,
// written out like the other defaults.
const fleetStatusConcurrency = config.DefaultFleetStatusConcurrency

// fleetPrefixRE is config's rule for FLEET_*_PREFIX: secret-name characters
// ending with "/", so that one tenant's name never starts another's.
var fleetPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_+=.@-][A-Za-z0-9/_+=.@-]{0,254}/$`)

func (f Fleet) secretPrefix() string { return or(f.SecretPrefix, fleet.DefaultSecretPrefix) }
func (f Fleet) tokenPrefix() string  { return or(f.TokenPrefix, fleet.DefaultTokenPrefix) }
func (f Fleet) window() string {
	return or(f.RotationWindow, strconv.Itoa(int(fleet.DefaultWindow/time.Hour))+"h")
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// windowDuration is the window; ok is false when it is not whole hours
// from 1h to fleet.MaxWindow.
func (f Fleet) windowDuration() (time.Duration, bool) {
	m := windowRE.FindStringSubmatch(f.window())
	if m == nil {
		return 0, false
	}
	h, err := strconv.Atoi(m[1])
	d := time.Duration(h) * time.Hour
	return d, err == nil && fleet.ValidWindow(d)
}

// validateFleet checks the fleet settings as the rotator's configuration
// will (internal/config), so that a bad value fails the synthesis, not the
// function's start.
func (p *RotationStackProps) validateFleet() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	f := p.Fleet
	values := []struct {
		s     setting
		value string
	}{{settingFleetSecretPrefix, f.SecretPrefix}, {settingFleetTokenPrefix, f.TokenPrefix}, {settingFleetAppSecretPrefix, f.AppSecretPrefix}, {settingFleetWindow, f.RotationWindow}}
	if !f.Enabled {
		for _, v := range values {
			if v.value != "" {
				bad(v.s, fmt.Sprintf("is set, but %s is not true", settingFleet.Context), "set "+settingFleet.Context+" to true for fleet mode, or unset "+v.s.Context)
			}
		}
		return errs
	}
	prefixes := map[setting]string{settingFleetSecretPrefix: f.secretPrefix(), settingFleetTokenPrefix: f.tokenPrefix(), settingFleetAppSecretPrefix: f.AppSecretPrefix}
	for _, v := range values[:3] {
		if v.value != "" && !fleetPrefixRE.MatchString(v.value) {
			bad(v.s, fmt.Sprintf("%q is not a prefix of secret names ending with \"/\"", clip(v.value)), "write it like "+strconv.Quote(fleet.DefaultSecretPrefix)+" (letters, digits and /_+=.@-), or unset it for the default")
		}
	}
	// One prefix inside another would let a tenant's configuration name
	// another tenant's key secret as its token or app secret.
	for _, s := range []setting{settingFleetTokenPrefix, settingFleetAppSecretPrefix} {
		if o, t := prefixes[s], prefixes[settingFleetSecretPrefix]; o != "" && (strings.HasPrefix(o, t) || strings.HasPrefix(t, o)) {
			bad(s, fmt.Sprintf("%q overlaps the tenants' secret prefix %q", clip(o), clip(t)), "give the key secrets, the token secrets and the app secrets prefixes that do not contain one another")
		}
	}
	if o := prefixes[settingFleetAppSecretPrefix]; o != "" && (strings.HasPrefix(o, f.tokenPrefix()) || strings.HasPrefix(f.tokenPrefix(), o)) {
		bad(settingFleetAppSecretPrefix, fmt.Sprintf("%q overlaps the token prefix %q", clip(o), clip(f.tokenPrefix())), "give the token secrets and the app secrets prefixes that do not contain one another")
	}
	if strings.HasPrefix(p.SecretName, f.secretPrefix()) {
		bad(settingSecretName, fmt.Sprintf("%q is under the tenants' prefix %q", clip(p.SecretName), f.secretPrefix()),
			"keep the stack's own secret outside the tenants' prefix (the default "+DefaultSecretName+" is), or choose another "+settingFleetSecretPrefix.Context)
	}
	if _, ok := f.windowDuration(); !ok {
		bad(settingFleetWindow, fmt.Sprintf("%q is not a whole number of hours from 1h to %dh", clip(f.window()), int(fleet.MaxWindow/time.Hour)),
			"write it like \"2h\": Secrets Manager's windows are whole hours inside one UTC day, and each tenant's must leave 13 start hours to spread over")
	}
	return errs
}

// fleetNames are the fleet's ARN patterns, nil with the fleet off.
type fleetNames struct {
	name string // the stack name: FLEET_NAME and the flowkey:fleet tag
	// tenants is P, <prefix>* of the stack's account and region (the
	// 6-character suffix included); tokens T and apps (nil when no app
	// prefix is set) likewise.
	tenants, tokens, apps *string
	// Their prefixes, for the cdk-nag suppressions.
	prefixes []string
}

func newFleetNames(stack awscdk.Stack, f Fleet) *fleetNames {
	if !f.Enabled {
		return nil
	}
	pattern := func(prefix string) *string {
		return stack.FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"),
			ResourceName: jsii.String(prefix + "*"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		})
	}
	n := &fleetNames{name: *stack.StackName(), tenants: pattern(f.secretPrefix()), tokens: pattern(f.tokenPrefix()),
		prefixes: []string{f.secretPrefix(), f.tokenPrefix()}}
	if f.AppSecretPrefix != "" {
		n.apps = pattern(f.AppSecretPrefix)
		n.prefixes = append(n.prefixes, f.AppSecretPrefix)
	}
	return n
}

// taggedForFleet is the condition that a secret carries the fleet's tag.
func (n *fleetNames) taggedForFleet() map[string]any {
	return map[string]any{"secretsmanager:ResourceTag/" + fleet.TagFleet: n.name}
}

// nagRegexes match how cdk-nag renders the fleet's patterns, with a
// concrete or an environment-agnostic stack.
func (n *fleetNames) nagRegexes() []any {
	var out []any
	for _, p := range n.prefixes {
		quoted := strings.ReplaceAll(regexp.QuoteMeta(p), "/", `\/`)
		out = append(out, &cdknag.RegexAppliesTo{Regex: jsii.String(
			`/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):secretsmanager:([a-z0-9-]+|<AWS::Region>):([0-9]{12}|<AWS::AccountId>):secret:` + quoted + `\*$/g`)})
	}
	return out
}

// fleetVariables are the rotator's fleet variables (config.FleetNames),
// none with the fleet off.
func fleetVariables(props *RotationStackProps, n *fleetNames, keyARN *string) map[string]*string {
	if n == nil {
		return nil
	}
	f := props.Fleet
	env := map[string]*string{
		config.EnvFleetName:              jsii.String(n.name),
		config.EnvFleetSecretPrefix:      jsii.String(f.secretPrefix()),
		config.EnvFleetTokenPrefix:       jsii.String(f.tokenPrefix()),
		config.EnvFleetKMSKeyID:          keyARN,
		config.EnvFleetRotationWindow:    jsii.String(f.window()),
		config.EnvFleetStatusConcurrency: jsii.String(strconv.Itoa(fleetStatusConcurrency)),
	}
	if f.AppSecretPrefix != "" {
		env[config.EnvFleetAppSecretPrefix] = jsii.String(f.AppSecretPrefix)
	}
	return env
}

// endpointFleetVariables are the endpoint's (config.EndpointFleetNames).
func endpointFleetVariables(props *RotationStackProps, n *fleetNames) map[string]*string {
	if n == nil {
		return nil
	}
	env := map[string]*string{
		config.EnvFleetName:         jsii.String(n.name),
		config.EnvFleetSecretPrefix: jsii.String(props.Fleet.secretPrefix()),
		config.EnvEndpointRingCache: jsii.String(strconv.Itoa(config.DefaultEndpointRingCache)),
	}
	if props.Fleet.AppSecretPrefix != "" {
		env[config.EnvFleetAppSecretPrefix] = jsii.String(props.Fleet.AppSecretPrefix)
	}
	return env
}

// grantFleet gives the rotator what enroll, unenroll, the fleet status and
// the tenants' rotations call, in a policy of its own: the function does
// not wait for it (no tenant exists at the first deploy), and the
// rotate command's policy already lets it invoke itself (the status
// continuation). Statement by statement:
//
//   - CreateSecret and TagResource (tags at creation need both) only with
//     the fleet's tag in the request and no tag keys but the three enroll
//     and unenroll send; IfExists on the resource's tag, which a secret
//     being created does not have yet, keeps them off another fleet's.
//   - The rotation and the commands on secrets tagged for this fleet.
//   - DescribeSecret with IfExists: enroll and the endpoint describe a
//     tenant before it exists and must get ResourceNotFoundException, not
//     AccessDeniedException (a secret that does not exist has no tag);
//     DescribeSecret returns metadata, never a value.
//   - ListSecrets on "*": it has no resource-level permissions.
//   - The token secrets under their prefix, read only.
//   - The stack key, through Secrets Manager, for tenant secrets (and the
//     token secrets, which may use it), and GenerateDataKeyPair for them.
func grantFleet(stack awscdk.Stack, role awsiam.IRole, n *fleetNames, keyARN, viaSecretsManager *string) awsiam.Policy {
	tenants := &[]*string{n.tenants}
	statements := []*awsiam.PolicyStatementProps{
		{
			Sid: jsii.String("CreateAndTagTenantSecretsOfThisFleet"), Actions: jsii.Strings("secretsmanager:CreateSecret", "secretsmanager:TagResource"), Resources: tenants,
			Conditions: &map[string]any{
				"StringEquals":              map[string]any{"aws:RequestTag/" + fleet.TagFleet: n.name},
				"StringEqualsIfExists":      n.taggedForFleet(),
				"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": jsii.Strings(fleet.TagFleet, fleet.TagTenant, fleet.TagEnrolled)},
			},
		},
		{
			Sid: jsii.String("RotateTenantSecretsOfThisFleet"),
			Actions: jsii.Strings("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
				"secretsmanager:RotateSecret", "secretsmanager:CancelRotateSecret"),
			Resources: tenants, Conditions: &map[string]any{"StringEquals": n.taggedForFleet()},
		},
		{
			Sid: jsii.String("DescribeTenantSecrets"), Actions: jsii.Strings("secretsmanager:DescribeSecret"), Resources: tenants,
			Conditions: &map[string]any{"StringEqualsIfExists": n.taggedForFleet()},
		},
		{
			// ListSecrets supports no resource-level permissions (Service
			// Authorization Reference), so Resource must be *; it returns
			// names, tags and rotation settings, never a value.
			Sid: jsii.String("ListTheFleet"), Actions: jsii.Strings("secretsmanager:ListSecrets"), Resources: jsii.Strings("*"),
		},
		{
			Sid: jsii.String("ReadTenantGraphTokens"), Actions: jsii.Strings("secretsmanager:GetSecretValue"), Resources: &[]*string{n.tokens},
		},
		{
			Sid: jsii.String("UseKeyThroughSecretsManagerForTenants"), Actions: jsii.Strings("kms:Decrypt", "kms:GenerateDataKey"), Resources: &[]*string{keyARN},
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:ViaService": viaSecretsManager},
				"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": n.tenants},
			},
		},
		{
			Sid: jsii.String("DecryptTenantGraphTokensThroughSecretsManager"), Actions: jsii.Strings("kms:Decrypt"), Resources: &[]*string{keyARN},
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:ViaService": viaSecretsManager},
				"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": n.tokens},
			},
		},
		{
			Sid: jsii.String("GenerateKeyPairsForTenants"), Actions: jsii.Strings("kms:GenerateDataKeyPair"), Resources: &[]*string{keyARN},
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:DataKeyPairSpec": "RSA_2048"},
				"StringLike":   map[string]any{"kms:EncryptionContext:" + keypair.EncryptionContextKey: n.tenants},
			},
		},
	}
	policy := awsiam.NewPolicy(stack, jsii.String("RotatorFleetPolicy"), &awsiam.PolicyProps{Roles: &[]awsiam.IRole{role}})
	for _, st := range statements {
		policy.AddStatements(awsiam.NewPolicyStatement(st))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Tenants are enrolled at run time, so no tenant secret's ARN exists at synthesis: the tenants' and the token secrets' " +
			"name prefixes (<prefix>*) are the narrowest resources, and every statement on the tenants' secrets also requires " +
			"secretsmanager:ResourceTag/" + fleet.TagFleet + " = this stack (or, to create and tag them, aws:RequestTag and the fleet's tag keys). " +
			"secretsmanager:ListSecrets supports no resource-level permissions (Service Authorization Reference), so Resource must be *; it returns " +
			"metadata, never a secret value."),
		AppliesTo: func() *[]any { a := append([]any{"Resource::*"}, n.nagRegexes()...); return &a }(),
	}}, jsii.Bool(true))
	return policy
}

// allowSecretsManagerForTenants lets Secrets Manager invoke fn for the
// tenants' secrets of this account: SourceArn is the prefix pattern, which
// Lambda matches with ArnLike.
func allowSecretsManagerForTenants(stack awscdk.Stack, fn awslambda.Function, n *fleetNames) {
	awslambda.NewCfnPermission(stack, jsii.String("SecretsManagerInvokesRotatorForTenants"), &awslambda.CfnPermissionProps{
		Action:        jsii.String("lambda:InvokeFunction"),
		FunctionName:  fn.FunctionArn(),
		Principal:     jsii.String("secretsmanager.amazonaws.com"),
		SourceAccount: stack.Account(),
		SourceArn:     n.tenants,
	})
}

// endpointFleetStatements let the endpoint read the tenants' key secrets
// (DescribeSecret with IfExists, as for the rotator: an unknown tenant is
// a 404, not an access error), their own app secrets if a prefix allows
// them, and decrypt the key secrets through Secrets Manager.
func endpointFleetStatements(n *fleetNames, keyARN, viaSecretsManager *string) []*awsiam.PolicyStatementProps {
	tenants := &[]*string{n.tenants}
	statements := []*awsiam.PolicyStatementProps{
		{
			Sid: jsii.String("DescribeTenantKeySecrets"), Actions: jsii.Strings("secretsmanager:DescribeSecret"), Resources: tenants,
			Conditions: &map[string]any{"StringEqualsIfExists": n.taggedForFleet()},
		},
		{
			Sid: jsii.String("ReadTenantKeySecrets"), Actions: jsii.Strings("secretsmanager:GetSecretValue"), Resources: tenants,
			Conditions: &map[string]any{"StringEquals": n.taggedForFleet()},
		},
		{
			Sid: jsii.String("DecryptTenantKeySecretsThroughSecretsManager"), Actions: jsii.Strings("kms:Decrypt"), Resources: &[]*string{keyARN},
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"kms:ViaService": viaSecretsManager},
				"StringLike":   map[string]any{"kms:EncryptionContext:SecretARN": n.tenants},
			},
		},
	}
	if n.apps != nil {
		statements = append(statements, &awsiam.PolicyStatementProps{
			Sid: jsii.String("ReadTenantAppSecrets"), Actions: jsii.Strings("secretsmanager:GetSecretValue"), Resources: &[]*string{n.apps},
		})
	}
	return statements
}

// tenantRecordStatement lets KMS custody write its record
// (flowkey:kms-key-creation) on the fleet's tenant secrets, as
// RecordKeyCreationOnTheSecret does on the stack's.
func tenantRecordStatement(n *fleetNames, tagKey string) *awsiam.PolicyStatementProps {
	return &awsiam.PolicyStatementProps{
		Sid: jsii.String("RecordKeyCreationOnTenantSecrets"), Actions: jsii.Strings("secretsmanager:TagResource"), Resources: &[]*string{n.tenants},
		Conditions: &map[string]any{
			"StringEquals":              n.taggedForFleet(),
			"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": jsii.Strings(tagKey)},
			"Null":                      map[string]any{"aws:TagKeys": "false"},
		},
	}
}

// fleetOverdueDays is the overdue alarm's threshold with the fleet on:
// fleet.OverdueAfter of the tenants' window, in days rounded up to a
// thousandth, or the stack secret's own if that is longer.
func fleetOverdueDays(props *RotationStackProps, own float64) float64 {
	w, ok := props.Fleet.windowDuration()
	if !props.Fleet.Enabled || !ok {
		return own
	}
	return math.Max(own, math.Ceil(fleet.OverdueAfter(w).Hours()/24*1000)/1000)
}
