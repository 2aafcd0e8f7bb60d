package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Fleet mode on the local stack (issue 13): with Options.Fleet, both
// functions run with the fleet's variables, the Graph simulator holds one
// WABA per tenant with numbers of its own (graphsim.AddDemoWABA) and a
// token that reaches only that WABA, stored in the tenant's token secret
// under fleet.DefaultTokenPrefix, and the rotator reaches Lambda's Invoke
// API (AWS_ENDPOINT_URL_LAMBDA) for a fleet status's asynchronous
// continuation. The tenants are not enrolled: EnrollTenant does that,
// through the function, as an operator does.

// DefaultFleetName is the fleet's FLEET_NAME unless Fleet.Name says
// otherwise: the local stack's name.
const DefaultFleetName = "flowkey-local"

// RIEFunctionARN is the rotator's ARN as the pinned RIE puts it in the
// Lambda context, and so the ARN enroll turns a tenant's rotation on with
// and a fleet status continues with. That RIE
// (internal/lambda/rie/handlers.go) writes region us-east-1 and account
// 012345678912 whatever the environment says (AWS_REGION and
// AWS_ACCOUNT_ID are read only by its managed-instances variant), so it is
// not FunctionARN. The rotation driver and the Lambda API accept both.
const RIEFunctionARN = "arn:aws:lambda:us-east-1:012345678912:function:flowkey-rotator"

// FleetOptions configure a fleet on the local stack. Zero values take the
// defaults noted.
type FleetOptions struct {
	// Tenants is the number of tenants (1..100000), TenantID(0) to
	// TenantID(Tenants-1).
	Tenants int
	// Numbers is each tenant's phone numbers (2).
	Numbers int
	// Name is FLEET_NAME (DefaultFleetName).
	Name string
	// StatusConcurrency is FLEET_STATUS_CONCURRENCY (the product's default).
	StatusConcurrency int
	// RingCache is the endpoint's ENDPOINT_RING_CACHE (at least Tenants, so
	// that every tenant's ring stays loaded; the product's default 256
	// when that is more).
	RingCache int
}

// Tenant is one tenant of the local fleet.
type Tenant struct {
	ID     string
	WABAID string
	// Numbers are the tenant's WABA's phone numbers.
	Numbers []string
	// SecretName is the tenant's key secret, once enrolled.
	SecretName string
	// TokenSecretName holds the tenant's own Graph token, which reaches
	// only its WABA.
	TokenSecretName string
}

// Config is the configuration EnrollTenant enrolls the tenant with: its
// numbers, and its own token secret.
func (t Tenant) Config() secretdoc.Config {
	return secretdoc.Config{PhoneNumberIDs: append([]string(nil), t.Numbers...), AccessTokenSecretID: t.TokenSecretName}
}

// TenantID is the i-th tenant's ID (from 0): "tenant-0001" and on.
func TenantID(i int) string { return fmt.Sprintf("tenant-%04d", i+1) }

// TenantWABAID is the i-th tenant's WABA: 16 digits, so that it never
// meets the 15-digit phone number IDs of graphsim.FleetNumbers.
func TenantWABAID(i int) string { return strconv.FormatInt(1_000_000_000_000_000+int64(i), 10) }

// fleetState is the running fleet: its tenants and the token each
// currently has.
type fleetState struct {
	opts    FleetOptions
	tenants []Tenant
	byID    map[string]int

	mu     sync.Mutex
	tokens map[string]int // tenant: the generation of its token
}

func (o *FleetOptions) defaults() error {
	if o.Tenants < 1 || o.Tenants > config.MaxEndpointRingCache {
		return fmt.Errorf("stack: Fleet.Tenants is %d; use 1 to %d", o.Tenants, config.MaxEndpointRingCache)
	}
	if o.Numbers == 0 {
		o.Numbers = 2
	}
	if o.Name == "" {
		o.Name = DefaultFleetName
	}
	if o.StatusConcurrency == 0 {
		o.StatusConcurrency = config.DefaultFleetStatusConcurrency
	}
	if o.RingCache == 0 {
		o.RingCache = max(o.Tenants, config.DefaultEndpointRingCache)
	}
	return nil
}

