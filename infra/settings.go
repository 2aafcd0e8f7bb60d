package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

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
	settingTokenKeyARN    = setting{"flowkey:accessTokenSecretKeyArn", "FLOWKEY_ACCESS_TOKEN_SECRET_KEY_ARN"}
	settingGraphVersion   = setting{"flowkey:graphApiVersion", "FLOWKEY_GRAPH_API_VERSION"}
	settingSchedule       = setting{"flowkey:rotationSchedule", "FLOWKEY_ROTATION_SCHEDULE"}
	settingWindow         = setting{"flowkey:rotationWindow", "FLOWKEY_ROTATION_WINDOW"}
	settingStatusSchedule = setting{"flowkey:statusSchedule", "FLOWKEY_STATUS_SCHEDULE"}
	settingAlertEmail     = setting{"flowkey:alertEmail", "FLOWKEY_ALERT_EMAIL"}
	settingAlertTopicARN  = setting{"flowkey:alertTopicArn", "FLOWKEY_ALERT_TOPIC_ARN"}
	settingCodePath       = setting{"flowkey:codePath", "FLOWKEY_CODE_PATH"}

	// Adopting what an earlier stack left behind.
	settingExistingSecretARN   = setting{"flowkey:existingSecretArn", "FLOWKEY_EXISTING_SECRET_ARN"}
	settingExistingKeyARN      = setting{"flowkey:existingKeyArn", "FLOWKEY_EXISTING_KEY_ARN"}
	settingRetainedSecretNames = setting{"flowkey:retainedSecretNames", "FLOWKEY_RETAINED_SECRET_NAMES"}

	// What platform teams require.
	settingTerminationProtection = setting{"flowkey:terminationProtection", "FLOWKEY_TERMINATION_PROTECTION"}
	settingTags                  = setting{"flowkey:tags", "FLOWKEY_TAGS"}
	settingPermissionsBoundary   = setting{"flowkey:permissionsBoundaryArn", "FLOWKEY_PERMISSIONS_BOUNDARY_ARN"}
	settingRoleNamePrefix        = setting{"flowkey:roleNamePrefix", "FLOWKEY_ROLE_NAME_PREFIX"}
	settingLogRetention          = setting{"flowkey:logRetentionDays", "FLOWKEY_LOG_RETENTION_DAYS"}
	settingLogKeyARN             = setting{"flowkey:logKmsKeyArn", "FLOWKEY_LOG_KMS_KEY_ARN"}
	settingSubnetIDs             = setting{"flowkey:vpcSubnetIds", "FLOWKEY_VPC_SUBNET_IDS"}
	settingSecurityGroupIDs      = setting{"flowkey:vpcSecurityGroupIds", "FLOWKEY_VPC_SECURITY_GROUP_IDS"}
	settingVPCID                 = setting{"flowkey:vpcId", "FLOWKEY_VPC_ID"}
	settingVPCEndpoints          = setting{"flowkey:vpcEndpoints", "FLOWKEY_VPC_ENDPOINTS"}

	// The Flows endpoint: deployed when any of the first four is set, and
	// then they must describe it completely.
	settingEndpointBackendFunctionARN = setting{"flowkey:endpointBackendFunctionArn", "FLOWKEY_ENDPOINT_BACKEND_FUNCTION_ARN"}
	settingEndpointBackendURL         = setting{"flowkey:endpointBackendUrl", "FLOWKEY_ENDPOINT_BACKEND_URL"}
	settingAppSecretARN               = setting{"flowkey:appSecretArn", "FLOWKEY_APP_SECRET_ARN"}
	settingAppSecretKeyARN            = setting{"flowkey:appSecretKeyArn", "FLOWKEY_APP_SECRET_KEY_ARN"}
	settingEndpointCodePath           = setting{"flowkey:endpointCodePath", "FLOWKEY_ENDPOINT_CODE_PATH"}

	// Key custody (issue 12): where the secret keeps its Flows private
	// keys, and who may decrypt with those held in KMS.
	settingKeyCustody          = setting{"flowkey:keyCustody", "FLOWKEY_KEY_CUSTODY"}
	settingCustodyDecryptRoles = setting{"flowkey:custodyKeyDecryptRoleArns", "FLOWKEY_CUSTODY_KEY_DECRYPT_ROLE_ARNS"}
	settingCustodyDeletionDays = setting{"flowkey:custodyKeyDeletionDays", "FLOWKEY_CUSTODY_KEY_DELETION_DAYS"}

	// Fleet mode (issue 13, fleet.go): one stack rotates the keys of
	// tenants enrolled at run time. Off by default; the other four only
	// with it on.
	settingFleet                = setting{"flowkey:fleet", "FLOWKEY_FLEET"}
	settingFleetSecretPrefix    = setting{"flowkey:fleetSecretPrefix", "FLOWKEY_FLEET_SECRET_PREFIX"}
	settingFleetTokenPrefix     = setting{"flowkey:fleetTokenPrefix", "FLOWKEY_FLEET_TOKEN_PREFIX"}
	settingFleetAppSecretPrefix = setting{"flowkey:fleetAppSecretPrefix", "FLOWKEY_FLEET_APP_SECRET_PREFIX"}
	settingFleetWindow          = setting{"flowkey:fleetRotationWindow", "FLOWKEY_FLEET_ROTATION_WINDOW"}
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
// list, number, boolean or object, as cdk.json may hold any JSON), then the
// environment.
type settings struct {
	context func(key string) any
	getenv  func(string) string
}

