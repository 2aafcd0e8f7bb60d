package main

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Immutable patterns; regexp.Regexp is safe for concurrent use.
var (
	stackNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,99}$`)
	secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	// A complete secret ARN ends in "-" and the 6 characters Secrets
	// Manager appends; IAM needs that exact ARN (or a wildcard) to match.
	secretARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`)
	// A key ARN, not an alias: IAM and key policies match key ARNs only.
	keyARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	// A standard topic: CloudWatch alarms cannot publish to FIFO topics.
	topicARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`)
	policyARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/([!-~]+/)?[A-Za-z0-9+=,.@_-]{1,128}$`)
	rolePrefixRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]*$`)
	subnetIDRE   = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	sgIDRE       = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	vpcIDRE      = regexp.MustCompile(`^vpc-([0-9a-f]{8}|[0-9a-f]{17})$`)
	tagKeyRE     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValueRE   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)
	windowRE     = regexp.MustCompile(`^([0-9]+)h$`)
	emailRE      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	// A function's ARN, unqualified or with a version or alias: IAM
	// matches the ARN that Invoke names.
	functionARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?$`)
)

// logRetentions are the retentions CloudWatch Logs accepts, in days.
var logRetentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// Validate reports every invalid setting at once. It never changes p.
func (p *RotationStackProps) Validate() error {
	if p == nil {
		return errors.New("flowkey: RotationStackProps is nil; fix: pass the settings read by propsFromSettings")
	}
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }

	if !secretNameRE.MatchString(p.SecretName) {
		bad(settingSecretName, fmt.Sprintf("%q is not a Secrets Manager secret name", clip(p.SecretName)), "use 1-512 letters, digits and /_+=.@-, e.g. "+DefaultSecretName)
	} else if hasSuffixLikeARN(p.SecretName) {
		// Secrets Manager appends -XXXXXX itself; a name that already ends
		// like that makes partial-ARN lookups ambiguous.
		bad(settingSecretName, fmt.Sprintf("%q ends in a hyphen and six characters, like the suffix Secrets Manager appends", p.SecretName), "choose a name that does not end in -XXXXXX")
	}

	switch {
	case len(p.PhoneNumberIDs) == 0 && p.WABAID == "":
		bad(settingPhoneNumberIDs, fmt.Sprintf("neither it nor %s is set", settingWABAID), "set the phone number IDs (comma-separated) or the WhatsApp Business Account ID")
	case len(p.PhoneNumberIDs) > 0 && p.WABAID != "":
		bad(settingPhoneNumberIDs, fmt.Sprintf("is set together with %s", settingWABAID), "set only one: the phone number IDs, or the WABA ID whose numbers are listed at each rotation")
	default:
		// The rotator applies the same rules to the document it reads.
		ids := secretdoc.Config{PhoneNumberIDs: p.PhoneNumberIDs, WABAID: p.WABAID}
		s := settingPhoneNumberIDs
		if p.WABAID != "" {
			s = settingWABAID
		}
		errs = append(errs, prefixed(s, ids.Validate())...)
	}

	errs = append(errs, p.validateToken()...)

	if err := graph.ValidateVersion(p.GraphAPIVersion); err != nil {
		bad(settingGraphVersion, fmt.Sprintf("%q is not a Graph API version", clip(p.GraphAPIVersion)), `use a live version like "`+graph.DefaultVersion+`"`)
	}

	rateHours, err := scheduleHours(p.Schedule)
	if err != nil {
		bad(settingSchedule, err.Error(), `use "rate(N days)" (1-1000), "rate(N hours)" (at least 4) or a six-field "cron(0 ...)" whose minutes field is 0`)
	}
	if m := windowRE.FindStringSubmatch(p.RotationWindow); m == nil {
		bad(settingWindow, fmt.Sprintf("%q is not a number of hours like \"2h\"", clip(p.RotationWindow)), "use 1h to 24h")
	} else if h, _ := strconv.Atoi(m[1]); h < 1 || h > 24 {
		bad(settingWindow, fmt.Sprintf("%q is outside 1h-24h", p.RotationWindow), "use 1h to 24h")
	} else if rateHours > 0 && h >= rateHours {
		bad(settingWindow, fmt.Sprintf("%q is not shorter than the %d-hour schedule", p.RotationWindow, rateHours), "use a window shorter than the rotation interval")
	}

	if err := checkStatusSchedule(p.StatusSchedule); err != nil {
		bad(settingStatusSchedule, err.Error(), `use "rate(N hours)" or "rate(N days)" (at most 6), a six-field "cron(M ...)" whose minutes field is one number, or "off"; the default is "`+DefaultStatusSchedule+`"`)
	}

	errs = append(errs, p.validateAlerts()...)

	if p.CodePath == "" {
		bad(settingCodePath, "is empty", "leave it unset for "+DefaultCodePath)
	} else if fi, err := os.Stat(filepath.Join(p.CodePath, "bootstrap")); err != nil || !fi.Mode().IsRegular() {
		bad(settingCodePath, fmt.Sprintf("%q holds no bootstrap file", p.CodePath), "run `make build-arm64` in the repository root first")
	}

	errs = append(errs, p.validateAdoption()...)
	errs = append(errs, p.validatePlatform()...)
	errs = append(errs, p.Network.validate()...)
	errs = append(errs, p.Endpoint.validate()...)
	errs = append(errs, p.validateCustody()...)
	errs = append(errs, p.validateFleet()...)
	return errors.Join(errs...)
}

