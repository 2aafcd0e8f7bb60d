package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/flowcrypto"
	"github.com/flowkey/flowkey/internal/gateway"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keyring"
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

// samFunctions are template.yaml's functions, by logical ID, each with
// Globals.Function under its own properties (which override them).
func samFunctions(t *testing.T, tmpl map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] != "AWS::Serverless::Function" {
			continue
		}
		props := map[string]any{}
		if g, ok := tmpl["Globals"].(map[string]any); ok {
			if gf, ok := g["Function"].(map[string]any); ok {
				maps.Copy(props, gf)
			}
		}
		maps.Copy(props, r.(map[string]any)["Properties"].(map[string]any))
		out[id] = props
	}
	return out
}

// assertSAMFunctionMatches compares what the SAM function and the CDK
// function share: the runtime and sizing, tracing and the code's path.
func assertSAMFunctionMatches(t *testing.T, id string, props, cdk map[string]any, codePath string) {
	t.Helper()
	for _, k := range []string{"Runtime", "Architectures", "Handler", "Timeout", "MemorySize"} {
		assertEqual(t, "template.yaml "+id+" "+k, props[k], cdk[k])
	}
	assertEqual(t, "template.yaml "+id+" Tracing", props["Tracing"], cdk["TracingConfig"].(map[string]any)["Mode"])
	if got, want := props["CodeUri"], filepath.Clean(filepath.Join("infra", codePath)); got != want {
		t.Errorf("template.yaml %s CodeUri = %v, want %s (what infra/ deploys)", id, got, want)
	}
}

