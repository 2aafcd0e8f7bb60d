package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

const appValue = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// stack is what build wires to: the Secrets Manager emulator with a key
// secret and an app secret, and a backend (HTTPS adapter: a loopback
// server; Lambda adapter: a server that speaks Lambda's Invoke API).
type stack struct {
	pair     *keypair.Pair
	sm, fn   *httptest.Server
	site     *httptest.Server
	invokes  int
	lastSig  string
	lastBody []byte
}

func newStack(t *testing.T) *stack {
	t.Helper()
	emu, err := secretsemu.New(secretsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{sm: httptest.NewServer(emu)}
	t.Cleanup(s.sm.Close)
	if s.pair, err = keypair.Generate(rand.Reader); err != nil {
		t.Fatal(err)
	}
	answer := func(w http.ResponseWriter, body []byte) {
		var req backend.Request
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":200,"response":{"screen":"SECOND","data":{"key_label":"` + req.Metadata.KeyLabel + `"}}}`))
	}
	s.site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.lastBody, _ = io.ReadAll(r.Body)
		s.lastSig = r.Header.Get(backend.SignatureHeader)
		answer(w, s.lastBody)
	}))
	t.Cleanup(s.site.Close)
	s.fn = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/flows-backend/invocations" ||
			r.Header.Get("X-Amz-Invocation-Type") != "RequestResponse" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
			return
		}
		s.invokes++
		body, _ := io.ReadAll(r.Body)
		answer(w, body)
	}))
	t.Cleanup(s.fn.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s.sm.URL)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", s.fn.URL)
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.sm.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	doc := secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}},
		Key: secretdoc.NewKey(&keypair.Generated{Pair: s.pair, Method: keypair.MethodCrypto}, time.Now())}
	b, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"flowkey/key": string(b), "flowkey/app": `{"app_secret":"` + appValue + `"}`} {
		if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// functionURLEvent is a POST as a Function URL delivers it (payload format
// 2.0): lower-cased headers, the body raw or base64.
func functionURLEvent(t *testing.T, body []byte, b64 bool) events.LambdaFunctionURLRequest {
	t.Helper()
	encoded, _ := json.Marshal(string(body))
	if b64 {
		encoded, _ = json.Marshal(base64.StdEncoding.EncodeToString(body))
	}
	raw := `{"version":"2.0","rawPath":"/","rawQueryString":"",
	  "headers":{"content-type":"application/json","x-hub-signature-256":"` + flowclient.Sign(appValue, body) + `","host":"abc.lambda-url.us-east-1.on.aws","user-agent":"facebookexternalua"},
	  "requestContext":{"accountId":"anonymous","apiId":"abc","domainName":"abc.lambda-url.us-east-1.on.aws","domainPrefix":"abc",
	    "http":{"method":"POST","path":"/","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"facebookexternalua"},
	    "requestId":"0e6c2b1a-url","routeKey":"$default","stage":"$default","time":"25/Nov/2026:10:00:00 +0000","timeEpoch":1795687200000},
	  "body":` + string(encoded) + `,"isBase64Encoded":` + map[bool]string{true: "true", false: "false"}[b64] + `}`
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestBuildWiresTheRealClients(t *testing.T) {
	s := newStack(t)
	for name, env := range map[string]map[string]string{
		"HTTPS backend":  {config.EnvBackendURL: s.site.URL + "/flow"},
		"Lambda backend": {config.EnvBackendFunction: "flows-backend"},
	} {
		t.Run(name, func(t *testing.T) {
			env[config.EnvKeySecretID], env[config.EnvAppSecretID] = "flowkey/key", "flowkey/app"
			cfg, err := config.LoadEndpoint(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			logs := &logbuf.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, nil))
			h, ring, store, err := build(context.Background(), cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			warm(context.Background(), log, ring, store)
			if strings.Contains(logs.String(), "not loaded yet") {
				t.Fatalf("warm-up failed:\n%s", logs.String())
			}
			for _, b64 := range []bool{false, true} {
				req, err := flowclient.Encrypt(s.pair.Public(), []byte(`{"version":"3.0","action":"INIT","flow_token":"t"}`))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := h.Handle(context.Background(), functionURLEvent(t, req.Body, b64))
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("got %d, %v:\n%s", resp.StatusCode, err, logs.String())
				}
				plain, err := req.Decrypt(resp.Body)
				if err != nil || string(plain) != `{"screen":"SECOND","data":{"key_label":"AWSCURRENT"}}` {
					t.Fatalf("answer %q, %v", plain, err)
				}
			}
		})
	}
	if s.invokes != 2 {
		t.Errorf("the Lambda backend was invoked %d times, want 2", s.invokes)
	}
	if s.lastSig != flowclient.Sign(appValue, s.lastBody) {
		t.Errorf("the HTTPS backend got signature %q", s.lastSig)
	}
}

func TestAStackWithoutSecretsStillStarts(t *testing.T) {
	s := newStack(t)
	env := map[string]string{config.EnvKeySecretID: "flowkey/missing", config.EnvAppSecretID: "flowkey/missing-app", config.EnvBackendURL: s.site.URL}
	cfg, err := config.LoadEndpoint(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h, ring, store, err := build(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	warm(context.Background(), log, ring, store)
	if strings.Count(logs.String(), "not loaded yet") != 2 {
		t.Fatalf("warm-up failures are not reported:\n%s", logs.String())
	}
	// The request path answers (500: the app secret is unreadable) instead of crashing.
	req, _ := flowclient.Encrypt(s.pair.Public(), []byte(`{"version":"3.0","action":"ping"}`))
	if resp, _ := h.Handle(context.Background(), functionURLEvent(t, req.Body, false)); resp.StatusCode != 500 {
		t.Fatalf("got %d", resp.StatusCode)
	}
}