// validateToken checks the token secret's ARN and its KMS key.
func (p *RotationStackProps) validateToken() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	switch {
	case p.AccessTokenSecretARN == "":
		bad(settingTokenSecretARN, "is not set", "create a secret holding the Graph system user token and give its complete ARN")
	case !secretARNRE.MatchString(p.AccessTokenSecretARN):
		// The value is not quoted: someone may have pasted the token itself.
		bad(settingTokenSecretARN, "is not a complete Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)", "give the ARN of the secret, not the token, including the 6-character suffix, as `aws secretsmanager describe-secret --query ARN` prints it")
	}
	if p.AccessTokenSecretKeyARN != "" {
		if problem := keyARNProblem(p.AccessTokenSecretKeyARN); problem != "" {
			bad(settingTokenKeyARN, problem, "give the ARN of the KMS key that encrypts the token secret, as `aws secretsmanager describe-secret --query KmsKeyId` prints it; leave it unset for aws/secretsmanager")
		} else if token, ok := parseARN(p.AccessTokenSecretARN); ok && secretARNRE.MatchString(p.AccessTokenSecretARN) {
			if key, _ := parseARN(p.AccessTokenSecretKeyARN); key.region != token.region || key.account != token.account {
				bad(settingTokenKeyARN, fmt.Sprintf("is in %s/%s but the token secret is in %s/%s", key.account, key.region, token.account, token.region),
					"a secret's KMS key is in its account and region: give the key that describe-secret reports for the token secret")
			}
		}
	}
	return errs
}

// validateAlerts checks where the alerts go.
func (p *RotationStackProps) validateAlerts() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	if p.AlertEmail != "" && !emailRE.MatchString(p.AlertEmail) {
		bad(settingAlertEmail, fmt.Sprintf("%q is not an e-mail address", clip(p.AlertEmail)), "give one address like ops@example.com, or leave it unset")
	}
	if p.AlertTopicARN != "" {
		if !topicARNRE.MatchString(p.AlertTopicARN) {
			bad(settingAlertTopicARN, fmt.Sprintf("%q is not the ARN of a standard SNS topic", clip(p.AlertTopicARN)), "give arn:aws:sns:<region>:<account>:<topic> of a standard (not FIFO) topic, or leave it unset for a topic of the stack's own")
		}
		if p.AlertEmail != "" {
			bad(settingAlertEmail, fmt.Sprintf("is set together with %s", settingAlertTopicARN), "subscribe the address on the existing topic's side, and leave this unset")
		}
	}
	return errs
}

