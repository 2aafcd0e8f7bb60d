package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// RotationStackProps are the deployment settings. Every field but
// StackProps is validated by Validate; propsFromSettings fills them from
// CDK context or the environment.
type RotationStackProps struct {
	awscdk.StackProps

	// SecretName names the secret that holds the key (and is rotated).
	SecretName string
	// PhoneNumberIDs or WABAID (exactly one) say which numbers get the key.
	PhoneNumberIDs []string
	WABAID         string
	// AccessTokenSecretARN is the complete ARN (with the 6-character
	// suffix) of an existing secret that holds the Graph system user token.
	// The stack only reads it: the token never appears in a template.
	AccessTokenSecretARN string
	// GraphAPIVersion is the function's GRAPH_API_VERSION.
	GraphAPIVersion string
	// Schedule is "rate(N days|hours)" or "cron(...)"; RotationWindow is the
	// Duration during which Secrets Manager may start the rotation ("2h").
	Schedule       string
	RotationWindow string
	// StatusSchedule is the EventBridge schedule expression ("rate(1 hour)",
	// "cron(0 * * * ? *)") on which the rotator runs {"command":"status"},
	// with the drift alarm on what it finds; StatusScheduleOff for neither.
	StatusSchedule string
	// AlertEmail, when set, subscribes that address to the alert topic.
	AlertEmail string
	// CodePath is the directory that holds the linux/arm64 bootstrap
	// (make build-arm64), relative to the working directory of the app.
	CodePath string
}

// Defaults of the optional settings.
const (
	DefaultStackName      = "FlowkeyRotation"
	DefaultSecretName     = "flowkey/whatsapp-flows-key"
	DefaultSchedule       = "rate(30 days)"
	DefaultRotationWindow = "2h"
	DefaultStatusSchedule = "rate(1 hour)"
	DefaultCodePath       = "../.build/arm64/rotator"
)

// StatusScheduleOff as the StatusSchedule turns the status schedule and
// the drift alarm off.
const StatusScheduleOff = "off"

// setting is one deployment parameter: its CDK context key (cdk.json or
// `cdk -c key=value`) and the environment variable read when the context
// key is absent.
type setting struct {
	Context string
	Env     string
}

// The parameters of the app, in the order README.md documents them.
var (
	settingStackName      = setting{"flowkey:stackName", "FLOWKEY_STACK_NAME"}
	settingSecretName     = setting{"flowkey:secretName", "FLOWKEY_SECRET_NAME"}
	settingPhoneNumberIDs = setting{"flowkey:phoneNumberIds", "FLOWKEY_PHONE_NUMBER_IDS"}
	settingWABAID         = setting{"flowkey:wabaId", "FLOWKEY_WABA_ID"}
	settingTokenSecretARN = setting{"flowkey:accessTokenSecretArn", "FLOWKEY_ACCESS_TOKEN_SECRET_ARN"}
	settingGraphVersion   = setting{"flowkey:graphApiVersion", "FLOWKEY_GRAPH_API_VERSION"}
	settingSchedule       = setting{"flowkey:rotationSchedule", "FLOWKEY_ROTATION_SCHEDULE"}
	settingWindow         = setting{"flowkey:rotationWindow", "FLOWKEY_ROTATION_WINDOW"}
	settingStatusSchedule = setting{"flowkey:statusSchedule", "FLOWKEY_STATUS_SCHEDULE"}
	settingAlertEmail     = setting{"flowkey:alertEmail", "FLOWKEY_ALERT_EMAIL"}
	settingCodePath       = setting{"flowkey:codePath", "FLOWKEY_CODE_PATH"}
)

func (s setting) String() string {
	return fmt.Sprintf("context key %q (or environment variable %s)", s.Context, s.Env)
}

// settingError names the parameter, what is wrong with its value and the fix.
type settingError struct {
	Setting setting
	Problem string
	Fix     string
}

func (e *settingError) Error() string {
	return fmt.Sprintf("%s: %s; fix: %s", e.Setting, e.Problem, e.Fix)
}

// settings reads raw parameter values: a context value first (string,
// list or number, as cdk.json may hold any JSON), then the environment.
type settings struct {
	context func(key string) any
	getenv  func(string) string
}

// str returns the parameter as text, or "" when it is set nowhere.
func (s settings) str(p setting) (string, error) {
	if s.context != nil {
		switch v := s.context(p.Context).(type) {
		case nil:
		case string:
			return strings.TrimSpace(v), nil
		default:
			return "", &settingError{p, fmt.Sprintf("is a %T, not a string", v), "give it as a JSON string"}
		}
	}
	return strings.TrimSpace(s.getenv(p.Env)), nil
}

