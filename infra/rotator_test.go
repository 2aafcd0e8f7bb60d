package main

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keypair"
)

func TestFunction(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.fn))
	for k, want := range map[string]any{
		"Runtime":       "provided.al2023",
		"Architectures": []string{"arm64"},
		"Handler":       "bootstrap",
		"Timeout":       rotatorTimeoutSeconds,
		"MemorySize":    rotatorMemoryMB,
		"TracingConfig": map[string]any{"Mode": "Active"},
		"LoggingConfig": map[string]any{"LogGroup": ref(l.logs)},
		"Role":          getAtt(l.role, "Arn"),
	} {
		assertEqual(t, "function "+k, p[k], want)
	}
	for _, k := range []string{"ReservedConcurrentExecutions", "VpcConfig", "KmsKeyArn"} {
		if v, ok := p[k]; ok {
			t.Errorf("function %s = %v, want unset", k, v)
		}
	}
	// Only asynchronous invocations (the status schedule) are affected:
	// Secrets Manager invokes the steps synchronously.
	_, invokeConfig := only(t, "AWS::Lambda::EventInvokeConfig")
	assertEqual(t, "async invoke config", properties(invokeConfig), map[string]any{
		"FunctionName":         ref(l.fn),
		"Qualifier":            "$LATEST",
		"MaximumRetryAttempts": 0,
	})
	vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
	assertEqual(t, "environment variable names", slices.Sorted(maps.Keys(vars)), sorted(config.Names()))
	assertEqual(t, "environment", vars, map[string]any{
		config.EnvKMSKeyID:                  getAtt(l.key, "Arn"),
		config.EnvAccessTokenSecretID:       testTokenARN,
		config.EnvGraphBaseURL:              "https://graph.facebook.com",
		config.EnvGraphVersion:              testGraphVerion,
		config.EnvGraphConcurrency:          "8",
		config.EnvGraphMaxAttempts:          "5",
		config.EnvGraphRequestTimeout:       "10s",
		config.EnvVerifyTimeout:             "90s",
		config.EnvFunctionTimeout:           "300s",
		config.EnvSecretID:                  ref(l.secret),
		config.EnvLogLevel:                  "INFO",
		config.EnvCustodyKeyRotatorRoleARN:  "",
		config.EnvCustodyKeyDecryptRoleARNs: "",
		config.EnvCustodyKeyDeletionDays:    "30",
	})

	if got := properties(resource(t, l.logs))["RetentionInDays"]; got != float64(365) {
		t.Errorf("log RetentionInDays = %v, want 365", got)
	}
}

// The rotator must accept the environment the stack gives it, and the
// function's timeout must cover testSecret's worst case under it.
func TestFunctionEnvironmentLoadsAndFitsTheTimeout(t *testing.T) {
	fn := resource(t, ids(t).fn)
	vars := properties(fn)["Environment"].(map[string]any)["Variables"].(map[string]any)
	env := map[string]string{}
	for k, v := range vars {
		s, ok := v.(string)
		if !ok {
			s = "resolved-at-deploy" // a Ref or GetAtt: an ARN at deploy time
		}
		env[k] = s
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.Load on the stack's environment: %v", err)
	}
	timeout := time.Duration(properties(fn)["Timeout"].(float64)) * time.Second
	// The function plans each step's time from FUNCTION_TIMEOUT at start-up
	// (it cannot see its own timeout before the first invocation).
	if cfg.FunctionTimeout != timeout {
		t.Errorf("FUNCTION_TIMEOUT is %s but the function times out after %s", cfg.FunctionTimeout, timeout)
	}
	// testSecret: verification polling, then a rollback whose uploads are
	// each retried GraphMaxAttempts times; a minute for cold start and the
	// Secrets Manager calls.
	worst := cfg.VerifyTimeout + time.Duration(cfg.GraphMaxAttempts)*cfg.GraphRequestTimeout + time.Minute
	if worst > timeout {
		t.Errorf("testSecret may need %s but the function times out after %s", worst, timeout)
	}
}

