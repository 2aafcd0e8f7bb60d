package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/metrics"
)

// resettable is a log sink the fuzzer empties between inputs.
type resettable struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *resettable) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *resettable) take() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := bytes.Clone(r.b.Bytes())
	r.b.Reset()
	return out
}

var documentedStatuses = []int{200, 400, 405, 413, 421, 427, 432, 500, 504}

// FuzzServe drives the request path with any body, raw or base64, signed
// with the app secret or not. serve is called without Handle's recover, so a
// panic fails the fuzzer. Every answer must be a documented status, the
// backend is reached only by a request that decrypted, and no log line or
// metric may hold the canary that the seeds' plaintexts carry.
func FuzzServe(f *testing.F) {
	sink := &resettable{}
	fx := newFixture(f, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(sink, nil))
		o.Metrics = metrics.NewEndpoint(sink, "fuzz", nil)
	})
	for _, p := range []string{
		`{"version":"3.0","action":"ping"}`,
		`{"version":"3.0","action":"INIT","screen":"S","flow_token":"` + canary + `"}`,
		`{"version":"3.0","action":"data_exchange","data":{"error":"public-key-missing","error_message":"` + canary + `"}}`,
		`{"action":"` + canary + `"}`,
	} {
		r, err := flowclient.Encrypt(pairs()[0].Public(), []byte(p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Body, false, true)
		f.Add(r.Body, true, true)
		f.Add(r.Body, false, false)
	}
	f.Add([]byte(`{"encrypted_flow_data":"","encrypted_aes_key":"","initial_vector":""}`), false, true)
	f.Add([]byte(`{"initial_vector":"AAAAAAAAAAAAAAAAAAAAAA=="}`), false, true)
	f.Add([]byte("\xff\xfe"), true, true)
	f.Fuzz(func(t *testing.T, body []byte, b64, signed bool) {
		ev := event(body)
		if b64 {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
		if !signed {
			ev.Headers["x-hub-signature-256"] = flowclient.Sign("wrong", body)
		}
		calls := fx.backend.count()
		start := fx.clock.Now()
		o := fx.h.serve(context.Background(), ev, start)
		fx.h.record(context.Background(), ev, &o, start)
		resp := o.response()
		if !slices.Contains(documentedStatuses, resp.StatusCode) {
			t.Fatalf("status %d is not documented", resp.StatusCode)
		}
		if fx.backend.count() != calls && o.keyLabel == "" {
			t.Fatal("the backend was called for a request that did not decrypt")
		}
		if !signed && resp.StatusCode != 432 && resp.StatusCode != 413 {
			t.Fatalf("an unsigned body got %d", resp.StatusCode)
		}
		if out := sink.take(); bytes.Contains(out, []byte("CANARY")) {
			t.Fatalf("the canary reached a log line or a metric:\n%s", out)
		}
	})
}
