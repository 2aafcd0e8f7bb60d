package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

var throttled = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}

// Eight attempts, backoff from 1 s for throttling capped at 20 s, and no
// retry quota: a burst of throttling never leaves the instance unable to
// retry.
func TestTheStepRetryerRetriesThrottlingWithoutAQuota(t *testing.T) {
	r := stepRetryer()
	if r.MaxAttempts() != 8 || !r.IsErrorRetryable(throttled) {
		t.Fatalf("max attempts %d, retryable %v", r.MaxAttempts(), r.IsErrorRetryable(throttled))
	}
	for attempt := 1; attempt < 8; attempt++ {
		d, err := r.RetryDelay(attempt, throttled)
		if err != nil || d < 0 || d > 20*time.Second {
			t.Errorf("attempt %d: delay %s, %v", attempt, d, err)
		}
	}
	for i := range 1000 {
		if _, err := r.GetRetryToken(context.Background(), throttled); err != nil {
			t.Fatalf("retry %d refused: %v", i, err)
		}
	}
	// The SDK's default, for comparison: its quota runs out.
	def := retry.NewStandard()
	refused := false
	for range 1000 {
		if _, err := def.GetRetryToken(context.Background(), throttled); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Error("the default retryer has no quota: the comparison is stale")
	}
}

// A request throttled to the end returns when its context ends: the
// retries' waits never outlast the time a step gives its requests.
func TestThrottledRequestsStopAtTheirContextsDeadline(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
	}))
	defer srv.Close()
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), Retryer: stepRetryer()})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("flowkey/key")})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s past a 300 ms deadline", took)
	}
	var apiErr smithy.APIError
	if err == nil || (!errors.As(err, &apiErr) && !errors.Is(err, context.DeadlineExceeded)) {
		t.Errorf("got %v", err)
	}
	if calls.Load() < 1 {
		t.Error("no request made")
	}
}
