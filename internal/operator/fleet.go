package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// FleetOptions configure the fleet (internal/fleet); the zero Name is the
// fleet off. Other zero values take the defaults noted.
type FleetOptions struct {
	// Name is the fleet's tag value (FLEET_NAME).
	Name string
	// SecretPrefix names the tenants' secrets (fleet.DefaultSecretPrefix).
	SecretPrefix string
	// TokenPrefix is where a tenant's own token secret must be
	// (fleet.DefaultTokenPrefix).
	TokenPrefix string
	// AppSecretPrefix is where a tenant's own Meta app secret must be; ""
	// refuses one (the fleet has one app secret).
	AppSecretPrefix string
	// KMSKeyID encrypts the tenants' secrets; "" is Secrets Manager's
	// default key of the account.
	KMSKeyID string
	// Window is each tenant's rotation window (fleet.DefaultWindow).
	Window time.Duration
	// Concurrency bounds the tenants a fleet status reads at once (8).
	Concurrency int
	// TenantTimeout bounds one tenant's read in a fleet status (60s); a
	// fleet status starts no tenant it could not give that much time.
	TenantTimeout time.Duration
	// PageSize is ListSecrets' MaxResults (100, its maximum).
	PageSize int
	// DefaultTokenSecretID is the function's ACCESS_TOKEN_SECRET_ID, the
	// token secret a tenant may use instead of one of its own.
	DefaultTokenSecretID string
}

// maxListPage is ListSecrets' largest page.
const maxListPage = 100

func (f *FleetOptions) defaults() {
	if f.SecretPrefix == "" {
		f.SecretPrefix = fleet.DefaultSecretPrefix
	}
	if f.TokenPrefix == "" {
		f.TokenPrefix = fleet.DefaultTokenPrefix
	}
	if f.Window <= 0 {
		f.Window = fleet.DefaultWindow
	}
	if f.Concurrency <= 0 {
		f.Concurrency = 8
	}
	if f.TenantTimeout <= 0 {
		f.TenantTimeout = time.Minute
	}
	if f.PageSize <= 0 || f.PageSize > maxListPage {
		f.PageSize = maxListPage
	}
}

func (f *FleetOptions) on() bool { return f.Name != "" }

// LambdaAPI is the part of the Lambda client a fleet status calls: an
// asynchronous invocation of this same function to continue.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// FleetMetrics receives what a fleet status counted: the tenants it read,
// and of them the unhealthy, the rotation-incomplete and the overdue ones.
// DriftedNumbers and DaysSinceLastRotation go through Metrics as for one
// secret: their sum and their maximum over the tenants.
type FleetMetrics interface {
	Tenants(checked, unhealthy, incomplete, overdue int)
}

// errFleetOff is a fleet command sent to a function whose fleet is off; a
// command parsed with the fleet's Syntax reaches it only when the two
// disagree.
var errFleetOff = &rotation.InputError{Field: "command", Problem: "needs the fleet, and this function's fleet is off (FLEET_NAME is empty)", Fix: fixFleetOff}

// secretOf is the secret a command names: its secret_id, its tenant's
// secret, or the function's SECRET_ID ("" for a fleet command).
func (o *Operator) secretOf(cmd Command) (string, error) {
	switch {
	case cmd.Tenant != "" && !o.opts.Fleet.on(), (fleetCommand(cmd.Name) || cmd.NextToken != "" || cmd.FleetCursor != "") && !o.opts.Fleet.on():
		return "", errFleetOff
	case cmd.Tenant != "":
		return fleet.SecretName(o.opts.Fleet.SecretPrefix, cmd.Tenant), nil
	case cmd.SecretID != "":
		return cmd.SecretID, nil
	case o.isFleetRun(cmd):
		return "", nil
	}
	return o.opts.SecretID, nil
}

func fleetCommand(name string) bool { return name == CommandEnroll || name == CommandUnenroll }

// isFleetRun is a command the fleet runs itself: enroll, unenroll, and a
// status that names no secret.
func (o *Operator) isFleetRun(cmd Command) bool {
	if !o.opts.Fleet.on() {
		return false
	}
	return fleetCommand(cmd.Name) || cmd.Name == CommandStatus && cmd.SecretID == "" && cmd.Tenant == ""
}

func (o *Operator) runFleet(ctx context.Context, log *slog.Logger, cmd Command) (report any, ok bool, err error) {
	switch cmd.Name {
	case CommandEnroll:
		var r *EnrollReport
		if r, err = o.enroll(ctx, log, cmd.Tenant, cmd.Config, cmd.DryRun); r != nil {
			report, ok = r, r.OK
		}
	case CommandUnenroll:
		var r *UnenrollReport
		if r, err = o.unenroll(ctx, log, cmd.Tenant, cmd.DryRun); r != nil {
			report, ok = r, r.OK
		}
	default:
		var r *FleetStatusReport
		if r, err = o.fleetStatus(ctx, log, cmd); r != nil {
			report, ok = r, r.OK
		}
	}
	return report, ok, err
}

