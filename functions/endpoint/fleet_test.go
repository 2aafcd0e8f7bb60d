package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// With the fleet's variables, build serves a tenant of the emulator on
// /t/<tenant> next to the single secret on "/".
func TestBuildServesTheFleetsTenants(t *testing.T) {
	s := newStack(t)
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.sm.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	pair, err := keypair.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc := secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}},
		Key: secretdoc.NewKey(&keypair.Generated{Pair: pair, Method: keypair.MethodCrypto}, time.Now())}
	b, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("flowkey/tenants/acme"), SecretString: aws.String(string(b)),
		Tags: []types.Tag{{Key: aws.String("flowkey:fleet"), Value: aws.String("prod")}, {Key: aws.String("flowkey:tenant"), Value: aws.String("acme")}}}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvKeySecretID: "flowkey/key", config.EnvAppSecretID: "flowkey/app", config.EnvBackendURL: s.site.URL,
		config.EnvFleetName: "prod", config.EnvEndpointRingCache: "2"}
	cfg, err := config.LoadEndpoint(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	h, _, _, err := build(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for path, p := range map[string]*keypair.Pair{"/t/acme": pair, "/": s.pair} {
		req, err := flowclient.Encrypt(p.Public(), []byte(`{"version":"3.0","action":"INIT","flow_token":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		ev := functionURLEvent(t, req.Body, false)
		ev.RawPath = path
		resp, err := h.Handle(context.Background(), ev)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d, %v:\n%s", path, resp.StatusCode, err, logs.String())
		}
	}
	ev := functionURLEvent(t, []byte(`{}`), false)
	ev.RawPath = "/t/ghost"
	if resp, _ := h.Handle(context.Background(), ev); resp.StatusCode != 404 {
		t.Errorf("an unknown tenant: %d", resp.StatusCode)
	}
}
