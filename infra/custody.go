package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Key custody in KMS (issue 12; internal/custody): each rotation creates an
// RSA_2048 ENCRYPT_DECRYPT KMS key whose policy names the rotator and the
// decrypting roles, and the endpoint decrypts with kms:Decrypt.
//
// The stack grants it, and sets the rotator's CUSTODY_KEY_* variables,
// whenever someone could decrypt with such keys (the endpoint, or a role of
// custodyKeyDecryptRoleArns), whatever the custody setting says: the
// setting only seeds the secret's first version, set-config changes the
// custody later, and no deploy can see which custody the secret is in now.
// Granting by the setting would make a set-config to KMS fail its next
// rotation until a redeploy, and a redeploy with the setting left at its
// default would take the permissions from a secret whose keys are in KMS.
// The grants are unused in PEM custody; each is limited to keys tagged
// for this secret, so there they reach no key at all (infra/README.md,
// "Key custody in KMS").

// maxCustodyDecryptRoles bounds custodyKeyDecryptRoleArns: every role is in
// the rotator's environment (4 KB for all variables) and in every custody
// key's policy.
const maxCustodyDecryptRoles = 10

// roleARNRE is an IAM role ARN, a path allowed: the rule of
// CUSTODY_KEY_DECRYPT_ROLE_ARNS (internal/config).
var roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// inKMS tells whether the settings seed KMS custody.
func (c KeyCustody) inKMS() bool { return c.Mode == secretdoc.CustodyKMS }

// deletionDays is the waiting period the rotator gets.
func (c KeyCustody) deletionDays() int {
	if c.DeletionDays == 0 {
		return DefaultCustodyKeyDeletionDays
	}
	return c.DeletionDays
}

// custodyOn tells whether the stack grants KMS custody: whenever a role
// could decrypt with the keys. Without one, no key could be used, and the
// rotator's configuration requires a decrypting role with its own.
func (p *RotationStackProps) custodyOn() bool {
	return p.endpointOn() || len(p.Custody.DecryptRoleARNs) > 0
}

// validateCustody checks the custody settings.
func (p *RotationStackProps) validateCustody() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	c := p.Custody
	switch c.Mode {
	case "", secretdoc.CustodySecretsManager:
	case secretdoc.CustodyKMS:
		if !p.custodyOn() {
			bad(settingKeyCustody, fmt.Sprintf("is %q, but nothing could decrypt with the keys: the stack deploys no Flows endpoint and %s is empty", c.Mode, settingCustodyDecryptRoles.Context),
				"deploy the endpoint ("+settingEndpointBackendFunctionARN.Context+" or "+settingEndpointBackendURL.Context+", and "+settingAppSecretARN.Context+"), or list the role of your own endpoint in "+settingCustodyDecryptRoles.Context+
					", or leave it at "+secretdoc.CustodySecretsManager)
		}
	default:
		bad(settingKeyCustody, fmt.Sprintf("%q is not a key custody", clip(c.Mode)),
			fmt.Sprintf("write %q (the private key in the secret, the default) or %q (in a KMS key it never leaves)", secretdoc.CustodySecretsManager, secretdoc.CustodyKMS))
	}
	if c.DeletionDays != 0 && (c.DeletionDays < custody.MinDeletionDays || c.DeletionDays > custody.MaxDeletionDays) {
		bad(settingCustodyDeletionDays, fmt.Sprintf("%d is outside %d-%d, the waiting periods KMS allows", c.DeletionDays, custody.MinDeletionDays, custody.MaxDeletionDays),
			fmt.Sprintf("give a number of days from %d to %d; the default is %d", custody.MinDeletionDays, custody.MaxDeletionDays, DefaultCustodyKeyDeletionDays))
	}
	if len(c.DecryptRoleARNs) > maxCustodyDecryptRoles {
		bad(settingCustodyDecryptRoles, fmt.Sprintf("lists %d roles", len(c.DecryptRoleARNs)), fmt.Sprintf("list at most %d: each is in every custody key's policy", maxCustodyDecryptRoles))
	}
	seen := map[string]bool{}
	for i, r := range c.DecryptRoleARNs {
		switch {
		case !roleARNRE.MatchString(r):
			bad(settingCustodyDecryptRoles, fmt.Sprintf("[%d] %q is not an IAM role ARN", i, clip(r)),
				"list role ARNs like arn:aws:iam::111122223333:role/flows-endpoint, as `aws iam get-role --query Role.Arn` prints them (not a user, an assumed-role session or a name)")
		case seen[r]:
			bad(settingCustodyDecryptRoles, fmt.Sprintf("[%d] %q is listed twice", i, r), "list each role once")
		}
		seen[r] = true
	}
	return errs
}

