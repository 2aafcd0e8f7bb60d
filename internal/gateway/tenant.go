package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/tenants"
)

// Tenants resolves the tenant a request's path names (a *tenants.Cache).
type Tenants interface {
	// Tenant returns the tenant's keys; the error is tenants.ErrUnknown
	// for a tenant the fleet does not have.
	Tenant(ctx context.Context, id string) (*tenants.Tenant, error)
	// PerTenantAppSecrets reports whether a tenant may name its own app
	// secret; when not, every request is checked with Options.Verifier
	// before its tenant is even looked up.
	PerTenantAppSecrets() bool
	// Verifier returns the store of a tenant's own app secret.
	Verifier(appSecretID string) (*appsecret.Store, error)
}

// tenantPath is the path prefix of a tenant's endpoint: /t/<tenant>.
const tenantPath = "/t/"

// keysFor authenticates a request and returns the keys that decrypt it:
// without a fleet, or on the path "/", Options.Keys after the check with
// Options.Verifier, exactly as before; on /t/<tenant>, the tenant's ring
// after the check with its app secret (see "Fleet" in the package
// documentation). o carries the tenant for the log line.
func (h *Handler) keysFor(ctx context.Context, ev events.LambdaFunctionURLRequest, body []byte) (Decrypter, outcome, bool) {
	path := ev.RawPath
	if h.opts.Tenants == nil || path == "" || path == "/" {
		if o, ok := h.verify(ctx, h.opts.Verifier, body, ev.Headers); !ok {
			return nil, o, false
		}
		return h.opts.Keys, outcome{}, true
	}
	id, isTenant := strings.CutPrefix(path, tenantPath)
	o := outcome{}
	if isTenant && fleet.ValidTenantID(id) {
		o.tenant = id
	}
	// The fleet's app secret is checked first: with no tenant of its own
	// app, a request it does not sign is refused before any lookup, so
	// unauthenticated traffic costs no Secrets Manager call and learns
	// nothing of which tenants exist.
	fleetOK, fleetFail := true, outcome{}
	if !h.opts.SkipSignatureCheck {
		fleetFail, fleetOK = h.verify(ctx, h.opts.Verifier, body, ev.Headers)
	}
	notFound := func(name, reason string) (Decrypter, outcome, bool) {
		if !fleetOK {
			return nil, with(fleetFail, o.tenant), false
		}
		return nil, outcome{status: http.StatusNotFound, name: name, reason: reason, tenant: o.tenant}, false
	}
	if o.tenant == "" {
		return notFound("unknown_path", "the path is neither / nor /t/<tenant>")
	}
	if !fleetOK && !h.opts.Tenants.PerTenantAppSecrets() {
		return nil, with(fleetFail, o.tenant), false
	}
	t, err := h.opts.Tenants.Tenant(ctx, id)
	switch {
	case errors.Is(err, tenants.ErrUnknown):
		return notFound("unknown_tenant", "the fleet has no such tenant")
	case err != nil && !fleetOK:
		return nil, outcome{status: http.StatusInternalServerError, name: "signature_unverifiable", reason: "the tenant's configuration cannot be read", tenant: o.tenant}, false
	case err != nil:
		// Signed by the fleet's app: the keys are what cannot be read, as
		// on the single-secret path (the ring retries on its next use).
		return nil, outcome{status: 421, name: "no_keys", reason: "the tenant's key ring cannot be read", tenant: o.tenant}, false
	}
	if o, ok := h.verifyTenant(ctx, t, body, ev.Headers, fleetOK, fleetFail); !ok {
		return nil, with(o, id), false
	}
	return t, o, true
}

// verifyTenant checks a found tenant's request with the app secret its
// configuration names, or with the fleet's when it names none.
func (h *Handler) verifyTenant(ctx context.Context, t *tenants.Tenant, body []byte, headers map[string]string, fleetOK bool, fleetFail outcome) (outcome, bool) {
	if h.opts.SkipSignatureCheck {
		return outcome{}, true
	}
	unverifiable := func(reason string) (outcome, bool) {
		return outcome{status: http.StatusInternalServerError, name: "signature_unverifiable", reason: reason}, false
	}
	appID, known := t.AppSecret()
	switch {
	case !known && h.opts.Tenants.PerTenantAppSecrets():
		return unverifiable("the tenant's configuration, which names its app secret, cannot be read")
	case appID == "" && !fleetOK:
		return fleetFail, false
	case appID == "":
		return outcome{}, true
	case !h.opts.Tenants.PerTenantAppSecrets():
		return unverifiable("the tenant names an app secret, and the endpoint has no FLEET_APP_SECRET_PREFIX")
	}
	store, err := h.opts.Tenants.Verifier(appID)
	if err != nil {
		return unverifiable("the tenant's app secret is outside FLEET_APP_SECRET_PREFIX")
	}
	return h.verify(ctx, store, body, headers)
}

// verify checks X-Hub-Signature-256 with v: 432 when it does not match,
// 500 when the app secret cannot be read.
func (h *Handler) verify(ctx context.Context, v Verifier, body []byte, headers map[string]string) (outcome, bool) {
	if h.opts.SkipSignatureCheck {
		return outcome{}, true
	}
	if err := v.Verify(ctx, body, header(headers, signatureHeader)); err != nil {
		var ue *appsecret.UnavailableError
		if errors.As(err, &ue) {
			return outcome{status: http.StatusInternalServerError, name: "signature_unverifiable", reason: "the app secret cannot be read"}, false
		}
		return outcome{status: 432, name: "bad_signature", reason: signatureReason(err)}, false
	}
	return outcome{}, true
}

func with(o outcome, tenant string) outcome {
	o.tenant = tenant
	return o
}
