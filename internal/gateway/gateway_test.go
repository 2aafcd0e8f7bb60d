package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/flowkey/flowkey/internal/backend"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

func TestNewChecksItsOptions(t *testing.T) {
	f := newFixture(t)
	base := f.h.opts
	for name, mutate := range map[string]func(*Options){
		"no keys":     func(o *Options) { o.Keys = nil },
		"no backend":  func(o *Options) { o.Backend = nil },
		"no verifier": func(o *Options) { o.Verifier = nil },
	} {
		o := base
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := base
	skipSignature(&o)
	if _, err := New(o); err != nil {
		t.Errorf("no verifier with the check off: %v", err)
	}
}

func TestPingIsAnsweredWithoutTheBackend(t *testing.T) {
	f := newFixture(t)
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	if got := f.open(req, f.do(event(req.Body))); got != `{"data":{"status":"active"}}` {
		t.Fatalf("got %s", got)
	}
	if f.backend.count() != 0 {
		t.Fatal("ping reached the backend")
	}
	f.wantLog(map[string]any{"outcome": "ping", "status": 200.0, "action": "ping", "key_label": "AWSCURRENT", "rsa_ops": 1.0, "signature_check": "on"})
}

func TestErrorNotificationsAreAcknowledgedAndCountedByABoundedKey(t *testing.T) {
	for data, key := range map[string]string{
		`{"error":"public-key-missing","error_message":"Public key is missing"}`:                 ErrorKeyPublicKeyMissing,
		`{"error":"public-key-signature-verification","error_message":"Signature check failed"}`: ErrorKeySignatureCheck,
		`{"error":"some-new-key-meta-invents","error_message":"..."}`:                            ErrorKeyOther,
		`{"error":{"code":1}}`:                         ErrorKeyOther,
		`{"error":"` + strings.Repeat("x", 500) + `"}`: ErrorKeyOther,
	} {
		t.Run(key, func(t *testing.T) {
			f := newFixture(t)
			req := f.encrypt(0, `{"version":"3.0","action":"data_exchange","screen":"DETAILS","flow_token":"tok","data":`+data+`}`)
			if got := f.open(req, f.do(event(req.Body))); got != `{"data":{"acknowledged":true}}` {
				t.Fatalf("got %s", got)
			}
			if f.backend.count() != 0 {
				t.Fatal("an error notification reached the backend")
			}
			f.wantLog(map[string]any{"outcome": "error_notification", "error_key": key, "status": 200.0, "screen": "DETAILS"})
			if !strings.Contains(f.emf.String(), `"ErrorKey":"`+key+`","ErrorNotifications":1`) {
				t.Fatalf("metrics:\n%s", f.emf.String())
			}
		})
	}
}

func TestRequestsGoToTheBackendAndItsAnswerIsSealed(t *testing.T) {
	for _, action := range []string{ActionInit, ActionBack, ActionDataExchange} {
		t.Run(action, func(t *testing.T) {
			f := newFixture(t)
			payload := `{"version":"3.0","action":"` + action + `","screen":"FIRST","flow_token":"tok","data":{"x":1}}`
			req := f.encrypt(1, payload) // the AWSPREVIOUS key
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-7"})
			resp, err := f.h.Handle(ctx, event(req.Body))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.open(req, resp); got != `{"screen":"NEXT","data":{"ok":true}}` {
				t.Fatalf("got %s", got)
			}
			if f.backend.count() != 1 {
				t.Fatalf("%d backend calls", f.backend.count())
			}
			sent := f.backend.calls[0]
			want := backend.Metadata{RequestID: "lambda-req-7", ReceivedAt: testNow, Deadline: testNow.Add(DefaultBackendTimeout), KeyLabel: "AWSPREVIOUS"}
			if string(sent.Request) != payload || sent.Metadata != want {
				t.Fatalf("backend got %s %+v; want the request as received and %+v", sent.Request, sent.Metadata, want)
			}
			f.wantLog(map[string]any{"outcome": "ok", "status": 200.0, "action": action, "screen": "FIRST", "key_label": "AWSPREVIOUS", "request_id": "lambda-req-7"})
		})
	}
}

func TestTheBackendDeadlineLeavesRoomInTheInvocation(t *testing.T) {
	f := newFixture(t)
	var got time.Time
	f.backend.answer = func(ctx context.Context, _ *backend.Request) (*backend.Response, error) {
		got, _ = ctx.Deadline()
		return &backend.Response{Status: 200, Response: json.RawMessage(`{}`)}, nil
	}
	req := f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
	// An invocation with 3 s left: the backend gets them less the reserve.
	ctx, cancel := context.WithDeadline(context.Background(), testNow.Add(3*time.Second))
	defer cancel()
	if _, err := f.h.Handle(ctx, event(req.Body)); err != nil {
		t.Fatal(err)
	}
	if want := testNow.Add(3*time.Second - AnswerReserve); !got.Equal(want) || !f.backend.calls[0].Metadata.Deadline.Equal(want) {
		t.Fatalf("backend deadline %v (metadata %v), want %v", got, f.backend.calls[0].Metadata.Deadline, want)
	}
}

func TestABackend427IsAnsweredPlain(t *testing.T) {
	for msg, body := range map[string]string{"This offer has expired.": `{"error_msg":"This offer has expired."}`, "": `{}`} {
		f := newFixture(t)
		f.backend.answer = func(context.Context, *backend.Request) (*backend.Response, error) {
			return &backend.Response{Status: 427, ErrorMsg: msg}, nil
		}
		req := f.encrypt(0, `{"version":"3.0","action":"data_exchange","flow_token":"expired-1","data":{}}`)
		resp := f.do(event(req.Body))
		if resp.StatusCode != 427 || resp.Headers["Content-Type"] != "application/json" || resp.Body != body {
			t.Fatalf("got %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
		}
		f.wantLog(map[string]any{"outcome": "flow_token_invalid", "status": 427.0})
	}
}

func TestBackendFailuresAre500AndTimeouts504NeverA421(t *testing.T) {
	for name, tc := range map[string]struct {
		err    error
		status int
		name   string
	}{
		"failure":     {&backend.Error{Reason: "answered HTTP 503"}, 500, "backend_error"},
		"timeout":     {&backend.Error{Timeout: true, Reason: "no answer before the deadline"}, 504, "backend_timeout"},
		"other error": {errors.New("odd"), 500, "backend_error"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.backend.answer = func(context.Context, *backend.Request) (*backend.Response, error) { return nil, tc.err }
			req := f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
			resp := f.do(event(req.Body))
			if resp.StatusCode != tc.status || resp.Body != "" {
				t.Fatalf("got %d %q", resp.StatusCode, resp.Body)
			}
			f.wantLog(map[string]any{"outcome": tc.name, "status": float64(tc.status)})
			if !strings.Contains(f.emf.String(), `"BackendErrors":1`) {
				t.Fatalf("metrics:\n%s", f.emf.String())
			}
		})
	}
}

func TestAPanicIsA500(t *testing.T) {
	f := newFixture(t)
	f.backend.answer = func(context.Context, *backend.Request) (*backend.Response, error) { panic("CANARY-PANIC") }
	req := f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
	if resp := f.do(event(req.Body)); resp.StatusCode != 500 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	f.wantLog(map[string]any{"outcome": "internal_error", "status": 500.0})
	if strings.Contains(f.logs.String(), "CANARY-PANIC") {
		t.Fatal("the panic value reached the log")
	}
}

func TestARotationIsInvisible(t *testing.T) {
	f := newFixture(t)
	warm := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	f.open(warm, f.do(event(warm.Body)))
	// setSecret uploads pairs()[2]; a client that fetched it right away
	// reaches this instance before its TTL: the miss refreshes at once.
	f.clock.Advance(floor)
	f.sm.Put(f.keys, "v3", doc(t, pairs()[2]), secretsfake.StagePending)
	req := f.encrypt(2, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
	f.open(req, f.do(event(req.Body)))
	f.wantLog(map[string]any{"outcome": "ok", "key_label": "AWSPENDING", "refreshed": true, "rsa_ops": 3.0})
	// finishSecret: the labels move; after the TTL the ring knows.
	f.sm.Put(f.keys, "v3", f.keys.Values["v3"], secretsfake.StageCurrent)
	f.sm.Put(f.keys, "v2", f.keys.Values["v2"], secretsfake.StagePrevious)
	f.clock.Advance(ttl)
	for i, want := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		r := f.encrypt([]int{2, 0}[i], `{"version":"3.0","action":"ping"}`)
		f.open(r, f.do(event(r.Body)))
		f.wantLog(map[string]any{"key_label": want})
	}
}

func TestBase64AndRawBodiesAreTheSame(t *testing.T) {
	f := newFixture(t)
	for _, mk := range []func([]byte) (string, bool){
		func(b []byte) (string, bool) { ev := event(b); return ev.Body, ev.IsBase64Encoded },
		func(b []byte) (string, bool) { ev := base64Event(b); return ev.Body, ev.IsBase64Encoded },
	} {
		req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
		ev := event(req.Body) // signed over the raw bytes either way
		ev.Body, ev.IsBase64Encoded = mk(req.Body)
		f.open(req, f.do(ev))
	}
	// A signature header in another case is found too.
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	ev := event(req.Body)
	ev.Headers = map[string]string{"X-Hub-Signature-256": ev.Headers["x-hub-signature-256"]}
	f.open(req, f.do(ev))
}

func TestMethodsOtherThanPOSTAre405(t *testing.T) {
	f := newFixture(t)
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	for _, m := range []string{"GET", "PUT", "HEAD", "OPTIONS", ""} {
		ev := event(req.Body)
		ev.RequestContext.HTTP.Method = m
		resp := f.do(ev)
		if resp.StatusCode != 405 || resp.Headers["Allow"] != "POST" {
			t.Fatalf("%s: got %d %v", m, resp.StatusCode, resp.Headers)
		}
	}
	if f.smCalls() != 0 {
		t.Fatal("a 405 read a secret")
	}
}

func TestTheSignatureCheckCanBeTurnedOffForLocalTests(t *testing.T) {
	f := newFixture(t, skipSignature)
	if !strings.Contains(f.logs.String(), "check is OFF") {
		t.Fatalf("no warning at start:\n%s", f.logs.String())
	}
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	ev := event(req.Body)
	delete(ev.Headers, "x-hub-signature-256")
	f.open(req, f.do(ev))
	f.wantLog(map[string]any{"signature_check": "off", "outcome": "ping"})
}