// checkCustodyEnvironment reports decrypting roles outside the stack's
// account: the secret they would read from is readable only there (the
// key policy's kms:CallerAccount). account is "" when not known; then the
// roles must be in the token secret's account, which must be the stack's.
func (p *RotationStackProps) checkCustodyEnvironment(account string) []error {
	if account == "" {
		if token, ok := parseARN(p.AccessTokenSecretARN); ok {
			account = token.account
		}
	}
	var errs []error
	for i, r := range p.Custody.DecryptRoleARNs {
		a, ok := parseARN(r)
		if !ok || !roleARNRE.MatchString(r) || account == "" || a.account == account {
			continue // reported by Validate, or nothing to compare with
		}
		errs = append(errs, &settingError{settingCustodyDecryptRoles, fmt.Sprintf("[%d] is in account %s, not the stack's account %s", i, a.account, account),
			"list roles of the stack's account: only they can read the secret that names the keys"})
	}
	return errs
}

// custodyEnvironment is what the rotator's CUSTODY_KEY_* variables say.
type custodyEnvironment struct {
	rotatorRoleARN, decryptRoleARNs, deletionDays *string
}

// newCustodyEnvironment names the rotator's role and the decrypting roles
// when the stack grants KMS custody, and none otherwise. The endpoint's
// role is named by its Arn attribute, so that CloudFormation creates it
// before the rotator can put it in a key policy (KMS refuses a policy
// naming a role that does not exist).
func newCustodyEnvironment(props *RotationStackProps, rotatorRole, endpointRole awsiam.IRole) custodyEnvironment {
	env := custodyEnvironment{
		rotatorRoleARN: jsii.String(""), decryptRoleARNs: jsii.String(""),
		deletionDays: jsii.String(strconv.Itoa(props.Custody.deletionDays())),
	}
	if !props.custodyOn() {
		return env
	}
	env.rotatorRoleARN = rotatorRole.RoleArn()
	if endpointRole == nil {
		env.decryptRoleARNs = jsii.String(strings.Join(props.Custody.DecryptRoleARNs, ","))
		return env
	}
	roles := []*string{endpointRole.RoleArn()}
	for _, r := range props.Custody.DecryptRoleARNs {
		roles = append(roles, jsii.String(r))
	}
	env.decryptRoleARNs = awscdk.Fn_Join(jsii.String(","), &roles)
	return env
}

func (e custodyEnvironment) variables() map[string]*string {
	return map[string]*string{
		config.EnvCustodyKeyRotatorRoleARN:  e.rotatorRoleARN,
		config.EnvCustodyKeyDecryptRoleARNs: e.decryptRoleARNs,
		config.EnvCustodyKeyDeletionDays:    e.deletionDays,
	}
}

// custodyKeyARNs is key/* of the stack's account and region: custody keys
// exist only once a rotation creates them, so tags, not ARNs, say which.
func custodyKeyARNs(stack awscdk.Stack) *string {
	return stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("kms"), Resource: jsii.String("key"), ResourceName: jsii.String("*")})
}

// custodyAliasARNs matches every alias custody.AliasName makes,
// alias/flowkey/<16 hex of the secret ARN's hash>/<version>: the hash of a
// secret ARN with its random suffix is unknown at synthesis, so one ? per
// hex digit (narrower than alias/flowkey/*, which the stack key's alias
// alias/flowkey/<stack> would match).
func custodyAliasARNs(stack awscdk.Stack) *string {
	prefix := strings.TrimSuffix(strings.TrimPrefix(custody.AliasPrefix(""), "alias/"), "/")
	dir, hash, _ := strings.Cut(prefix, "/")
	return stack.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("kms"), Resource: jsii.String("alias"), ResourceName: jsii.String(dir + "/" + strings.Repeat("?", len(hash)) + "/*"),
	})
}

// Regexes of cdk-nag's rendering of those two resources, with a concrete
// or an environment-agnostic stack.
const (
	custodyKeysRegex    = `/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):kms:([a-z0-9-]+|<AWS::Region>):([0-9]{12}|<AWS::AccountId>):key\/\*$/g`
	custodyAliasesRegex = `/^Resource::arn:(aws[a-z-]*|<AWS::Partition>):kms:([a-z0-9-]+|<AWS::Region>):([0-9]{12}|<AWS::AccountId>):alias\/flowkey\/\?{16}\/\*$/g`
)

// secretScope is the secrets whose custody keys a grant reaches: the
// stack's, and with the fleet on the tenants' (their prefix pattern).
type secretScope struct {
	arn     *string
	tenants *string // nil with the fleet off
}