// validateAdoption checks the settings that adopt a retained secret and
// key, and the names of secrets retained by a rename.
func (p *RotationStackProps) validateAdoption() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	if p.ExistingSecretARN != "" {
		if !secretARNRE.MatchString(p.ExistingSecretARN) {
			bad(settingExistingSecretARN, fmt.Sprintf("%q is not a complete Secrets Manager secret ARN", clip(p.ExistingSecretARN)), "give the ARN with its 6-character suffix, as `aws secretsmanager describe-secret --query ARN` prints it")
		} else if name, _ := secretNameOfARN(p.ExistingSecretARN); name != p.SecretName {
			bad(settingSecretName, fmt.Sprintf("%q is not %q, the name of the adopted secret %s", clip(p.SecretName), name, p.ExistingSecretARN),
				"leave "+settingSecretName.Context+" unset when adopting a secret, or give that secret's name")
		}
		if p.ExistingKeyARN == "" {
			bad(settingExistingKeyARN, fmt.Sprintf("is not set, but %s is", settingExistingSecretARN),
				"give the KMS key that encrypts the adopted secret (`aws secretsmanager describe-secret --query KmsKeyId`): the rotator generates its key pairs with it")
		}
	}
	if p.ExistingKeyARN != "" {
		if problem := keyARNProblem(p.ExistingKeyARN); problem != "" {
			bad(settingExistingKeyARN, problem, "give the ARN of the key the earlier stack created (its KeyArn output)")
		}
	}
	seen := map[string]bool{p.SecretName: true}
	for i, name := range p.RetainedSecretNames {
		switch {
		case !secretNameRE.MatchString(name) || hasSuffixLikeARN(name):
			bad(settingRetainedSecretNames, fmt.Sprintf("[%d] %q is not a secret name", i, clip(name)), "list the names (not ARNs) the secret had before, e.g. "+DefaultSecretName)
		case seen[name]:
			bad(settingRetainedSecretNames, fmt.Sprintf("[%d] %q is the secret's name or listed twice", i, name), "list each earlier name once, never the current one")
		}
		seen[name] = true
	}
	return errs
}

// validatePlatform checks the settings platform teams require: tags,
// permissions boundary, role names, logs.
func (p *RotationStackProps) validatePlatform() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	if len(p.Tags) > 40 {
		bad(settingTags, fmt.Sprintf("has %d tags", len(p.Tags)), "give at most 40: AWS allows 50 per resource and services add their own")
	}
	for _, k := range slices.Sorted(maps.Keys(p.Tags)) {
		switch {
		case !tagKeyRE.MatchString(k):
			bad(settingTags, fmt.Sprintf("key %q is not a tag key", clip(k)), "use 1-128 letters, digits, spaces and _.:/=+-@")
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			bad(settingTags, fmt.Sprintf("key %q starts with aws:, which AWS reserves", clip(k)), "choose another key")
		case !tagValueRE.MatchString(p.Tags[k]):
			bad(settingTags, fmt.Sprintf("the value of %q is not a tag value", clip(k)), "use at most 256 letters, digits, spaces and _.:/=+-@")
		}
	}
	if p.PermissionsBoundaryARN != "" && !policyARNRE.MatchString(p.PermissionsBoundaryARN) {
		bad(settingPermissionsBoundary, fmt.Sprintf("%q is not the ARN of a managed policy", clip(p.PermissionsBoundaryARN)), "give arn:aws:iam::<account>:policy/<name>, as `aws iam list-policies` prints it")
	}
	if !rolePrefixRE.MatchString(p.RoleNamePrefix) {
		bad(settingRoleNamePrefix, fmt.Sprintf("%q has characters IAM does not allow in role names", clip(p.RoleNamePrefix)), "use letters, digits and +=,.@_-")
	}
	if _, ok := logRetentions[p.LogRetentionDays]; !ok {
		days := slices.Sorted(maps.Keys(logRetentions))
		bad(settingLogRetention, fmt.Sprintf("%d is not a retention CloudWatch Logs offers", p.LogRetentionDays),
			fmt.Sprintf("use one of %v; the default is %d", days, DefaultLogRetentionDays))
	}
	if p.LogKeyARN != "" {
		if problem := keyARNProblem(p.LogKeyARN); problem != "" {
			bad(settingLogKeyARN, problem, "give the ARN of a symmetric KMS key whose policy lets logs.<region>.amazonaws.com use it (README, Settings)")
		}
	}
	return errs
}

