// Command rotator is the flowkey rotation Lambda. It only reads the
// configuration, builds the clients and starts the Lambda loop; the
// rotation lives in internal/rotation.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	lambdasdk "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/config"
	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/dispatch"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/metrics"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/rotation"
)

// The SDK clients must satisfy the interfaces the packages declare.
var (
	_ keystate.SecretsAPI   = (*secretsmanager.Client)(nil)
	_ keystate.GraphAPI     = (*graph.Client)(nil)
	_ rotation.SecretsAPI   = (*secretsmanager.Client)(nil)
	_ keypair.KMSAPI        = (*kms.Client)(nil)
	_ custody.KMSAPI        = (*kms.Client)(nil)
	_ rotation.GraphAPI     = (*graph.Client)(nil)
	_ operator.SecretsAPI   = (*secretsmanager.Client)(nil)
	_ operator.GraphAPI     = (*graph.Client)(nil)
	_ operator.LambdaAPI    = (*lambdasdk.Client)(nil)
	_ operator.Metrics      = (*metrics.EMF)(nil)
	_ operator.FleetMetrics = (*metrics.EMF)(nil)
	// The runtime passes a lambda.Handler the raw payload: dispatch reads
	// it strictly, not the runtime's first-value decoder.
	_ lambda.Handler = (*dispatch.Handler)(nil)
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fail(slog.New(slog.NewJSONHandler(os.Stderr, nil)), "invalid configuration", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	h, err := build(context.Background(), cfg, log)
	if err != nil {
		fail(log, "start-up failed", err)
	}
	lambda.Start(h)
}

func build(ctx context.Context, cfg config.Config, log *slog.Logger) (*dispatch.Handler, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	// The Lambda runtime (and the RIE) sets the function's name; it is the
	// metrics' one dimension and goes into the commands reports advise.
	fn := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	emf := metrics.New(os.Stdout, fn, nil)
	// KMS clients for GenerateDataKeyPair (KMS_KEY_ID) and for the custody
	// keys of secrets in KMS custody; neither makes a request until a
	// secret needs one, so a PEM-only deploy calls KMS only for KMS_KEY_ID.
	kc := kms.NewFromConfig(awsCfg, func(o *kms.Options) { o.Retryer = stepRetryer() })
	var keys rotation.KeyGenerator = keypair.LocalGenerator{}
	if cfg.KMSKeyID != "" {
		keys = keypair.NewKMSGenerator(kc, cfg.KMSKeyID)
	}
	// custody retries throttling itself, with backoff inside the step's
	// budget: the SDK's own retries under it would multiply the requests
	// against a request quota that is already exhausted.
	cust, err := custody.New(kms.NewFromConfig(awsCfg, func(o *kms.Options) { o.RetryMaxAttempts = 1 }), custody.Options{
		RotatorRoleARN:  cfg.CustodyKeyRotatorRoleARN,
		DecryptRoleARNs: cfg.CustodyKeyDecryptRoleARNs,
		DeletionDays:    cfg.CustodyKeyDeletionDays,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}
	// Graph has no reason to redirect; a 30x is reported, never followed.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	gc, err := graph.New(hc, graph.Options{
		BaseURL:        cfg.GraphBaseURL,
		MaxAttempts:    cfg.GraphMaxAttempts,
		RequestTimeout: cfg.GraphRequestTimeout,
		Observe:        emf.ObserveGraph,
	})
	if err != nil {
		return nil, err
	}
	sm := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) { o.Retryer = stepRetryer() })
	// One Reader for the steps and the commands: a status judges a number
	// exactly as testSecret does.
	state, err := keystate.New(sm, gc, keystate.Options{
		AccessTokenSecretID: cfg.AccessTokenSecretID,
		GraphVersion:        cfg.GraphVersion,
	})
	if err != nil {
		return nil, err
	}
	// The time plan config.Load checked is the one the steps keep.
	rot, err := rotation.New(state, sm, keys, gc, rotation.Options{
		Concurrency:     cfg.GraphConcurrency,
		VerifyTimeout:   cfg.VerifyTimeout,
		RollbackReserve: cfg.RollbackReserve(),
		ReportReserve:   config.ReportReserve,
		ReadTimeout:     cfg.GraphRequestTimeout,
		Logger:          log,
		Metrics:         emf,
		Custody:         cust,
	})
	if err != nil {
		return nil, err
	}
	opts := operator.Options{
		SecretID:     cfg.SecretID,
		FunctionName: fn,
		Concurrency:  cfg.GraphConcurrency,
		Logger:       log,
		Metrics:      emf,
		Custody:      cust,
	}
	if f := cfg.Fleet; f.On() {
		opts.Fleet = operator.FleetOptions{
			Name: f.Name, SecretPrefix: f.SecretPrefix, TokenPrefix: f.TokenPrefix, AppSecretPrefix: f.AppSecretPrefix,
			KMSKeyID: f.KMSKeyID, Window: f.RotationWindow, Concurrency: f.StatusConcurrency,
			// A third of the invocation at most, so that a fleet status
			// always has time to read some tenants and continue.
			TenantTimeout:        min(time.Minute, cfg.FunctionTimeout/3),
			DefaultTokenSecretID: cfg.AccessTokenSecretID,
		}
		// The continuation of a fleet status: this function, invoked
		// asynchronously (the SDK's default retries: an Event invocation
		// is accepted or refused as a whole).
		opts.Lambda = lambdasdk.NewFromConfig(awsCfg)
		opts.FleetMetrics = emf
	}
	op, err := operator.New(sm, gc, state, rot, opts)
	if err != nil {
		return nil, err
	}
	return dispatch.New(rot, op, emf, dispatch.WithSyntax(operator.Syntax{Fleet: cfg.Fleet.On()})), nil
}

// stepRetryer is the Secrets Manager and KMS clients' retryer: the SDK's
// standard one (exponential backoff with full jitter, from a 1 s base for
// throttling, at most 20 s) with 8 attempts instead of 3 and no retry
// quota. A fleet rotates many secrets, and KMS allows about one
// GenerateDataKeyPair (RSA_2048) a second: three attempts give a
// throttled request about 1.5 s, eight about half a minute. The time each
// step gives its requests (internal/rotation, awsCtx) bounds the retries,
// since the SDK waits with the request's context: the retry quota (500
// tokens per client, 5 a throttled retry) would instead stop every retry
// of a warm instance for the rest of its life once a burst had emptied it.
func stepRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = stepMaxAttempts
		o.RateLimiter = ratelimit.None
	})
}

// stepMaxAttempts is the attempts of one Secrets Manager or KMS request.
const stepMaxAttempts = 8

// fail reports a start-up error and exits, so Lambda records an init
// failure that names the problem instead of failing each step later.
func fail(log *slog.Logger, msg string, err error) {
	log.Error(msg, "error", err.Error())
	os.Exit(1)
}