// fleetFunctionEnv is the rotator's fleet environment: every variable of
// config.FleetNames() but FLEET_APP_SECRET_PREFIX (one app secret for the
// fleet), and the Lambda API for the continuation.
func fleetFunctionEnv(o FleetOptions, kmsKeyARN, lambdaURL string) map[string]string {
	return map[string]string{
		config.EnvFleetName:              o.Name,
		config.EnvFleetSecretPrefix:      fleet.DefaultSecretPrefix,
		config.EnvFleetTokenPrefix:       fleet.DefaultTokenPrefix,
		config.EnvFleetKMSKeyID:          kmsKeyARN,
		config.EnvFleetRotationWindow:    fleet.DefaultWindow.String(),
		config.EnvFleetStatusConcurrency: strconv.Itoa(o.StatusConcurrency),
		"AWS_ENDPOINT_URL_LAMBDA":        lambdaURL,
	}
}

// fleetEndpointEnv is the endpoint's: config.EndpointFleetNames() but the
// app secret prefix.
func fleetEndpointEnv(o FleetOptions) map[string]string {
	return map[string]string{
		config.EnvFleetName:         o.Name,
		config.EnvFleetSecretPrefix: fleet.DefaultSecretPrefix,
		config.EnvEndpointRingCache: strconv.Itoa(o.RingCache),
	}
}

// listenLambda opens the rotator's Lambda API listener before the function
// starts, whose environment names it; startFleet serves it.
func (s *Stack) listenLambda() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.lambdaListener = l
	return "http://" + l.Addr().String(), nil
}

// startFleet serves the rotator's Lambda API and creates the tenants'
// WABAs, tokens and token secrets.
func (s *Stack) startFleet(ctx context.Context) error {
	if err := s.serveOn(s.lambdaListener, s.newInvokeAPI(s.Invoker, "flowkey-rotator", FunctionARN, RIEFunctionARN)); err != nil {
		return err
	}
	f := s.fleet
	for i := range f.opts.Tenants {
		t := Tenant{ID: TenantID(i), WABAID: TenantWABAID(i)}
		t.SecretName = fleet.SecretName(fleet.DefaultSecretPrefix, t.ID)
		t.TokenSecretName = fleet.DefaultTokenPrefix + t.ID
		nums, err := s.Graph.AddDemoWABA(t.WABAID, f.opts.Numbers)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		for _, n := range nums {
			t.Numbers = append(t.Numbers, n.ID)
		}
		tok := s.tenantToken(t.ID, 0)
		if err := s.Graph.AddToken(tok, t.WABAID); err != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		if _, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(t.TokenSecretName), SecretString: aws.String(tok)}); err != nil {
			return fmt.Errorf("tenant %s: create its token secret: %w", t.ID, err)
		}
		f.byID[t.ID] = len(f.tenants)
		f.tenants = append(f.tenants, t)
	}
	return nil
}

// tenantToken is a tenant's token of generation gen. It starts with the
// stack's default token, so that the scans of the processes' output for
// that token find these too.
func (s *Stack) tenantToken(tenant string, gen int) string {
	return fmt.Sprintf("%s-%s-%d", s.opts.GraphToken, tenant, gen)
}

// errNoFleet is a fleet helper called on a stack without Options.Fleet.
var errNoFleet = errors.New("stack: the fleet is off; start the stack with Options.Fleet")

// Tenants are the fleet's tenants, in order.
func (s *Stack) Tenants() []Tenant {
	if s.fleet == nil {
		return nil
	}
	return append([]Tenant(nil), s.fleet.tenants...)
}

// Tenant is the tenant with ID id.
func (s *Stack) Tenant(id string) (Tenant, bool) {
	if s.fleet == nil {
		return Tenant{}, false
	}
	i, ok := s.fleet.byID[id]
	if !ok {
		return Tenant{}, false
	}
	return s.fleet.tenants[i], true
}