// validate checks the VPC placement.
func (n Network) validate() []error {
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	ids := func(s setting, values []string, re *regexp.Regexp, max int, example string) {
		if len(values) > max {
			bad(s, fmt.Sprintf("lists %d, Lambda takes at most %d", len(values), max), fmt.Sprintf("list at most %d", max))
		}
		seen := map[string]bool{}
		for i, v := range values {
			switch {
			case !re.MatchString(v):
				bad(s, fmt.Sprintf("[%d] %q is not an ID like %s", i, clip(v), example), "copy the IDs from the VPC console or `aws ec2 describe-subnets`/`describe-security-groups`")
			case seen[v]:
				bad(s, fmt.Sprintf("[%d] %q is listed twice", i, v), "list each once")
			}
			seen[v] = true
		}
	}
	ids(settingSubnetIDs, n.SubnetIDs, subnetIDRE, 16, "subnet-0123456789abcdef0")
	ids(settingSecurityGroupIDs, n.SecurityGroupIDs, sgIDRE, 5, "sg-0123456789abcdef0")
	switch {
	case len(n.SubnetIDs) == 0 && len(n.SecurityGroupIDs) > 0:
		bad(settingSubnetIDs, fmt.Sprintf("is not set, but %s is", settingSecurityGroupIDs), "give the private subnets the functions run in, or neither")
	case len(n.SubnetIDs) > 0 && len(n.SecurityGroupIDs) == 0:
		bad(settingSecurityGroupIDs, fmt.Sprintf("is not set, but %s is", settingSubnetIDs), "give the security groups of the functions (egress 443 to the endpoints and, through the NAT, to graph.facebook.com)")
	}
	if n.VPCID != "" && !vpcIDRE.MatchString(n.VPCID) {
		bad(settingVPCID, fmt.Sprintf("%q is not an ID like vpc-0123456789abcdef0", clip(n.VPCID)), "copy it from the VPC console")
	}
	if n.CreateEndpoints {
		if n.VPCID == "" {
			bad(settingVPCID, fmt.Sprintf("is not set, but %s is true", settingVPCEndpoints), "give the VPC of the subnets: the endpoints and their security group are created in it")
		}
		if len(n.SubnetIDs) == 0 {
			bad(settingVPCEndpoints, fmt.Sprintf("is true, but %s is not set", settingSubnetIDs), "give the subnets, or leave the endpoints off")
		}
	} else if n.VPCID != "" && len(n.SubnetIDs) == 0 {
		bad(settingVPCID, fmt.Sprintf("is set, but %s is not", settingSubnetIDs), "give the subnets the functions run in, or leave the VPC unset")
	}
	return errs
}