func TestExecutionRole(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.role))
	assertEqual(t, "trust policy", p["AssumeRolePolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow",
			"Principal": map[string]any{"Service": "lambda.amazonaws.com"},
		}},
	})
	for _, k := range []string{"ManagedPolicyArns", "Policies", "PermissionsBoundary"} {
		if v, ok := p[k]; ok {
			t.Errorf("role %s = %v, want none: every permission is in the one policy below", k, v)
		}
	}
	for _, typ := range []string{"AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"} {
		if rs := resources(t, typ); len(rs) != 0 {
			t.Errorf("unexpected %s: %v", typ, slices.Sorted(maps.Keys(rs)))
		}
	}
	var attached []string
	for id, r := range resources(t, "AWS::IAM::Policy") {
		if slices.ContainsFunc(properties(r)["Roles"].([]any), func(v any) bool { return reflect.DeepEqual(v, ref(l.role)) }) {
			attached = append(attached, id)
		}
	}
	assertEqual(t, "policies of the rotator role", sorted(attached), sorted([]string{l.policy, l.operatorPolicy}))
	pp := properties(resource(t, l.policy))
	assertEqual(t, "policy roles", pp["Roles"], []any{ref(l.role)})
	assertEqual(t, "execution role policy", pp["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "RotateThisSecret", "Effect": "Allow", "Resource": ref(l.secret),
				"Action": []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"},
			},
			map[string]any{
				"Sid": "ReadGraphAccessToken", "Effect": "Allow", "Resource": testTokenARN,
				"Action": "secretsmanager:GetSecretValue",
			},
			map[string]any{
				"Sid": "GenerateKeyPairsForThisSecret", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": "kms:GenerateDataKeyPair",
				"Condition": map[string]any{"StringEquals": map[string]any{
					"kms:EncryptionContext:" + keypair.EncryptionContextKey: ref(l.secret),
					"kms:DataKeyPairSpec": "RSA_2048",
				}},
			},
			map[string]any{
				"Sid": "UseKeyThroughSecretsManagerForThisSecret", "Effect": "Allow", "Resource": getAtt(l.key, "Arn"),
				"Action": []string{"kms:Decrypt", "kms:GenerateDataKey"},
				"Condition": map[string]any{"StringEquals": map[string]any{
					"kms:ViaService":                  "secretsmanager." + testRegion + ".amazonaws.com",
					"kms:EncryptionContext:SecretARN": ref(l.secret),
				}},
			},
			map[string]any{
				"Sid": "WriteOwnLogs", "Effect": "Allow", "Resource": getAtt(l.logs, "Arn"),
				"Action": []string{"logs:CreateLogStream", "logs:PutLogEvents"},
			},
			map[string]any{
				"Effect": "Allow", "Resource": "*",
				"Action": []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"},
			},
		},
	})
}

// What the rotate command needs, in a policy of its own: the function
// does not depend on it, so it can name the function's ARN.
func TestOperatorPolicy(t *testing.T) {
	l := ids(t)
	p := properties(resource(t, l.operatorPolicy))
	assertEqual(t, "operator policy roles", p["Roles"], []any{ref(l.role)})
	assertEqual(t, "operator policy", p["PolicyDocument"], map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Sid": "StartRotationOfThisSecret", "Effect": "Allow", "Resource": ref(l.secret),
				"Action": "secretsmanager:RotateSecret",
			},
			map[string]any{
				"Sid": "InvokeThisFunctionForRotateSecret", "Effect": "Allow", "Resource": getAtt(l.fn, "Arn"),
				"Action": "lambda:InvokeFunction",
			},
		},
	})
	// Were the function to depend on this policy, its ARN in the policy
	// would be a cycle; CloudFormation would reject the template.
	deps, _ := resource(t, l.fn)["DependsOn"].([]any)
	if slices.Contains(deps, any(l.operatorPolicy)) {
		t.Errorf("function DependsOn = %v, includes the operator policy", deps)
	}
}

func TestInvokePermissionAndSchedule(t *testing.T) {
	l := ids(t)
	perm := resource(t, l.permission)
	assertEqual(t, "invoke permission", properties(perm), map[string]any{
		"Action":        "lambda:InvokeFunction",
		"FunctionName":  getAtt(l.fn, "Arn"),
		"Principal":     "secretsmanager.amazonaws.com",
		"SourceAccount": testAccount,
		"SourceArn":     ref(l.secret),
	})
	_, schedule := only(t, "AWS::SecretsManager::RotationSchedule")
	assertEqual(t, "rotation schedule", properties(schedule), map[string]any{
		"SecretId":                  ref(l.secret),
		"RotationLambdaARN":         getAtt(l.fn, "Arn"),
		"RotationRules":             map[string]any{"ScheduleExpression": testSchedule, "Duration": testWindow},
		"RotateImmediatelyOnUpdate": false,
	})
	deps, _ := schedule["DependsOn"].([]any)
	if !slices.Contains(deps, any(l.permission)) {
		t.Errorf("schedule DependsOn = %v, want it to include the invoke permission %s (aws-cdk #26481)", schedule["DependsOn"], l.permission)
	}
	// Creating the schedule runs testSecret on AWSCURRENT: the seed first.
	if !slices.Contains(deps, any(l.seed)) {
		t.Errorf("schedule DependsOn = %v, want it to include the seed %s", schedule["DependsOn"], l.seed)
	}
}

