package main

import (
	"errors"
	"fmt"
)

// Checks that need the stack: its name (the role names) and the account
// and region it deploys to. Synthesis knows the account and region when
// the CDK CLI resolved credentials (cdk deploy always does), or when the
// props pin them; an environment-agnostic synthesis (make synth without
// credentials) can only check that the ARNs agree with each other.

// maxRegionLength is the longest region name ("ap-southeast-4"), for role
// names whose region is not known at synthesis.
const maxRegionLength = 14

// Suffixes of the role names: <prefix><stack>-<role>-<region>. The region
// keeps two stacks of one name in two regions of an account apart (IAM is
// global); the name is what a key policy can name before the first deploy.
const (
	rotatorRoleSuffix  = "-rotator-"
	seedRoleSuffix     = "-seed-"
	endpointRoleSuffix = "-endpoint-"
)

func roleName(prefix, stackName, suffix, region string) string {
	return prefix + stackName + suffix + region
}

// checkEnvironment reports, all at once, the ARNs that point outside the
// stack's account or region where flowkey cannot use them, and role names
// IAM would reject. region and account are "" when not known.
func (p *RotationStackProps) checkEnvironment(stackName, region, account string) error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }

	type bound struct {
		s       setting
		value   string
		account bool // must be in the stack's account too
		fix     string
	}
	bounds := []bound{
		{settingTokenSecretARN, p.AccessTokenSecretARN, true,
			"the rotator's Secrets Manager client is regional, so this would fail only at the first rotation: replicate the token secret into the stack's region (aws secretsmanager replicate-secret-to-regions) and give the replica's ARN, or create it in the stack's account and region"},
		{settingExistingSecretARN, p.ExistingSecretARN, true, "a rotation function rotates secrets of its own account and region: deploy the stack where the secret is"},
		{settingExistingKeyARN, p.ExistingKeyARN, true, "deploy the stack in the key's account and region"},
		{settingAlertTopicARN, p.AlertTopicARN, false, "CloudWatch alarms publish to topics of their own region: give a topic in the stack's region"},
		{settingLogKeyARN, p.LogKeyARN, false, "CloudWatch Logs encrypts with keys of its own region: give a key in the stack's region"},
		{settingAppSecretARN, p.Endpoint.AppSecretARN, true,
			"the endpoint's Secrets Manager client is regional, so every request would fail: replicate the app secret into the stack's region and give the replica's ARN, or create it in the stack's account and region"},
		{settingAppSecretKeyARN, p.Endpoint.AppSecretKeyARN, true, "a secret's KMS key is in its account and region: give the app secret's key, in the stack's account and region"},
		// Another account is fine: the backend's resource policy then admits
		// the endpoint's role (the EndpointRoleArn output).
		{settingEndpointBackendFunctionARN, p.Endpoint.BackendFunctionARN, false,
			"the endpoint invokes its backend through the Lambda API of its own region: deploy the backend function in the stack's region"},
	}
	var first *bound
	var firstARN arn
	for i := range bounds {
		b := &bounds[i]
		a, ok := parseARN(b.value)
		if b.value == "" || !ok {
			continue // unset, or already reported by Validate
		}
		switch {
		case region != "" && a.region != region:
			bad(b.s, fmt.Sprintf("is in region %s, not the stack's region %s", a.region, region), b.fix)
		case b.account && account != "" && a.account != account:
			bad(b.s, fmt.Sprintf("is in account %s, not the stack's account %s", a.account, account), b.fix)
		case region == "" && first != nil && a.region != firstARN.region:
			bad(b.s, fmt.Sprintf("is in region %s, but %s is in %s: both must be in the stack's region", a.region, first.s, firstARN.region), b.fix)
		}
		if first == nil {
			first, firstARN = b, a
		}
	}

	r := len(region)
	if region == "" {
		r = maxRegionLength
	}
	// The longest role name of the stack: the endpoint's suffix is longer
	// than the rotator's.
	role, suffix := "rotator", rotatorRoleSuffix
	if p.endpointOn() {
		role, suffix = "endpoint", endpointRoleSuffix
	}
	if n := len(roleName(p.RoleNamePrefix, stackName, suffix, "")) + r; n > 64 {
		bad(settingRoleNamePrefix, fmt.Sprintf("the %s's role name %s<region> would have %d characters, IAM allows 64", role, roleName(p.RoleNamePrefix, stackName, suffix, ""), n),
			"shorten the prefix or the stack name ("+settingStackName.Context+")")
	}
	errs = append(errs, p.checkCustodyEnvironment(account)...)
	return errors.Join(errs...)
}