// conditions requires key (a tag or request tag naming the secret) to name
// a secret of the scope, besides the StringEquals of equals: StringEquals
// on the stack's secret alone, StringLike on it and the tenants' pattern
// with the fleet on (a secret name holds no wildcard character, so the
// stack's ARN still matches only itself).
func (s secretScope) conditions(key string, equals map[string]any) map[string]any {
	if equals == nil {
		equals = map[string]any{}
	}
	out := map[string]any{}
	if s.tenants == nil {
		equals[key] = s.arn
	} else {
		out["StringLike"] = map[string]any{key: []*string{s.arn, s.tenants}}
	}
	if len(equals) > 0 {
		out["StringEquals"] = equals
	}
	return out
}

// taggedForSecret limits a statement to keys tagged for a secret of the scope.
func (s secretScope) taggedForSecret() *map[string]any {
	c := s.conditions("aws:ResourceTag/"+custody.TagSecretARN, nil)
	return &c
}

// grantKeyCustody gives the rotator's role what internal/custody calls, in
// a policy of its own, which the function waits for. No kms:*, and no
// kms:PutKeyPolicy: the rotator cannot widen a key's policy once made.
func grantKeyCustody(stack awscdk.Stack, role awsiam.IRole, fn awslambda.Function, scope secretScope, fleetNames *fleetNames) awsiam.Policy {
	keys, aliases := custodyKeyARNs(stack), custodyAliasARNs(stack)
	tagKeys := map[string]any{"aws:TagKeys": jsii.Strings(custody.TagSecretARN, custody.TagRotationToken)}
	secretARN := scope.arn
	withTagKeys := func(c map[string]any) *map[string]any {
		c["ForAllValues:StringEquals"] = tagKeys
		return &c
	}
	statements := []*awsiam.PolicyStatementProps{
		{
			// CreateKey names no key: the request's tags, spec and usage
			// are what it can be limited by. IAM needs nothing for
			// BypassPolicyLockoutSafetyCheck: an Allow without a
			// kms:BypassPolicyLockoutSafetyCheck condition allows both
			// values (an SCP denying it stops KMS custody: README).
			Sid: jsii.String("CreateCustodyKeysForThisSecret"), Actions: jsii.Strings("kms:CreateKey"), Resources: jsii.Strings("*"),
			Conditions: withTagKeys(scope.conditions("aws:RequestTag/"+custody.TagSecretARN, map[string]any{"kms:KeySpec": "RSA_2048", "kms:KeyUsage": "ENCRYPT_DECRYPT"})),
		},
		{
			// CreateKey's Tags: KMS wants kms:TagResource on every key of
			// the account and region for tags at creation, hence key/*.
			Sid: jsii.String("TagCustodyKeysAtCreation"), Actions: jsii.Strings("kms:TagResource"), Resources: &[]*string{keys},
			Conditions: withTagKeys(scope.conditions("aws:RequestTag/"+custody.TagSecretARN, nil)),
		},
		{
			Sid: jsii.String("CreateCustodyKeyAliases"), Actions: jsii.Strings("kms:CreateAlias"), Resources: &[]*string{aliases},
		},
		{
			// The key side of CreateAlias (aliases carry no tags).
			Sid: jsii.String("AliasOnlyKeysOfThisSecret"), Actions: jsii.Strings("kms:CreateAlias"), Resources: &[]*string{keys},
			Conditions: scope.taggedForSecret(),
		},
		{
			Sid:        jsii.String("ManageKeysOfThisSecret"),
			Actions:    jsii.Strings("kms:DescribeKey", "kms:GetPublicKey", "kms:ListResourceTags", "kms:DisableKey", "kms:ScheduleKeyDeletion"),
			Resources:  &[]*string{keys},
			Conditions: scope.taggedForSecret(),
		},
		{
			// testSecret's proof.
			Sid: jsii.String("ProveDecryptionWithKeysOfThisSecret"), Actions: jsii.Strings("kms:Decrypt"), Resources: &[]*string{keys},
			Conditions: scope.decryptConditions(),
		},
		{
			// status and retirement list the aliases; the crash path of
			// createSecret lists the keys, then reads each one's tags
			// (ManageKeysOfThisSecret: other keys' tags stay unreadable).
			Sid: jsii.String("ListAliasesAndKeys"), Actions: jsii.Strings("kms:ListAliases", "kms:ListKeys"), Resources: jsii.Strings("*"),
		},
		{
			// The record written before CreateKey (flowkey:kms-key-creation);
			// no other tag key, and never a request without one.
			Sid: jsii.String("RecordKeyCreationOnTheSecret"), Actions: jsii.Strings("secretsmanager:TagResource"), Resources: &[]*string{secretARN},
			Conditions: &map[string]any{
				"ForAllValues:StringEquals": map[string]any{"aws:TagKeys": jsii.Strings(custody.SecretTagCreation)},
				"Null":                      map[string]any{"aws:TagKeys": "false"},
			},
		},
	}
	if fleetNames != nil {
		statements = append(statements, tenantRecordStatement(fleetNames, custody.SecretTagCreation))
	}
	statements = append(statements, neverTouchOtherKeys(keys)...)
	policy := awsiam.NewPolicy(stack, jsii.String("RotatorKeyCustodyPolicy"), &awsiam.PolicyProps{Roles: &[]awsiam.IRole{role}})
	for _, st := range statements {
		policy.AddStatements(awsiam.NewPolicyStatement(st))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(policy, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("KMS custody keys are created by rotations, so no key ARN exists at synthesis: key/* of this account and region is " +
			"the narrowest resource, and every statement on it requires aws:ResourceTag/" + custody.TagSecretARN + " = this secret (or, for tags " +
			"at creation, which KMS authorizes on every key, aws:RequestTag and the two tag keys). The alias pattern has one ? per hex digit of the " +
			"secret's alias prefix. kms:CreateKey, kms:ListAliases and kms:ListKeys support no resource-level permissions (Service Authorization " +
			"Reference), so Resource must be *; CreateKey is limited by the request's tags, key spec and key usage." + custodyFleetNagReason(fleetNames)),
		AppliesTo: custodyNagAppliesTo(fleetNames),
	}}, jsii.Bool(true))
	fn.Node().AddDependency(policy)
	return policy
}