// The fleet's variables are exactly config.FleetNames on the rotator and
// config.EndpointFleetNames on the endpoint, besides the stack's; the
// optional app prefix only when set; and each function's configuration
// loads with them.
func TestFleetEnvironment(t *testing.T) {
	for name, tc := range map[string]struct {
		v                 variant
		fleetName, prefix string
		app               bool
		token, window     string
	}{
		"fleet":          {synthesized.fleet, testFleetStackName, testFleetSecretPrefix, true, testFleetTokenPrefix, testFleetWindow},
		"fleet-agnostic": {synthesized.fleetAgnostic, testFleetAgnosticStackName, fleet.DefaultSecretPrefix, false, fleet.DefaultTokenPrefix, "2h"},
	} {
		vars := rotatorVars(t, tc.v)
		want := append(config.Names(), config.FleetNames()...)
		if !tc.app {
			want = slices.DeleteFunc(want, func(n string) bool { return n == config.EnvFleetAppSecretPrefix })
		}
		assertEqual(t, name+": rotator variable names", slices.Sorted(maps.Keys(vars)), sorted(want))
		wantFleet := map[string]any{
			config.EnvFleetName: tc.fleetName, config.EnvFleetSecretPrefix: tc.prefix, config.EnvFleetTokenPrefix: tc.token,
			config.EnvFleetKMSKeyID: vars[config.EnvKMSKeyID], config.EnvFleetRotationWindow: tc.window, config.EnvFleetStatusConcurrency: "8",
		}
		if tc.app {
			wantFleet[config.EnvFleetAppSecretPrefix] = testFleetAppPrefix
		}
		got := map[string]any{}
		for _, n := range config.FleetNames() {
			if v, ok := vars[n]; ok {
				got[n] = v
			}
		}
		assertEqual(t, name+": fleet variables", got, wantFleet)
		cfg, err := config.Load(literalEnv(vars))
		if err != nil {
			t.Fatalf("%s: config.Load: %v", name, err)
		}
		w, _ := time.ParseDuration(tc.window)
		if f := cfg.Fleet; f.Name != tc.fleetName || f.SecretPrefix != tc.prefix || f.TokenPrefix != tc.token || f.RotationWindow != w || f.StatusConcurrency != 8 {
			t.Errorf("%s: loaded fleet %+v", name, f)
		}
	}

	v := synthesized.fleet
	e := properties(resourceIn(t, v.template, cfnIDIn(t, v.stack, "Endpoint")))["Environment"].(map[string]any)["Variables"].(map[string]any)
	var want []string
	for _, n := range append(config.EndpointNames(), config.EndpointFleetNames()...) {
		if n != config.EnvSkipSignatureCheck && n != config.EnvBackendURL {
			want = append(want, n)
		}
	}
	assertEqual(t, "fleet: endpoint variable names", slices.Sorted(maps.Keys(e)), sorted(want))
	for n, w := range map[string]string{config.EnvFleetName: testFleetStackName, config.EnvFleetSecretPrefix: testFleetSecretPrefix,
		config.EnvFleetAppSecretPrefix: testFleetAppPrefix, config.EnvEndpointRingCache: "256"} {
		assertEqual(t, "fleet: endpoint "+n, e[n], w)
	}
	cfg, err := config.LoadEndpoint(literalEnv(e))
	if err != nil {
		t.Fatalf("fleet: config.LoadEndpoint: %v", err)
	}
	if f := cfg.Fleet; f.Name != testFleetStackName || f.SecretPrefix != testFleetSecretPrefix || f.AppSecretPrefix != testFleetAppPrefix || f.RingCache != 256 {
		t.Errorf("fleet: loaded endpoint fleet %+v", f)
	}
}

// literalEnv is a function's environment with each Ref or GetAtt as a
// stand-in ARN, as the variables are at deploy time.
func literalEnv(vars map[string]any) func(string) string {
	return func(k string) string {
		switch v := vars[k].(type) {
		case nil:
			return ""
		case string:
			return v
		}
		if strings.HasSuffix(k, "ROLE_ARN") || strings.HasSuffix(k, "ROLE_ARNS") {
			return "arn:aws:iam::111122223333:role/resolved-at-deploy"
		}
		return "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"
	}
}