// RevokeTenantToken revokes the tenant's token at Graph, as the business
// does when it removes the partner's access: Graph answers it with 190.
func (s *Stack) RevokeTenantToken(tenant string) error {
	if s.fleet == nil {
		return errNoFleet
	}
	s.fleet.mu.Lock()
	gen := s.fleet.tokens[tenant]
	s.fleet.mu.Unlock()
	return s.Graph.RevokeToken(s.tenantToken(tenant, gen))
}

// ReissueTenantToken gives the tenant a new token for its WABA, as a new
// Embedded Signup does, and stores it in its token secret.
func (s *Stack) ReissueTenantToken(ctx context.Context, tenant string) error {
	t, ok := s.Tenant(tenant)
	if !ok {
		return fmt.Errorf("stack: no tenant %q", tenant)
	}
	s.fleet.mu.Lock()
	s.fleet.tokens[tenant]++
	gen := s.fleet.tokens[tenant]
	s.fleet.mu.Unlock()
	tok := s.tenantToken(tenant, gen)
	if err := s.Graph.AddToken(tok, t.WABAID); err != nil {
		return err
	}
	_, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(t.TokenSecretName), SecretString: aws.String(tok)})
	return err
}

// Command invokes the rotator with an operator command (the JSON payload)
// and decodes its answer into out, as `make <command> LOCAL=1` does.
func (s *Stack) Command(ctx context.Context, payload any, out any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	res, err := s.Invoker.Invoke(ctx, FunctionARN, b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("stack: the function's answer is not a report: %w", err)
	}
	return nil
}

// EnrollTenant enrolls the tenant through the function with its Config:
// {"command":"enroll","tenant":...,"config":...,"dry_run":...}.
func (s *Stack) EnrollTenant(ctx context.Context, tenant string, dryRun bool) (*operator.EnrollReport, error) {
	t, ok := s.Tenant(tenant)
	if !ok {
		return nil, fmt.Errorf("stack: no tenant %q", tenant)
	}
	return s.EnrollTenantConfig(ctx, tenant, t.Config(), dryRun)
}

// EnrollTenantConfig is EnrollTenant with another configuration.
func (s *Stack) EnrollTenantConfig(ctx context.Context, tenant string, cfg secretdoc.Config, dryRun bool) (*operator.EnrollReport, error) {
	var r operator.EnrollReport
	err := s.Command(ctx, map[string]any{"command": operator.CommandEnroll, "tenant": tenant, "config": cfg, "dry_run": dryRun}, &r)
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", tenant, err)
	}
	return &r, nil
}

// UnenrollTenant turns the tenant's rotation off through the function.
func (s *Stack) UnenrollTenant(ctx context.Context, tenant string, dryRun bool) (*operator.UnenrollReport, error) {
	var r operator.UnenrollReport
	if err := s.Command(ctx, map[string]any{"command": operator.CommandUnenroll, "tenant": tenant, "dry_run": dryRun}, &r); err != nil {
		return nil, fmt.Errorf("unenroll %s: %w", tenant, err)
	}
	return &r, nil
}

// FleetStatus runs {"command":"status"}: the fleet status, from its first
// tenant. Where one invocation is not enough, the function continues in
// Event invocations of itself; AsyncInvocations waits for them.
func (s *Stack) FleetStatus(ctx context.Context) (*operator.FleetStatusReport, error) {
	var r operator.FleetStatusReport
	if err := s.Command(ctx, map[string]any{"command": operator.CommandStatus}, &r); err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	return &r, nil
}

// RotateTenant starts a rotation of the tenant's secret as its schedule
// would (RotateSecret with the rotation configuration enroll set), and
// returns the secret's ARN and the rotation's token for WaitRotation.
func (s *Stack) RotateTenant(ctx context.Context, tenant string) (arn, token string, err error) {
	t, ok := s.Tenant(tenant)
	if !ok {
		return "", "", fmt.Errorf("stack: no tenant %q", tenant)
	}
	out, err := s.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(t.SecretName)})
	if err != nil {
		return "", "", fmt.Errorf("rotate %s: %w", tenant, err)
	}
	return aws.ToString(out.ARN), aws.ToString(out.VersionId), nil
}