// describeTenant reads a tenant's secret; ok false when it does not exist.
func (o *Operator) describeTenant(ctx context.Context, name string) (*keystate.Secret, bool, error) {
	sec, err := o.state.Describe(ctx, name)
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return sec, true, nil
}

// notInFleet says why sec is not a tenant of this fleet, or "".
func (o *Operator) notInFleet(sec *keystate.Secret) string {
	switch got, ok := sec.Tags[fleet.TagFleet]; {
	case !ok:
		return fmt.Sprintf("secret %s has no %s tag, so it is not a tenant of fleet %s", sec.ARN, fleet.TagFleet, o.opts.Fleet.Name)
	case got != o.opts.Fleet.Name:
		return fmt.Sprintf("secret %s is tagged %s=%q, so it is a tenant of another fleet, not of %s", sec.ARN, fleet.TagFleet, got, o.opts.Fleet.Name)
	}
	return ""
}

// checkTenant refuses a command about a tenant whose secret is missing or
// belongs to another fleet.
func (o *Operator) checkTenant(ctx context.Context, tenant, name string) error {
	sec, ok, err := o.describeTenant(ctx, name)
	switch {
	case err != nil:
		return err
	case !ok:
		return &rotation.InputError{Field: "tenant", Problem: fmt.Sprintf("%q has no secret %s", tenant, name),
			Fix: `enroll it with {"command":"enroll","tenant":"` + tenant + `","config":{...}}, or check the tenant ID`}
	}
	if why := o.notInFleet(sec); why != "" {
		return &rotation.InputError{Field: "tenant", Problem: fmt.Sprintf("%q: %s", tenant, why),
			Fix: `choose another tenant ID, or send "secret_id" to name the secret itself`}
	}
	return nil
}

// checkTenantConfig refuses what a tenant's configuration may not name:
// a token secret outside the fleet's token prefix (other than the
// function's own), an app secret outside the app secret prefix. The
// fleet's IAM reaches those prefixes only, so a configuration that named
// anything else would fail at every rotation or request instead.
func (o *Operator) checkTenantConfig(cfg secretdoc.Config) error {
	f := o.opts.Fleet
	var errs []error
	if id := cfg.AccessTokenSecretID; id != "" && id != f.DefaultTokenSecretID && !fleet.InPrefix(id, f.TokenPrefix) {
		errs = append(errs, &rotation.InputError{Field: "config.access_token_secret_id", Problem: "names a secret outside the fleet's token prefix " + f.TokenPrefix,
			Fix: fmt.Sprintf("store the tenant's Graph token under %s<name> (the rotator may read only that prefix), or leave it out to use the function's ACCESS_TOKEN_SECRET_ID", f.TokenPrefix)})
	}
	if id := cfg.AppSecretID; id != "" {
		switch {
		case f.AppSecretPrefix == "":
			errs = append(errs, &rotation.InputError{Field: "config.app_secret_id", Problem: "is set, and this fleet has one app secret for every tenant (FLEET_APP_SECRET_PREFIX is empty)",
				Fix: "leave it out (the endpoint checks every tenant with APP_SECRET_ID), or set the fleet's app secret prefix and store the tenant's app secret under it"})
		case !fleet.InPrefix(id, f.AppSecretPrefix):
			errs = append(errs, &rotation.InputError{Field: "config.app_secret_id", Problem: "names a secret outside the fleet's app secret prefix " + f.AppSecretPrefix,
				Fix: fmt.Sprintf("store the tenant's Meta app secret under %s<name> (the endpoint may read only that prefix)", f.AppSecretPrefix)})
		}
	}
	return errors.Join(errs...)
}

// checkTenantConfigRaw is checkTenantConfig of a command's configuration.
func (o *Operator) checkTenantConfigRaw(raw string) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return err
	}
	return o.checkTenantConfig(cfg)
}

// functionARN is this function's unqualified ARN: the one enroll names as
// the rotation function, and the one a fleet status invokes to continue.
func (o *Operator) functionARN(ctx context.Context) (string, error) {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.InvokedFunctionArn != "" {
		if arn, ok := fleet.UnqualifiedFunctionARN(lc.InvokedFunctionArn); ok {
			return arn, nil
		}
		return "", fmt.Errorf("the invocation's function ARN %q is not a Lambda function ARN; fix: run enroll in the rotator function", lc.InvokedFunctionArn)
	}
	if o.opts.FunctionARN != "" {
		return o.opts.FunctionARN, nil
	}
	return "", errors.New("this function's ARN is unknown (the invocation carries none); fix: send the command to the rotator function in Lambda, or under the Lambda RIE")
}