func (s settings) raw(p setting) any {
	if s.context == nil {
		return nil
	}
	return s.context(p.Context)
}

// str returns the parameter as text, or "" when it is set nowhere.
func (s settings) str(p setting) (string, error) {
	switch v := s.raw(p).(type) {
	case nil:
	case string:
		return strings.TrimSpace(v), nil
	default:
		return "", &settingError{p, fmt.Sprintf("is a %T, not a string", v), "give it as a JSON string"}
	}
	return strings.TrimSpace(s.getenv(p.Env)), nil
}

// isSet tells whether the parameter has a non-empty value anywhere.
func (s settings) isSet(p setting) bool {
	if v := s.raw(p); v != nil {
		return v != ""
	}
	return strings.TrimSpace(s.getenv(p.Env)) != ""
}

// list accepts a JSON array of strings in the context, or a
// comma-separated string in either place.
func (s settings) list(p setting) ([]string, error) {
	if arr, ok := s.raw(p).([]any); ok {
		out := make([]string, 0, len(arr))
		for i, v := range arr {
			str, ok := v.(string)
			if !ok {
				return nil, &settingError{p, fmt.Sprintf("element %d is a %T, not a string", i, v), `quote each value, e.g. ["106540352242922"]`}
			}
			out = append(out, strings.TrimSpace(str))
		}
		return out, nil
	}
	v, err := s.str(p)
	if err != nil || v == "" {
		return nil, err
	}
	if strings.HasPrefix(v, "[") {
		// `cdk -c key='["1","2"]'` passes the JSON array as a string.
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, &settingError{p, "starts with [ but is not a JSON array of strings", `write ["a","b"] or a comma-separated list`}
		}
		return out, nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

// boolean accepts a JSON boolean in the context, or "true"/"false" in
// either place; def when the parameter is set nowhere.
func (s settings) boolean(p setting, def bool) (bool, error) {
	if b, ok := s.raw(p).(bool); ok {
		return b, nil
	}
	v, err := s.str(p)
	if err != nil || v == "" {
		return def, err
	}
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return def, &settingError{p, fmt.Sprintf("%q is not true or false", clip(v)), "write true or false"}
}

// integer accepts a JSON number in the context, or digits in either place;
// def when the parameter is set nowhere.
func (s settings) integer(p setting, def int) (int, error) {
	if f, ok := s.raw(p).(float64); ok {
		if f != float64(int(f)) {
			return def, &settingError{p, fmt.Sprintf("%v is not a whole number", f), "write a whole number of days, e.g. 365"}
		}
		return int(f), nil
	}
	v, err := s.str(p)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def, &settingError{p, fmt.Sprintf("%q is not a whole number", clip(v)), "write a whole number of days, e.g. 365"}
	}
	return n, nil
}

// stringMap accepts a JSON object of strings in the context, or, in either
// place, a JSON object as a string or "key=value" pairs separated by commas.
func (s settings) stringMap(p setting) (map[string]string, error) {
	const fix = `write {"team":"payments","cost-center":"1234"} or team=payments,cost-center=1234`
	if obj, ok := s.raw(p).(map[string]any); ok {
		out := make(map[string]string, len(obj))
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			str, ok := obj[k].(string)
			if !ok {
				return nil, &settingError{p, fmt.Sprintf("the value of %q is a %T, not a string", clip(k), obj[k]), fix}
			}
			out[k] = str
		}
		return out, nil
	}
	v, err := s.str(p)
	if err != nil || v == "" {
		return nil, err
	}
	if strings.HasPrefix(v, "{") {
		var out map[string]string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			return nil, &settingError{p, "starts with { but is not a JSON object of strings", fix}
		}
		return out, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, &settingError{p, fmt.Sprintf("%q is not key=value", clip(strings.TrimSpace(pair))), fix}
		}
		if _, dup := out[k]; dup {
			return nil, &settingError{p, fmt.Sprintf("names the key %q twice", clip(k)), fix}
		}
		out[k] = strings.TrimSpace(val)
	}
	return out, nil
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
