package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/graph"
)

// cfnValue converts YAML to the JSON form of a CloudFormation template,
// including the short-form intrinsic functions (!Ref, !GetAtt, !Sub...),
// which a plain yaml.Unmarshal rejects or loses.
func cfnValue(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("line %d: want one document", n.Line)
		}
		return cfnValue(n.Content[0])
	case yaml.AliasNode:
		return cfnValue(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := cfnValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if isShortForm(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !isShortForm(n.Tag) {
		return v, nil
	}
	fn := strings.TrimPrefix(n.Tag, "!")
	switch {
	case fn == "Ref":
		return map[string]any{"Ref": v}, nil
	case fn == "GetAtt" && n.Kind == yaml.ScalarNode:
		resource, attr, ok := strings.Cut(n.Value, ".")
		if !ok {
			return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
		}
		return map[string]any{"Fn::GetAtt": []any{resource, attr}}, nil
	default:
		return map[string]any{"Fn::" + fn: v}, nil
	}
}

// isShortForm tells a CloudFormation tag (!Ref) from a YAML core tag (!!str).
func isShortForm(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func readSAMTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	v, err := cfnValue(&doc)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return v.(map[string]any)
}

func TestCFNValueConvertsShortForms(t *testing.T) {
	src := "a: !Ref P\nb: !GetAtt R.Arn\nc: !Sub \"x-${AWS::Region}\"\nd: !Join [\"\", [a, !Ref P]]\ne: \"8\"\nf: 8\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	got, err := cfnValue(&doc)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "converted", got, map[string]any{
		"a": ref("P"),
		"b": getAtt("R", "Arn"),
		"c": map[string]any{"Fn::Sub": "x-${AWS::Region}"},
		"d": map[string]any{"Fn::Join": []any{"", []any{"a", ref("P")}}},
		"e": "8",
		"f": 8,
	})
}

// The SAM function and the CDK function cannot drift apart.
func TestSAMTemplateMatchesStack(t *testing.T) {
	tmpl := readSAMTemplate(t)
	resources := tmpl["Resources"].(map[string]any)
	var samFn map[string]any
	for id, r := range resources {
		if r.(map[string]any)["Type"] == "AWS::Serverless::Function" {
			if samFn != nil {
				t.Fatalf("more than one function in template.yaml (second: %s)", id)
			}
			samFn = r.(map[string]any)
		}
	}
	if samFn == nil {
		t.Fatal("template.yaml declares no AWS::Serverless::Function")
	}
	// Function properties override Globals.Function.
	props := map[string]any{}
	if g, ok := tmpl["Globals"].(map[string]any); ok {
		if gf, ok := g["Function"].(map[string]any); ok {
			for k, v := range gf {
				props[k] = v
			}
		}
	}
	for k, v := range samFn["Properties"].(map[string]any) {
		props[k] = v
	}

	cdk := properties(resource(t, ids(t).fn))
	for _, k := range []string{"Runtime", "Architectures", "Handler", "Timeout", "MemorySize"} {
		assertEqual(t, "template.yaml "+k, props[k], cdk[k])
	}
	assertEqual(t, "template.yaml Tracing", props["Tracing"], cdk["TracingConfig"].(map[string]any)["Mode"])
	if got, want := props["CodeUri"], filepath.Clean(filepath.Join("infra", DefaultCodePath)); got != want {
		t.Errorf("template.yaml CodeUri = %v, want %s (what infra/ deploys)", got, want)
	}

	samVars := props["Environment"].(map[string]any)["Variables"].(map[string]any)
	cdkVars := cdk["Environment"].(map[string]any)["Variables"].(map[string]any)
	assertEqual(t, "template.yaml environment variable names", slices.Sorted(maps.Keys(samVars)), sorted(config.Names()))
	assertEqual(t, "template.yaml and stack environment variable names", slices.Sorted(maps.Keys(samVars)), slices.Sorted(maps.Keys(cdkVars)))
	for name, sv := range samVars {
		ss, samLiteral := sv.(string)
		cs, cdkLiteral := cdkVars[name].(string)
		if samLiteral && cdkLiteral && name != config.EnvGraphVersion && name != config.EnvAccessTokenSecretID && ss != cs {
			t.Errorf("%s = %q in template.yaml but %q in the stack", name, ss, cs)
		}
	}

	params := tmpl["Parameters"].(map[string]any)
	if got := params["GraphApiVersion"].(map[string]any)["Default"]; got != graph.DefaultVersion {
		t.Errorf("template.yaml GraphApiVersion default = %v, want %s", got, graph.DefaultVersion)
	}
	for _, p := range []string{"SecretArn", "AccessTokenSecretArn"} {
		if d, _ := params[p].(map[string]any)["Default"].(string); !secretARNRE.MatchString(d) {
			t.Errorf("template.yaml %s default %q is not a complete secret ARN", p, d)
		}
	}
}

// The events are what Secrets Manager sends, with obvious placeholders
// that agree with template.yaml, so `sam local invoke` works unedited as
// far as the ARNs go.
func TestEvents(t *testing.T) {
	secretARN := readSAMTemplate(t)["Parameters"].(map[string]any)["SecretArn"].(map[string]any)["Default"]
	var first events.SecretsManagerSecretRotationEvent
	for i, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		b, err := os.ReadFile(filepath.Join("..", "events", step+".json"))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var ev events.SecretsManagerSecretRotationEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("events/%s.json: %v", step, err)
		}
		if ev.Step != step {
			t.Errorf("events/%s.json: Step = %q", step, ev.Step)
		}
		if ev.SecretID != secretARN {
			t.Errorf("events/%s.json: SecretId = %q, want template.yaml's SecretArn %v", step, ev.SecretID, secretARN)
		}
		for name, tok := range map[string]string{"ClientRequestToken": ev.ClientRequestToken, "RotationToken": ev.RotationToken} {
			if _, err := uuid.Parse(tok); err != nil || !strings.HasPrefix(tok, "00000000-") {
				t.Errorf("events/%s.json: %s = %q, want an obvious placeholder UUID", step, name, tok)
			}
		}
		if i == 0 {
			first = ev
		} else if ev.ClientRequestToken != first.ClientRequestToken || ev.RotationToken != first.RotationToken {
			t.Errorf("events/%s.json: tokens differ from createSecret.json; the four steps are one rotation", step)
		}
	}
}

// events/env.json is the --env-vars file of make sam-invoke: every variable
// the rotator reads, keyed by template.yaml's function, and valid.
func TestSAMEnvVarsFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	resources := readSAMTemplate(t)["Resources"].(map[string]any)
	for fn, vars := range file {
		if _, ok := resources[fn]; !ok {
			t.Errorf("events/env.json sets variables for %q, which template.yaml does not define", fn)
		}
		assertEqual(t, "events/env.json variable names", slices.Sorted(maps.Keys(vars)), sorted(config.Names()))
		if _, err := config.Load(func(k string) string { return vars[k] }); err != nil {
			t.Errorf("events/env.json does not load: %v", err)
		}
	}
	if len(file) != 1 {
		t.Errorf("events/env.json has %d functions, want 1", len(file))
	}
}
