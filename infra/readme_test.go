package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// README.md's settings table lists every setting the code reads, with its
// context key and environment variable, and nothing else.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme := readREADME(t)
	row := regexp.MustCompile("(?m)^\\| `(flowkey:[A-Za-z]+)` \\| `(FLOWKEY_[A-Z_]+)` \\|")
	var documented []setting
	for _, m := range row.FindAllStringSubmatch(readme, -1) {
		documented = append(documented, setting{m[1], m[2]})
	}
	assertEqual(t, "settings in README.md's table", sortedSettings(documented), sortedSettings(declaredSettings(t)))
}

// declaredSettings are the setting{...} literals of settings.go.
func declaredSettings(t *testing.T) []setting {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "settings.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []setting
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if id, isIdent := lit.Type.(*ast.Ident); !isIdent || id.Name != "setting" || len(lit.Elts) != 2 {
			return true
		}
		var v [2]string
		for i, e := range lit.Elts {
			b, ok := e.(*ast.BasicLit)
			if !ok {
				t.Fatalf("setting literal with a non-literal element at %v", e.Pos())
			}
			s, err := strconv.Unquote(b.Value)
			if err != nil {
				t.Fatal(err)
			}
			v[i] = s
		}
		out = append(out, setting{v[0], v[1]})
		return true
	})
	if len(out) < 20 {
		t.Fatalf("found %d settings in settings.go; the parser missed some", len(out))
	}
	return out
}

func sortedSettings(s []setting) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		out = append(out, x.Context+" "+x.Env)
	}
	slices.Sort(out)
	return out
}

// "Reading the alerts" names every alarm the stack creates, and the
// deploy check's message is documented by its prefix.
func TestREADMEDocumentsEveryAlarm(t *testing.T) {
	readme := readREADME(t)
	alerts := readme[strings.Index(readme, "## Reading the alerts"):]
	names := reflect.ValueOf(newAlarmNames("<stack>"))
	endpointNames := reflect.ValueOf(newEndpointAlarmNames("<stack>"))
	for _, v := range []reflect.Value{names, endpointNames} {
		for i := range v.NumField() {
			name := v.Field(i).String()
			if !strings.Contains(alerts, "`"+name+"`") {
				t.Errorf("README.md's Reading the alerts does not name the alarm %s", name)
			}
		}
	}
	if n := len(resourcesIn(synthesized.template, "AWS::CloudWatch::Alarm")); n != names.NumField() {
		t.Errorf("%d alarms in the template, %d names", n, names.NumField())
	}
	if n := len(resourcesIn(synthesized.endpoint.template, "AWS::CloudWatch::Alarm")); n != names.NumField()+endpointNames.NumField() {
		t.Errorf("%d alarms in the endpoint variant, %d names", n, names.NumField()+endpointNames.NumField())
	}
	for _, s := range []string{"flowkey deploy check failed", "`" + rotationAgeMetric + "`", "`" + driftMetric + "`",
		"`BackendErrors`", "`Requests`", "`EndpointUrl`", "`INSECURE_SKIP_SIGNATURE_CHECK`"} {
		if !strings.Contains(readme, s) {
			t.Errorf("README.md does not document %s", s)
		}
	}
}

// "Key custody in KMS" names every statement of the KMS custody grants.
func TestREADMEDocumentsTheCustodyGrants(t *testing.T) {
	readme := readREADME(t)
	section := readme[strings.Index(readme, "## Key custody in KMS"):]
	section = section[:strings.Index(section[1:], "\n## ")+1]
	v := synthesized.kmsEndpoint
	for _, id := range []string{cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy"), cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy")} {
		for _, s := range properties(resourceIn(t, v.template, id))["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			sid, _ := s.(map[string]any)["Sid"].(string)
			if id == cfnIDIn(t, v.stack, "RotatorKeyCustodyPolicy") || strings.Contains(sid, "Custody") {
				if !strings.Contains(section, "`"+sid+"`") {
					t.Errorf("README.md's Key custody in KMS does not name the statement %s", sid)
				}
			}
		}
	}
}

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// "Fleet mode" names every statement the fleet adds, the tenants'
// invoke permission, its alarm and commands, and prices the quotas the
// scale table must cover.
func TestREADMEDocumentsFleetMode(t *testing.T) {
	readme := readREADME(t)
	i := strings.Index(readme, "## Fleet mode")
	if i < 0 {
		t.Fatal("README.md has no Fleet mode section")
	}
	section := readme[i:]
	section = section[:strings.Index(section[1:], "\n## ")+1]
	v := synthesized.fleet
	want := []string{"`SecretsManagerInvokesRotatorForTenants`", "`" + tenantsAlarmName("<stack>") + "`", "make enroll", "make unenroll", "10,000 tenants",
		"`InvokeThisFunctionForRotateSecret`", "`RecordKeyCreationOnTenantSecrets`"}
	for _, id := range []string{cfnIDIn(t, v.stack, "RotatorFleetPolicy"), cfnIDIn(t, v.stack, "EndpointRole", "DefaultPolicy")} {
		for _, s := range properties(resourceIn(t, v.template, id))["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			if sid, _ := s.(map[string]any)["Sid"].(string); strings.Contains(sid, "Tenant") || id == cfnIDIn(t, v.stack, "RotatorFleetPolicy") {
				want = append(want, "`"+sid+"`")
			}
		}
	}
	want = append(want, "GenerateDataKeyPair", "CreateKey", "RSA `Decrypt`", "PutSecretValue", "UpdateSecretVersionStage", "RotateSecret", "CreateSecret",
		"TagResource", "ListSecrets", "GetSecretValue", "DescribeSecret", "Meta, per app per WABA", "Lambda concurrency", "per tenant-month")
	for _, s := range want {
		if !strings.Contains(section, s) {
			t.Errorf("README.md's Fleet mode does not mention %s", s)
		}
	}
	if n := strings.Count(section, "\n"); n > 120 {
		t.Errorf("README.md's Fleet mode has %d lines; keep it to 120", n)
	}
}
