package custody

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/smithy-go"
)

// KMS error codes flowkey tells apart.
const (
	codeThrottling     = "ThrottlingException"
	codeNotFound       = "NotFoundException"
	codeAlreadyExists  = "AlreadyExistsException"
	codeDisabled       = "DisabledException"
	codeInvalidState   = "KMSInvalidStateException"
	codeAccessDenied   = "AccessDeniedException"
	codeInvalidUsage   = "InvalidKeyUsageException"
	codeInvalidCipher  = "InvalidCiphertextException"
	codeMalformedPol   = "MalformedPolicyDocumentException"
	codeLimitExceeded  = "LimitExceededException"
	codeUnavailable    = "KeyUnavailableException"
	codeInvalidARN     = "InvalidArnException"
	codeDependencyTime = "DependencyTimeoutException"
	codeInternal       = "KMSInternalException"
)

// code is the KMS error code of err, or "".
func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// IsThrottled reports whether err is, or wraps, a ThrottlingException.
func IsThrottled(err error) bool { return code(err) == codeThrottling }

// call runs one KMS request, retrying a ThrottlingException with jittered
// exponential backoff up to Options.MaxRetries times and for as long as
// ctx allows, and returns its error as an *Error.
func call[T any](ctx context.Context, m *Manager, op, key string, fn func(ctx context.Context) (T, error)) (T, error) {
	backoff := m.opts.Backoff
	throttled := 0
	start := time.Now()
	for {
		out, err := fn(ctx)
		if err == nil {
			if throttled > 0 {
				m.opts.Logger.Info("kms request succeeded after throttling", "op", op, "key", key, "throttled", throttled)
			}
			return out, nil
		}
		if !IsThrottled(err) {
			return out, wrap(op, key, err, throttled)
		}
		throttled++
		wait := jitter(backoff)
		if d, ok := ctx.Deadline(); throttled > m.opts.MaxRetries || ok && time.Until(d) <= wait {
			return out, throttledError(op, key, err, throttled, time.Since(start))
		}
		m.opts.Logger.Warn("kms request throttled; retrying", "op", op, "key", key, "attempt", throttled, "wait_ms", wait.Milliseconds())
		if m.opts.Sleep(ctx, wait) != nil {
			return out, throttledError(op, key, err, throttled, time.Since(start))
		}
		backoff = min(2*backoff, m.opts.MaxBackoff)
	}
}

func throttledError(op, key string, err error, n int, d time.Duration) *Error {
	return &Error{Op: op, Key: key, Throttled: n, Err: err,
		Problem: fmt.Sprintf("throttled by KMS (ThrottlingException) %d times in %s; gave up", n, d.Round(time.Millisecond)),
		Fix: "retry later (Secrets Manager retries the rotation): KMS's RSA request quota is shared by everything in the account and region; " +
			"spread rotations and other RSA work out, or ask for a higher quota in Service Quotas"}
}

// wrap turns a KMS error into an *Error with the fix for its code.
func wrap(op, key string, err error, throttled int) *Error {
	e := &Error{Op: op, Key: key, Err: err, Throttled: throttled, Problem: err.Error()}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e.Problem = "did not finish in the step's time (" + err.Error() + ")"
		e.Fix = "retry; if it persists, check the network route to KMS (VPC endpoint or NAT) and the function's timeout"
		return e
	}
	what := "the key"
	if key != "" {
		what = "key " + key
	}
	switch code(err) {
	case codeAccessDenied:
		e.Fix = "allow kms:" + op + " for the function's role: the custody key's policy names " + EnvRotatorRoleARN + " and " + EnvDecryptRoleARNs +
			", and infra/ grants the IAM side on keys tagged " + TagSecretARN + " with the secret's ARN (see infra/README.md)"
	case codeNotFound, codeInvalidARN:
		e.Fix = "check that " + what + " exists in the secret's account and region (a key deleted after its waiting period is gone for good: rotate)"
	case codeDisabled:
		e.Fix = what + " is disabled (behind flowkey's back?): enable it with `aws kms enable-key --key-id <key>` if versions still name it, or rotate away from it"
	case codeInvalidState:
		e.Fix = what + " is pending deletion or otherwise unusable: cancel the deletion with `aws kms cancel-key-deletion --key-id <key>` and enable it with `aws kms enable-key`, or rotate away from it"
	case codeInvalidUsage:
		e.Fix = what + " is not an RSA_2048 ENCRYPT_DECRYPT key: flowkey only uses the keys its rotation creates"
	case codeMalformedPol:
		e.Fix = "the key policy names a principal KMS cannot see: check that " + EnvRotatorRoleARN + " and " + EnvDecryptRoleARNs + " name existing IAM roles"
	case codeLimitExceeded:
		e.Fix = "a KMS quota (keys or aliases per account) is reached: delete unused keys, or ask for a higher quota"
	case codeUnavailable, codeDependencyTime, codeInternal:
		e.Fix = "retry later; KMS could not serve the request"
	case codeInvalidCipher:
		e.Fix = "the block was not encrypted to this key's public key"
	default:
		e.Fix = "check network access to KMS and the function's permissions, then retry"
	}
	return e
}
