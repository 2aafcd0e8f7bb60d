// Command endpoint is the flowkey Flows endpoint Lambda, served by a Lambda
// Function URL. It only reads the configuration, builds the clients, loads
// the keys and the app secret once (so that the first request does not wait
// for them) and starts the Lambda loop; the request path lives in
// internal/gateway. Settings, status codes and the backend contract:
// functions/endpoint/README.md.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/appsecret"
	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/gateway"
	"github.com/flowkey/flowkey/internal/keyring"
	"github.com/flowkey/flowkey/internal/metrics"
	"github.com/flowkey/flowkey/internal/tenants"
)

// The SDK clients and the packages' types must satisfy the interfaces the
// packages declare.
var (
	_ keyring.SecretsAPI   = (*secretsmanager.Client)(nil)
	_ appsecret.SecretsAPI = (*secretsmanager.Client)(nil)
	_ backend.LambdaAPI    = (*lambdasdk.Client)(nil)
	_ backend.Signer       = (*appsecret.Store)(nil)
	_ gateway.Verifier     = (*appsecret.Store)(nil)
	_ gateway.Decrypter    = (*keyring.Ring)(nil)
	_ gateway.Metrics      = (*metrics.Endpoint)(nil)
	_ custody.DecryptAPI   = (*kms.Client)(nil)
	_ keyring.KMSDecrypter = (*custody.Decrypter)(nil)
	_ tenants.SecretsAPI   = (*secretsmanager.Client)(nil)
	_ gateway.Tenants      = (*tenants.Cache)(nil)
)

// warmTimeout bounds the start-up loads: a slow Secrets Manager must not
// hold the cold start for long, since the first request loads again anyway.
const warmTimeout = 3 * time.Second

func main() {
	cfg, err := config.LoadEndpoint(os.Getenv)
	if err != nil {
		fail(slog.New(slog.NewJSONHandler(os.Stderr, nil)), "invalid configuration", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx := context.Background()
	h, ring, store, err := build(ctx, cfg, log)
	if err != nil {
		fail(log, "start-up failed", err)
	}
	warm(ctx, log, ring, store)
	lambda.Start(h.Handle)
}

func build(ctx context.Context, cfg config.Endpoint, log *slog.Logger) (*gateway.Handler, *keyring.Ring, *appsecret.Store, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	// Always built, for the versions whose key is held by KMS (a client
	// makes no request until one is used; AWS_ENDPOINT_URL_KMS points it
	// at an emulator). No SDK retries: the Decrypter retries a throttled
	// request once itself, within the request's time.
	kc := kms.NewFromConfig(awsCfg, func(o *kms.Options) { o.RetryMaxAttempts = 1 })
	ringOpts := keyring.Options{TTL: cfg.KeyringTTL, Floor: cfg.KeyringRefreshFloor, Logger: log,
		KMS: custody.NewDecrypter(kc, custody.DecrypterOptions{Logger: log})}
	single := ringOpts
	single.SecretID = cfg.KeySecretID
	ring, err := keyring.New(sm, single)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := gateway.Options{
		SkipSignatureCheck: cfg.SkipSignatureCheck,
		Keys:               ring,
		BackendTimeout:     cfg.BackendTimeout,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		Logger:             log,
		// The Lambda runtime (and the RIE) sets the function's name: the
		// metrics' one dimension.
		Metrics: metrics.NewEndpoint(os.Stdout, os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), nil),
	}
	if f := cfg.Fleet; f.On() {
		// The tenants' rings, each loaded on its first request (no warm-up:
		// which tenants have traffic is not known at start-up).
		opts.Tenants, err = tenants.New(sm, tenants.Options{FleetName: f.Name, SecretPrefix: f.SecretPrefix, AppSecretPrefix: f.AppSecretPrefix,
			Capacity: f.RingCache, Ring: ringOpts, AppSecret: appsecret.Options{TTL: cfg.KeyringTTL, Logger: log}})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	var store *appsecret.Store
	var signer backend.Signer
	if cfg.AppSecretID != "" {
		if store, err = appsecret.New(sm, appsecret.Options{SecretID: cfg.AppSecretID, TTL: cfg.KeyringTTL, Logger: log}); err != nil {
			return nil, nil, nil, err
		}
		opts.Verifier, signer = store, store
	}
	if cfg.BackendFunction != "" {
		// No retries: a data_exchange need not be idempotent, and the
		// deadline leaves no time for a second call.
		lc := lambdasdk.NewFromConfig(awsCfg, func(o *lambdasdk.Options) { o.RetryMaxAttempts = 1 })
		opts.Backend, err = backend.NewLambda(lc, cfg.BackendFunction)
	} else {
		opts.Backend, err = backend.NewHTTPS(&http.Client{}, cfg.BackendURL, signer)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := gateway.New(opts)
	if err != nil {
		return nil, nil, nil, err
	}
	return h, ring, store, nil
}

// warm loads the keys and the app secret before the first request. A
// failure is logged, not fatal: the first request tries again, and an
// outage of Secrets Manager must not turn into a crash loop.
func warm(ctx context.Context, log *slog.Logger, ring *keyring.Ring, store *appsecret.Store) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	if err := ring.Refresh(ctx); err != nil {
		log.Warn("start-up: the key ring is not loaded yet; the first request tries again", "error", err.Error())
	}
	if store == nil {
		return
	}
	if err := store.Load(ctx); err != nil {
		log.Warn("start-up: the app secret is not loaded yet; the first request tries again", "error", err.Error())
	}
}

// fail reports a start-up error and exits, so Lambda records an init
// failure that names the problem.
func fail(log *slog.Logger, msg string, err error) {
	log.Error(msg, "error", err.Error())
	os.Exit(1)
}
