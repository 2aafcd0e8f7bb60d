package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/secretdoc"
	"github.com/flowkey/flowkey/internal/tenants"
)

const betaAppValue = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

// fleetFixture serves tenant acme (AWSCURRENT pairs()[2], the fleet's app)
// and tenant beta (pairs()[1], its own app secret when perTenant) next to
// the single secret on "/".
func fleetFixture(t *testing.T, perTenant bool, capacity int) *fixture {
	t.Helper()
	f := newFixture(t)
	prefix := ""
	if perTenant {
		prefix = "flowkey/app-secrets/"
	}
	opts := f.h.opts
	c, err := tenants.New(f.sm, tenants.Options{FleetName: "prod", SecretPrefix: "flowkey/tenants/", AppSecretPrefix: prefix, Capacity: capacity,
		Ring: keyring.Options{TTL: ttl, Floor: floor, Logger: opts.Logger, Now: f.clock.Now,
			Sleep: func(ctx context.Context, d time.Duration) error { f.clock.Advance(d); return ctx.Err() }},
		AppSecret: appsecret.Options{TTL: ttl, Floor: floor, Logger: opts.Logger, Now: f.clock.Now}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts.Tenants = c
	if f.h, err = New(opts); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) addTenant(id string, p *keypair.Pair, appSecretID string) {
	f.t.Helper()
	s := f.sm.Add("flowkey/tenants/" + id)
	s.Tags = map[string]string{"flowkey:fleet": "prod", "flowkey:tenant": id}
	d := secretdoc.Document{SchemaVersion: 1, Config: secretdoc.Config{PhoneNumberIDs: []string{"106540352242922"}, AppSecretID: appSecretID},
		Key: secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, testNow)}
	b, err := d.Marshal()
	if err != nil {
		f.t.Fatal(err)
	}
	f.sm.Put(s, "v-"+id, aws.String(string(b)), secretsfake.StageCurrent)
}

func tenantEvent(path string, body []byte, secret string) events.LambdaFunctionURLRequest {
	ev := event(body)
	ev.RawPath, ev.RequestContext.HTTP.Path = path, path
	ev.Headers["x-hub-signature-256"] = flowclient.Sign(secret, body)
	return ev
}

const initReq = `{"version":"3.0","action":"INIT","flow_token":"ft"}`

func TestTenantPathsSelectTheTenantsKeys(t *testing.T) {
	f := fleetFixture(t, false, 8)
	f.addTenant("acme", pairs()[2], "")
	req := f.encrypt(2, initReq)
	f.open(req, f.do(tenantEvent("/t/acme", req.Body, appValue)))
	f.wantLog(map[string]any{"status": float64(200), "tenant": "acme", "key_label": "AWSCURRENT"})
	if b := f.backend.calls[len(f.backend.calls)-1]; b.Metadata.Tenant != "acme" {
		t.Errorf("backend metadata tenant %q", b.Metadata.Tenant)
	}
	// "/" is the single secret, as without a fleet.
	req = f.encrypt(0, initReq)
	f.open(req, f.do(tenantEvent("/", req.Body, appValue)))
	if _, ok := f.lastLog()["tenant"]; ok || f.backend.calls[len(f.backend.calls)-1].Metadata.Tenant != "" {
		t.Error("the single secret's request carries a tenant")
	}
	// A tenant's ring holds the tenant's keys only.
	req = f.encrypt(0, initReq)
	if resp := f.do(tenantEvent("/t/acme", req.Body, appValue)); resp.StatusCode != 421 {
		t.Errorf("the stack's key on acme's path: %d", resp.StatusCode)
	}
	if strings.Contains(f.emf.String(), "acme") {
		t.Error("a metric line names the tenant")
	}
}

func TestUnknownTenantsAre404OnlyToTheFleetsOwnRequests(t *testing.T) {
	f := fleetFixture(t, false, 8)
	f.addTenant("acme", pairs()[2], "")
	body := f.encrypt(2, initReq).Body
	for _, tc := range []struct {
		path, secret string
		status       int
		outcome      string
	}{
		{"/t/ghost", appValue, 404, "unknown_tenant"},
		{"/t/ghost", "wrong-secret", 432, "bad_signature"},
		{"/t/acme", "wrong-secret", 432, "bad_signature"},
		{"/x/acme", appValue, 404, "unknown_path"},
		{"/t/Acme", appValue, 404, "unknown_path"},
		{"/t/acme/", appValue, 404, "unknown_path"},
		{"/x/acme", "wrong-secret", 432, "bad_signature"},
	} {
		before := f.sm.Calls(secretsfake.OpDescribeSecret)
		resp := f.do(tenantEvent(tc.path, body, tc.secret))
		if resp.StatusCode != tc.status || resp.Body != "" {
			t.Errorf("%s signed with %s: %d %q, want %d", tc.path, tc.secret, resp.StatusCode, resp.Body, tc.status)
		}
		f.wantLog(map[string]any{"outcome": tc.outcome})
		// Unsigned traffic costs no lookup: one app secret for the fleet.
		if tc.status == 432 && f.sm.Calls(secretsfake.OpDescribeSecret) != before {
			t.Errorf("%s with a bad signature looked the tenant up", tc.path)
		}
	}
}

func TestTenantsWithTheirOwnAppSecret(t *testing.T) {
	f := fleetFixture(t, true, 8)
	f.addTenant("acme", pairs()[2], "")
	f.addTenant("beta", pairs()[1], "flowkey/app-secrets/beta")
	f.sm.Put(f.sm.Add("flowkey/app-secrets/beta"), "b1", aws.String(betaAppValue), secretsfake.StageCurrent)
	beta := f.encrypt(1, initReq)
	f.open(beta, f.do(tenantEvent("/t/beta", beta.Body, betaAppValue)))
	f.wantLog(map[string]any{"tenant": "beta", "status": float64(200)})
	// The fleet's app secret does not stand in for beta's own.
	if resp := f.do(tenantEvent("/t/beta", beta.Body, appValue)); resp.StatusCode != 432 {
		t.Errorf("beta signed with the fleet's app secret: %d", resp.StatusCode)
	}
	// acme names none: the fleet's checks it, and beta's does not.
	acme := f.encrypt(2, initReq)
	f.open(acme, f.do(tenantEvent("/t/acme", acme.Body, appValue)))
	if resp := f.do(tenantEvent("/t/acme", acme.Body, betaAppValue)); resp.StatusCode != 432 {
		t.Errorf("acme signed with beta's app secret: %d", resp.StatusCode)
	}
	// An unknown tenant: no app secret can check it, so 432 to anyone but the fleet.
	if resp := f.do(tenantEvent("/t/ghost", acme.Body, betaAppValue)); resp.StatusCode != 432 {
		t.Errorf("unknown tenant signed with beta's app secret: %d", resp.StatusCode)
	}
}

func TestATenantNamingAnAppSecretWithoutThePrefixIsUnverifiable(t *testing.T) {
	f := fleetFixture(t, false, 8)
	f.addTenant("beta", pairs()[1], "flowkey/app-secrets/beta")
	beta := f.encrypt(1, initReq)
	if resp := f.do(tenantEvent("/t/beta", beta.Body, appValue)); resp.StatusCode != 500 {
		t.Errorf("got %d", resp.StatusCode)
	}
	f.wantLog(map[string]any{"outcome": "signature_unverifiable", "tenant": "beta"})
}

func TestATenantWhoseRingCannotBeReadIs421(t *testing.T) {
	f := fleetFixture(t, false, 8)
	f.addTenant("acme", pairs()[2], "")
	f.sm.FailAlways(secretsfake.OpDescribeSecret, errors.New("connection reset"))
	req := f.encrypt(2, initReq)
	if resp := f.do(tenantEvent("/t/acme", req.Body, appValue)); resp.StatusCode != 421 {
		t.Errorf("got %d", resp.StatusCode)
	}
	f.wantLog(map[string]any{"outcome": "no_keys", "tenant": "acme"})
	f.sm.FailAlways(secretsfake.OpDescribeSecret, nil)
	f.clock.Advance(floor)
	f.open(req, f.do(tenantEvent("/t/acme", req.Body, appValue)))
}

// With room for one ring, traffic to two tenants in turn evicts and
// reloads each, and every request still succeeds.
func TestEvictedRingsReloadAndServe(t *testing.T) {
	f := fleetFixture(t, false, 1)
	f.addTenant("acme", pairs()[2], "")
	f.addTenant("beta", pairs()[1], "")
	for i, id := range []string{"acme", "beta", "acme", "beta"} {
		key := 2
		if id == "beta" {
			key = 1
		}
		req := f.encrypt(key, initReq)
		f.open(req, f.do(tenantEvent("/t/"+id, req.Body, appValue)))
		if n := f.sm.Calls(secretsfake.OpDescribeSecret); n < i+1 {
			t.Errorf("request %d: %d DescribeSecret, the ring was not reloaded", i, n)
		}
	}
}