// list accepts a JSON array of strings in the context, or a
// comma-separated string in either place.
func (s settings) list(p setting) ([]string, error) {
	if s.context != nil {
		if arr, ok := s.context(p.Context).([]any); ok {
			out := make([]string, 0, len(arr))
			for i, v := range arr {
				str, ok := v.(string)
				if !ok {
					return nil, &settingError{p, fmt.Sprintf("element %d is a %T, not a string", i, v), `quote each ID, e.g. ["106540352242922"]`}
				}
				out = append(out, strings.TrimSpace(str))
			}
			return out, nil
		}
	}
	v, err := s.str(p)
	if err != nil || v == "" {
		return nil, err
	}
	if strings.HasPrefix(v, "[") {
		// `cdk -c key='["1","2"]'` passes the JSON array as a string.
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, &settingError{p, "starts with [ but is not a JSON array of strings", `write ["106540352242922","106540352242923"] or a comma-separated list`}
		}
		return out, nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

// propsFromSettings reads every parameter, applies defaults and validates
// the result, reporting every bad parameter at once. The code directory is
// checked too, so a missing `make build-arm64` fails here and not deep in
// asset staging.
func propsFromSettings(s settings) (*RotationStackProps, error) {
	var errs []error
	get := func(p setting, def string) string {
		v, err := s.str(p)
		if err != nil {
			errs = append(errs, err)
		}
		if v == "" {
			return def
		}
		return v
	}
	p := &RotationStackProps{
		SecretName:           get(settingSecretName, DefaultSecretName),
		WABAID:               get(settingWABAID, ""),
		AccessTokenSecretARN: get(settingTokenSecretARN, ""),
		GraphAPIVersion:      get(settingGraphVersion, graph.DefaultVersion),
		Schedule:             get(settingSchedule, DefaultSchedule),
		RotationWindow:       get(settingWindow, DefaultRotationWindow),
		StatusSchedule:       get(settingStatusSchedule, DefaultStatusSchedule),
		AlertEmail:           get(settingAlertEmail, ""),
		CodePath:             get(settingCodePath, DefaultCodePath),
	}
	ids, err := s.list(settingPhoneNumberIDs)
	if err != nil {
		errs = append(errs, err)
	}
	p.PhoneNumberIDs = ids
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

// Immutable patterns; regexp.Regexp is safe for concurrent use.
var (
	stackNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,99}$`)
	secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	// A complete secret ARN ends in "-" and the 6 characters Secrets
	// Manager appends; IAM needs that exact ARN (or a wildcard) to match.
	secretARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$`)
	rateRE      = regexp.MustCompile(`^rate\(([0-9]+) (hour|hours|day|days)\)$`)
	cronRE      = regexp.MustCompile(`^cron\((\S+( \S+){5})\)$`)
	// EventBridge's rate expressions also have minutes.
	statusRateRE = regexp.MustCompile(`^rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)$`)
	minuteRE     = regexp.MustCompile(`^[0-9]{1,2}$`)
	windowRE     = regexp.MustCompile(`^([0-9]+)h$`)
	emailRE      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// Validate reports every invalid setting at once. It never changes p.
func (p *RotationStackProps) Validate() error {
	if p == nil {
		return errors.New("flowkey: RotationStackProps is nil; fix: pass the settings read by propsFromSettings")
	}
	var errs []error
	bad := func(s setting, problem, fix string) { errs = append(errs, &settingError{s, problem, fix}) }

	if !secretNameRE.MatchString(p.SecretName) {
		bad(settingSecretName, fmt.Sprintf("%q is not a Secrets Manager secret name", clip(p.SecretName)), "use 1-512 letters, digits and /_+=.@-, e.g. "+DefaultSecretName)
	} else if len(p.SecretName) > 7 && p.SecretName[len(p.SecretName)-7] == '-' {
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

	switch {
	case p.AccessTokenSecretARN == "":
		bad(settingTokenSecretARN, "is not set", "create a secret holding the Graph system user token and give its complete ARN")
	case !secretARNRE.MatchString(p.AccessTokenSecretARN):
		// The value is not quoted: someone may have pasted the token itself.
		bad(settingTokenSecretARN, "is not a complete Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>)", "give the ARN of the secret, not the token, including the 6-character suffix, as `aws secretsmanager describe-secret --query ARN` prints it")
	}

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
		bad(settingStatusSchedule, err.Error(), `use "rate(N hours)" or "rate(N days)", a six-field "cron(M ...)" whose minutes field is one number, or "off"; the default is "`+DefaultStatusSchedule+`"`)
	}

	if p.AlertEmail != "" && !emailRE.MatchString(p.AlertEmail) {
		bad(settingAlertEmail, fmt.Sprintf("%q is not an e-mail address", clip(p.AlertEmail)), "give one address like ops@example.com, or leave it unset")
	}

	if p.CodePath == "" {
		bad(settingCodePath, "is empty", "leave it unset for "+DefaultCodePath)
	} else if fi, err := os.Stat(filepath.Join(p.CodePath, "bootstrap")); err != nil || !fi.Mode().IsRegular() {
		bad(settingCodePath, fmt.Sprintf("%q holds no bootstrap file", p.CodePath), "run `make build-arm64` in the repository root first")
	}
	return errors.Join(errs...)
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

// scheduleHours checks a Secrets Manager ScheduleExpression and returns the
// interval in hours of a rate in hours (0 for days and cron).
func scheduleHours(expr string) (int, error) {
	if m := rateRE.FindStringSubmatch(expr); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, fmt.Errorf("%q has an unreadable number", clip(expr))
		}
		singular := !strings.HasSuffix(m[2], "s")
		if (n == 1) != singular {
			return 0, fmt.Errorf("%q: write \"1 day\" but \"%d %ss\"", expr, n, strings.TrimSuffix(m[2], "s"))
		}
		if strings.HasPrefix(m[2], "hour") {
			if n < 4 {
				return 0, fmt.Errorf("%q is more often than every 4 hours, the Secrets Manager minimum", expr)
			}
			return n, nil
		}
		if n < 1 || n > 1000 {
			return 0, fmt.Errorf("%q is outside 1-1000 days", expr)
		}
		return 0, nil
	}
	if m := cronRE.FindStringSubmatch(expr); m != nil {
		if strings.Fields(m[1])[0] != "0" {
			return 0, fmt.Errorf("%q: Secrets Manager requires the minutes field to be 0", expr)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%q is neither rate(...) nor cron(...)", clip(expr))
}

// statusScheduleOn tells whether the stack runs the status command on a
// schedule (and alarms on drift).
func (p *RotationStackProps) statusScheduleOn() bool {
	return !strings.EqualFold(p.StatusSchedule, StatusScheduleOff)
}

// checkStatusSchedule checks an EventBridge ScheduleExpression for the
// status command, or "off". Every status makes one Graph call per number
// against Meta's management budget of about 200 calls per hour per WABA,
// which rotations share, so it may run at most once an hour: a rate of at
// least an hour, or a cron that fires at one fixed minute.
func checkStatusSchedule(expr string) error {
	if strings.EqualFold(expr, StatusScheduleOff) {
		return nil
	}
	if m := statusRateRE.FindStringSubmatch(expr); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return fmt.Errorf("%q needs a whole number of at least 1", clip(expr))
		}
		unit := strings.TrimSuffix(m[2], "s")
		if (n == 1) != (m[2] == unit) {
			return fmt.Errorf("%q: write \"1 %s\" but \"%d %ss\"", expr, unit, n, unit)
		}
		if unit == "minute" && n < 60 {
			return fmt.Errorf("%q is more often than hourly: each status costs one Graph call per number", expr)
		}
		return nil
	}
	if m := cronRE.FindStringSubmatch(expr); m != nil {
		f := strings.Fields(m[1])
		if minute, err := strconv.Atoi(f[0]); err != nil || !minuteRE.MatchString(f[0]) || minute > 59 {
			return fmt.Errorf("%q: the minutes field must be one number from 0 to 59, so that the status runs at most hourly", expr)
		}
		// EventBridge rejects a day-of-month together with a day-of-week.
		if (f[2] == "?") == (f[4] == "?") {
			return fmt.Errorf("%q: exactly one of day-of-month (3rd field) and day-of-week (5th field) must be \"?\"", expr)
		}
		return nil
	}
	if expr == "" {
		return errors.New("is empty")
	}
	return fmt.Errorf("%q is neither rate(...), cron(...) nor off", clip(expr))
}

// secretConfig is the configuration part of the secret document: which
// numbers get the key, and nothing else. The token secret's ARN and the
// Graph version are optional in the document and the rotator falls back
// to ACCESS_TOKEN_SECRET_ID and GRAPH_API_VERSION, which the stack sets
// on the function. Leaving them out keeps them ordinary settings that
// every deploy applies, together with the IAM grant on the token secret,
// while the document is written only once (see newSeed).
func (p *RotationStackProps) secretConfig() secretdoc.Config {
	return secretdoc.Config{
		PhoneNumberIDs: p.PhoneNumberIDs,
		WABAID:         p.WABAID,
	}
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

// clip shortens a value quoted in an error so a pasted token or PEM cannot
// flood the output.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