// validate checks the Flows endpoint's settings: none (no endpoint), or a
// complete set, exactly one backend and the app secret.
func (e FlowsEndpoint) validate() []error {
	if !e.requested() {
		return nil
	}
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }
	// The setting that asked for the endpoint, for the errors of the others.
	asker := settingAppSecretARN
	for _, s := range []struct {
		setting
		value string
	}{{settingEndpointBackendFunctionARN, e.BackendFunctionARN}, {settingEndpointBackendURL, e.BackendURL}, {settingAppSecretARN, e.AppSecretARN}, {settingAppSecretKeyARN, e.AppSecretKeyARN}} {
		if s.value != "" {
			asker = s.setting
			break
		}
	}
	const noEndpoint = "; or unset the endpoint's settings to deploy without it"

	switch {
	case e.BackendFunctionARN == "" && e.BackendURL == "":
		bad(settingEndpointBackendFunctionARN, fmt.Sprintf("is not set and neither is %s, but %s is: the endpoint needs a backend", settingEndpointBackendURL, asker.Context),
			"give the ARN of the Lambda function that answers your Flow's INIT, BACK and data_exchange, or the https:// URL of your backend in "+settingEndpointBackendURL.Context+noEndpoint)
	case e.BackendFunctionARN != "" && e.BackendURL != "":
		bad(settingEndpointBackendURL, fmt.Sprintf("is set together with %s", settingEndpointBackendFunctionARN),
			"keep the one backend the endpoint should call: a Lambda function, or an HTTPS URL")
	case e.BackendFunctionARN != "" && !functionARNRE.MatchString(e.BackendFunctionARN):
		bad(settingEndpointBackendFunctionARN, fmt.Sprintf("%q is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>[:<alias or version>])", clip(e.BackendFunctionARN)),
			"give the ARN that `aws lambda get-function --function-name <name> --query Configuration.FunctionArn` prints: the endpoint may invoke that function and nothing else")
	case e.BackendURL != "":
		// The URL is not quoted: it may carry a credential in its query.
		if problem := backendURLProblem(e.BackendURL); problem != "" {
			bad(settingEndpointBackendURL, problem, "give the https:// URL of your backend, like https://flows.example.com/endpoint, with no credential in it: each call carries X-Flowkey-Signature-256 (functions/endpoint/README.md)")
		}
	}

	switch {
	case e.AppSecretARN == "":
		bad(settingAppSecretARN, fmt.Sprintf("is not set, but %s is: the endpoint checks Meta's X-Hub-Signature-256 with the app secret", asker.Context),
			"store the Meta app secret in Secrets Manager (bare, or {\"app_secret\":\"...\"}) and give the complete ARN that create-secret prints"+noEndpoint)
	case !secretARNRE.MatchString(e.AppSecretARN):
		// Not quoted either: someone may have pasted the app secret itself.
		bad(settingAppSecretARN, "is not a complete Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)",
			"give the ARN of the secret, not the app secret, including the 6-character suffix, as `aws secretsmanager describe-secret --query ARN` prints it")
	}
	if e.AppSecretKeyARN != "" {
		if problem := keyARNProblem(e.AppSecretKeyARN); problem != "" {
			bad(settingAppSecretKeyARN, problem, "give the ARN of the KMS key that encrypts the app secret, as `aws secretsmanager describe-secret --query KmsKeyId` prints it; leave it unset for aws/secretsmanager")
		} else if app, ok := parseARN(e.AppSecretARN); ok && secretARNRE.MatchString(e.AppSecretARN) {
			if key, _ := parseARN(e.AppSecretKeyARN); key.region != app.region || key.account != app.account {
				bad(settingAppSecretKeyARN, fmt.Sprintf("is in %s/%s but the app secret is in %s/%s", key.account, key.region, app.account, app.region),
					"a secret's KMS key is in its account and region: give the key that describe-secret reports for the app secret")
			}
		}
	}

	if e.CodePath == "" {
		bad(settingEndpointCodePath, "is empty", "leave it unset for "+DefaultEndpointCodePath)
	} else if fi, err := os.Stat(filepath.Join(e.CodePath, "bootstrap")); err != nil || !fi.Mode().IsRegular() {
		bad(settingEndpointCodePath, fmt.Sprintf("%q holds no bootstrap file", e.CodePath), "run `make build-arm64` in the repository root first")
	}
	return errs
}

// backendURLProblem says why a value is not a backend URL the deployed
// endpoint may call, or "". Stricter than the endpoint's own rule
// (internal/config), which also allows http:// to loopback for the local
// stack: a deployed endpoint has no loopback backend.
func backendURLProblem(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return "is not an absolute URL with a scheme and a host"
	case u.Scheme != "https":
		return fmt.Sprintf("has scheme %q, not https: the users' Flows data would leave in clear text", clip(u.Scheme))
	case u.User != nil:
		return "contains user info (user@ or user:password@)"
	case u.Fragment != "":
		return "has a fragment (#...)"
	}
	return ""
}

// prefixed names the setting in front of each error of a (joined) error;
// the errors carry their own fix.
func prefixed(s setting, err error) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		out = append(out, fmt.Errorf("%s: %w", s, e))
	}
	return out
}

// hasSuffixLikeARN tells whether a secret name ends like the -XXXXXX that
// Secrets Manager appends.
func hasSuffixLikeARN(name string) bool { return len(name) > 7 && name[len(name)-7] == '-' }

// keyARNProblem says why a value is not a KMS key ARN, or "".
func keyARNProblem(v string) string {
	switch {
	case keyARNRE.MatchString(v):
		return ""
	case strings.Contains(v, ":alias/") || strings.HasPrefix(v, "alias/"):
		return fmt.Sprintf("%q is an alias; IAM and key policies match key ARNs only", clip(v))
	}
	return fmt.Sprintf("%q is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)", clip(v))
}

// arn is the parts of an ARN that the environment checks compare.
type arn struct{ partition, service, region, account, resource string }

func parseARN(s string) (arn, bool) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" {
		return arn{}, false
	}
	return arn{f[1], f[2], f[3], f[4], f[5]}, true
}

// secretNameOfARN is the secret's name: the ARN's resource without
// "secret:" and the 7-character suffix.
func secretNameOfARN(s string) (string, bool) {
	a, ok := parseARN(s)
	name, found := strings.CutPrefix(a.resource, "secret:")
	if !ok || !found || len(name) < 8 {
		return "", false
	}
	return name[:len(name)-7], true
}