// neverTouchOtherKeys are explicit denies that bound what a compromised
// rotator could do through TagResource: KMS authorizes tags at creation
// only with an IAM grant on every key, so the role could add this
// secret's tag to a key whose policy leaves access to IAM, and the
// tag-scoped statements would then reach it. The denies keep such a key
// out of reach unless it is an RSA_2048 ENCRYPT_DECRYPT key like the
// custody keys. Each applies only when KMS puts the key's spec or usage
// in the request context (Null false), so it can never deny a call on a
// custody key.
func neverTouchOtherKeys(keys *string) []*awsiam.PolicyStatementProps {
	actions := jsii.Strings("kms:TagResource", "kms:CreateAlias", "kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion")
	deny := func(sid, key, value string) *awsiam.PolicyStatementProps {
		return &awsiam.PolicyStatementProps{
			Sid: jsii.String(sid), Effect: awsiam.Effect_DENY, Actions: actions, Resources: &[]*string{keys},
			Conditions: &map[string]any{"StringNotEquals": map[string]any{key: value}, "Null": map[string]any{key: "false"}},
		}
	}
	return []*awsiam.PolicyStatementProps{
		deny("NeverTouchKeysOfAnotherSpec", "kms:KeySpec", "RSA_2048"),
		deny("NeverTouchKeysOfAnotherUsage", "kms:KeyUsage", "ENCRYPT_DECRYPT"),
	}
}

// decryptConditions are a Decrypt with a key tagged for a secret of the
// scope, with the one algorithm flowkey decrypts with.
func (s secretScope) decryptConditions() *map[string]any {
	c := s.conditions("aws:ResourceTag/"+custody.TagSecretARN, map[string]any{"kms:EncryptionAlgorithm": custody.EncryptionAlgorithm})
	return &c
}

// endpointCustodyStatement lets the endpoint decrypt with the secret's
// custody keys (the key ring's kms:Decrypt), and nothing else of KMS.
func endpointCustodyStatement(stack awscdk.Stack, scope secretScope) *awsiam.PolicyStatementProps {
	return &awsiam.PolicyStatementProps{
		Sid: jsii.String("DecryptWithCustodyKeysOfThisSecret"), Actions: jsii.Strings("kms:Decrypt"), Resources: &[]*string{custodyKeyARNs(stack)},
		Conditions: scope.decryptConditions(),
	}
}

// custodyNagAppliesTo are the custody policy's wildcard resources: *, the
// keys, the aliases and, with the fleet on, the tenants' prefix (the
// record written on a tenant's secret).
func custodyNagAppliesTo(fleet *fleetNames) *[]any {
	out := []any{"Resource::*", &cdknag.RegexAppliesTo{Regex: jsii.String(custodyKeysRegex)}, &cdknag.RegexAppliesTo{Regex: jsii.String(custodyAliasesRegex)}}
	if fleet != nil {
		out = append(out, fleet.nagRegexes()[0])
	}
	return &out
}

func custodyFleetNagReason(fleet *fleetNames) string {
	if fleet == nil {
		return ""
	}
	return " With the fleet on, the record tag goes on the tenants' secrets, under their name prefix (enrolled at run time) and tagged for this fleet."
}
