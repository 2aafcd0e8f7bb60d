package gateway

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/metrics"
)

// The speed target: everything a request costs beyond its one RSA
// operation should cost under 10% of it. Compare BenchmarkRequestPath with
// BenchmarkBareDecryptOAEP (make bench prints both).

// benchRequests are distinct signed requests to the AWSCURRENT key, so that
// the replay cache sees a new body each time.
func benchRequests(b *testing.B, payload string, n int) []events.LambdaFunctionURLRequest {
	b.Helper()
	evs := make([]events.LambdaFunctionURLRequest, n)
	for i := range evs {
		r, err := flowclient.Encrypt(pairs()[0].Public(), []byte(payload))
		if err != nil {
			b.Fatal(err)
		}
		evs[i] = event(r.Body)
	}
	return evs
}

func benchHandler(b *testing.B) *Handler {
	f := newFixture(b, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		o.Metrics = metrics.NewEndpoint(io.Discard, "bench", nil)
		o.Now = time.Now
		o.ReplayWindow = time.Nanosecond // the cache works on every request, but forgets at once
	})
	// Warm the ring and the app secret.
	if resp, _ := f.h.Handle(context.Background(), benchRequests(b, `{"version":"3.0","action":"ping"}`, 1)[0]); resp.StatusCode != 200 {
		b.Fatalf("warm-up: %d", resp.StatusCode)
	}
	return f.h
}

// BenchmarkRequestPath is a whole request with a warm key ring: signature,
// replay check, envelope, one RSA-OAEP, AES-GCM open, parse, a backend that
// answers at once, AES-GCM seal, base64, the log line and the EMF line.
func BenchmarkRequestPath(b *testing.B) {
	h := benchHandler(b)
	evs := benchRequests(b, `{"version":"3.0","action":"data_exchange","screen":"FORM","flow_token":"tok","data":{"name":"Ana","email":"ana@example.com","items":[1,2,3]}}`, 512)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		resp, _ := h.Handle(ctx, evs[i%len(evs)])
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		i++
	}
}

// BenchmarkBareDecryptOAEP is the one RSA operation alone.
func BenchmarkBareDecryptOAEP(b *testing.B) {
	priv := benchPrivateKey(b)
	block := rsaEncrypt(b, []byte("0123456789abcdef"))
	for b.Loop() {
		if _, err := rsa.DecryptOAEP(sha256.New(), nil, priv, block, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestPathWithoutRSA is everything but the RSA operation: the
// same request path, with a key ring that returns the AES key at once.
func BenchmarkRequestPathWithoutRSA(b *testing.B) {
	r, err := flowclient.Encrypt(pairs()[0].Public(), []byte(`{"version":"3.0","action":"data_exchange","screen":"FORM","flow_token":"tok","data":{"name":"Ana","email":"ana@example.com","items":[1,2,3]}}`))
	if err != nil {
		b.Fatal(err)
	}
	h := benchHandler(b)
	h.opts.Keys = fixedKey(r.AESKey)
	ev := event(r.Body)
	ctx := context.Background()
	for b.Loop() {
		resp, _ := h.Handle(ctx, ev)
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