// The SAM functions and the CDK functions cannot drift apart: the rotator
// here, the endpoint in TestSAMEndpointMatchesStack.
func TestSAMTemplateMatchesStack(t *testing.T) {
	tmpl := readSAMTemplate(t)
	fns := samFunctions(t, tmpl)
	assertEqual(t, "template.yaml functions", slices.Sorted(maps.Keys(fns)), []string{"EndpointFunction", "RotatorFunction"})
	props := fns["RotatorFunction"]
	cdk := properties(resource(t, ids(t).fn))
	assertSAMFunctionMatches(t, "RotatorFunction", props, cdk, DefaultCodePath)

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

// Fleet mode deploys with infra/ only (README.md, "Fleet mode"):
// template.yaml and events/env.json declare none of its variables, so that
// a SAM deployment stays the single-secret stack it always was.
func TestSAMHasNoFleetMode(t *testing.T) {
	fleetVars := append(config.FleetNames(), config.EndpointFleetNames()...)
	for id, props := range samFunctions(t, readSAMTemplate(t)) {
		vars := props["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, n := range fleetVars {
			if _, ok := vars[n]; ok {
				t.Errorf("template.yaml %s declares %s: fleet mode is infra/'s only", id, n)
			}
		}
	}
	readme := readREADME(t)
	if i := strings.Index(readme, "## Fleet mode"); i < 0 || !strings.Contains(readme[i:], "CDK only") {
		t.Error("README.md's Fleet mode does not say that it deploys with the CDK only")
	}
}

// The custody roles of template.yaml and events/env.json are the roles
// infra/ creates for a stack of the default name in the placeholders'
// account and region, as the stack's rotator names them (its
// CUSTODY_KEY_* variables refer to the two roles; TestCustodyEnvironment),
// and CUSTODY_KEY_DELETION_DAYS is the stack's literal
// (TestSAMTemplateMatchesStack).
func TestSAMCustodyRoles(t *testing.T) {
	tmpl := readSAMTemplate(t)
	params := tmpl["Parameters"].(map[string]any)
	secret, ok := parseARN(params["SecretArn"].(map[string]any)["Default"].(string))
	if !ok {
		t.Fatal("template.yaml SecretArn default is not an ARN")
	}
	role := func(suffix string) string {
		return "arn:aws:iam::" + secret.account + ":role/" + roleName("", DefaultStackName, suffix, secret.region)
	}
	want := map[string]string{config.EnvCustodyKeyRotatorRoleARN: role(rotatorRoleSuffix), config.EnvCustodyKeyDecryptRoleARNs: role(endpointRoleSuffix)}
	vars := samFunctions(t, tmpl)["RotatorFunction"]["Environment"].(map[string]any)["Variables"].(map[string]any)
	b, err := os.ReadFile(filepath.Join("..", "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	for name, arn := range want {
		ref, _ := vars[name].(map[string]any)
		param, _ := ref["Ref"].(string)
		if got, _ := params[param].(map[string]any); got["Default"] != arn {
			t.Errorf("template.yaml %s = %v (parameter %q: %v), want a parameter defaulting to %s", name, vars[name], param, got, arn)
		}
		if got := file["RotatorFunction"][name]; got != arn {
			t.Errorf("events/env.json %s = %q, want %s", name, got, arn)
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

// events/env.json is the --env-vars file of make sam-invoke: for each of
// template.yaml's functions, every variable it declares, and valid.
func TestSAMEnvVarsFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	loaders := map[string]func(func(string) string) error{
		"RotatorFunction": func(getenv func(string) string) error { _, err := config.Load(getenv); return err },
		"EndpointFunction": func(getenv func(string) string) error {
			cfg, err := config.LoadEndpoint(getenv)
			if err == nil && cfg.SkipSignatureCheck {
				err = fmt.Errorf("the signature check is off")
			}
			return err
		},
	}
	fns := samFunctions(t, readSAMTemplate(t))
	assertEqual(t, "events/env.json functions", slices.Sorted(maps.Keys(file)), slices.Sorted(maps.Keys(fns)))
	for fn, vars := range file {
		declared, ok := fns[fn]["Environment"].(map[string]any)["Variables"].(map[string]any)
		if !ok {
			t.Errorf("events/env.json sets variables for %q, which template.yaml does not define", fn)
			continue
		}
		assertEqual(t, "events/env.json "+fn+" variable names", slices.Sorted(maps.Keys(vars)), slices.Sorted(maps.Keys(declared)))
		if err := loaders[fn](func(k string) string { return vars[k] }); err != nil {
			t.Errorf("events/env.json %s does not load: %v", fn, err)
		}
	}
}

// The endpoint's SAM function is the stack's: runtime, sizing and tracing,
// a Function URL of the same auth type and invoke mode, and the
// environment names of both stack variants (a backend function, a backend
// URL) together: every variable the endpoint reads but the switch that
// turns the signature check off.
func TestSAMEndpointMatchesStack(t *testing.T) {
	tmpl := readSAMTemplate(t)
	props := samFunctions(t, tmpl)["EndpointFunction"]
	samVars := props["Environment"].(map[string]any)["Variables"].(map[string]any)
	var want []string
	for _, n := range config.EndpointNames() {
		if n != config.EnvSkipSignatureCheck {
			want = append(want, n)
		}
	}
	assertEqual(t, "template.yaml EndpointFunction variable names", slices.Sorted(maps.Keys(samVars)), sorted(want))

	stackNames := map[string]bool{}
	for name, v := range map[string]variant{"endpoint": synthesized.endpoint, "platform": synthesized.platform} {
		e := endpointIDsOf(t, v)
		cdk := properties(resourceIn(t, v.template, e.fn))
		assertSAMFunctionMatches(t, "EndpointFunction", props, cdk, DefaultEndpointCodePath)
		url := properties(resourceIn(t, v.template, e.url))
		assertEqual(t, name+": template.yaml FunctionUrlConfig", props["FunctionUrlConfig"], map[string]any{"AuthType": url["AuthType"], "InvokeMode": url["InvokeMode"]})
		cdkVars := cdk["Environment"].(map[string]any)["Variables"].(map[string]any)
		for k, cv := range cdkVars {
			stackNames[k] = true
			sv, ok := samVars[k]
			if !ok {
				t.Errorf("%s: the stack sets %s, template.yaml does not", name, k)
			}
			// The defaults are the same literals; the secrets and the
			// backend are parameters.
			if s, literal := sv.(string); literal && s != cv {
				t.Errorf("%s: %s = %q in template.yaml but %v in the stack", name, k, s, cv)
			}
		}
	}
	assertEqual(t, "names the stack variants set", slices.Sorted(maps.Keys(stackNames)), sorted(want))
	params := tmpl["Parameters"].(map[string]any)
	if d, _ := params["AppSecretArn"].(map[string]any)["Default"].(string); !secretARNRE.MatchString(d) {
		t.Errorf("template.yaml AppSecretArn default %q is not a complete secret ARN", d)
	}
	if d, _ := params["BackendFunctionArn"].(map[string]any)["Default"].(string); !functionARNRE.MatchString(d) {
		t.Errorf("template.yaml BackendFunctionArn default %q is not a function ARN", d)
	}
}

// The endpoint's events are Function URL events (payload 2.0) as the
// handler receives them: a POST whose body is a well-formed envelope of
// zeros and whose X-Hub-Signature-256 is zeros, obvious placeholders that
// the endpoint answers 432, and a GET it answers 405.
func TestEndpointEvents(t *testing.T) {
	for step, method := range map[string]string{"endpoint-ping": "POST", "endpoint-get": "GET"} {
		b, err := os.ReadFile(filepath.Join("..", "events", step+".json"))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var ev events.LambdaFunctionURLRequest
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("events/%s.json: %v", step, err)
		}
		if ev.Version != "2.0" || ev.RequestContext.HTTP.Method != method || ev.RawPath != "/" || ev.IsBase64Encoded {
			t.Errorf("events/%s.json: version %q, method %q, path %q, base64 %v", step, ev.Version, ev.RequestContext.HTTP.Method, ev.RawPath, ev.IsBase64Encoded)
		}
		for k := range ev.Headers {
			if k != strings.ToLower(k) {
				t.Errorf("events/%s.json: header %q is not lower-case, as a Function URL sends it", step, k)
			}
		}
		if !strings.HasSuffix(ev.RequestContext.DomainName, ".lambda-url.us-east-1.on.aws") || ev.Headers["host"] != ev.RequestContext.DomainName {
			t.Errorf("events/%s.json: domain %q, host %q", step, ev.RequestContext.DomainName, ev.Headers["host"])
		}
		if method == "GET" {
			if ev.Body != "" || ev.Headers["x-hub-signature-256"] != "" {
				t.Errorf("events/%s.json: a GET with a body or a signature", step)
			}
			continue
		}
		if got := ev.Headers["x-hub-signature-256"]; got != "sha256="+strings.Repeat("0", 64) {
			t.Errorf("events/%s.json: X-Hub-Signature-256 %q, want the placeholder sha256=<64 zeros>", step, got)
		}
		env, err := flowcrypto.ParseEnvelope([]byte(ev.Body))
		if err != nil {
			t.Fatalf("events/%s.json: the body is not an envelope: %v", step, err)
		}
		for name, field := range map[string][]byte{"encrypted_aes_key": env.EncryptedAESKey, "initial_vector": env.IV[:], "encrypted_flow_data": env.EncryptedFlowData} {
			if !bytes.Equal(field, make([]byte, len(field))) {
				t.Errorf("events/%s.json: %s is not zeros: a placeholder must not look like a real request", step, name)
			}
		}
	}
}

// What `make sam-invoke STEP=endpoint-*` shows, through the real request
// path with Secrets Manager faked: the placeholder signature is refused
// (432) before any RSA operation, the GET is 405, and the same body signed
// with the app secret reaches decryption and is 421, since the zeros are
// encrypted to no key (infra/README.md, "Trying the functions with SAM").
func TestEndpointEventsAnswers(t *testing.T) {
	const appValue = "0123456789abcdef0123456789abcdef" // a stand-in, not a real app secret
	sm := secretsfake.New(t)
	sm.Add("flowkey/whatsapp-flows-key")
	sm.Put(sm.Add("flowkey/meta-app-secret"), "a1", aws.String(appValue), secretsfake.StageCurrent)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// The ring's wait for its refresh floor passes on a clock of the test's.
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		return ctx.Err()
	}
	ring, err := keyring.New(sm, keyring.Options{SecretID: "flowkey/whatsapp-flows-key", Logger: log, Now: clock, Sleep: sleep})
	if err != nil {
		t.Fatal(err)
	}
	store, err := appsecret.New(sm, appsecret.Options{SecretID: "flowkey/meta-app-secret", Logger: log, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	h, err := gateway.New(gateway.Options{Verifier: store, Keys: ring, Backend: noBackend{t}, Logger: log, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	event := func(step string) events.LambdaFunctionURLRequest {
		b, err := os.ReadFile(filepath.Join("..", "events", step+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	signed := event("endpoint-ping")
	signed.Headers["x-hub-signature-256"] = flowclient.Sign(appValue, []byte(signed.Body))
	for name, tc := range map[string]struct {
		ev   events.LambdaFunctionURLRequest
		want int
	}{
		"endpoint-ping": {event("endpoint-ping"), 432},
		"endpoint-get":  {event("endpoint-get"), 405},
		"endpoint-ping signed with the app secret": {signed, 421},
	} {
		resp, err := h.Handle(context.Background(), tc.ev)
		if err != nil || resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, %v; want %d", name, resp.StatusCode, err, tc.want)
		}
	}
}

// noBackend fails the test if the gateway calls it.
type noBackend struct{ t *testing.T }

func (b noBackend) Call(context.Context, *backend.Request) (*backend.Response, error) {
	b.t.Error("the backend was called")
	return nil, errors.New("no backend")
}
