package flowbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

const initCall = `{"request":{"version":"3.0","action":"INIT","flow_token":"tok-secret-9"},"metadata":{"request_id":"r1","received_at":"2026-01-01T00:00:00Z","deadline":"2026-01-01T00:00:06Z","key_label":"AWSCURRENT"}}`

func post(t *testing.T, h http.Handler, method, body string, header map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestServerAnswersOnlyCallsSignedWithTheAppSecret(t *testing.T) {
	logs := &logbuf.Buffer{}
	s := &Server{AppSecret: secret, Logger: newJSONLogger(logs)}
	signed := map[string]string{SignatureHeader: Sign(secret, []byte(initCall))}
	tests := []struct {
		name       string
		method     string
		body       string
		header     map[string]string
		wantStatus int
		wantBody   string
	}{
		{"signed", http.MethodPost, initCall, signed, 200, `"screen":"PARTY"`},
		{"no signature", http.MethodPost, initCall, nil, 401, SignatureHeader},
		{"signed with another secret", http.MethodPost, initCall, map[string]string{SignatureHeader: Sign([]byte("other"), []byte(initCall))}, 401, "does not match"},
		{"signature of another body", http.MethodPost, initCall + " ", signed, 401, "does not match"},
		{"not hex", http.MethodPost, initCall, map[string]string{SignatureHeader: "sha256=zz"}, 401, "does not match"},
		{"no sha256= prefix", http.MethodPost, initCall, map[string]string{SignatureHeader: strings.TrimPrefix(Sign(secret, []byte(initCall)), "sha256=")}, 401, "does not match"},
		{"GET", http.MethodGet, "", nil, 405, "POST"},
		{"signed garbage", http.MethodPost, "{", map[string]string{SignatureHeader: Sign(secret, []byte("{"))}, 400, "not the endpoint's call"},
		{"signed, no request", http.MethodPost, `{"metadata":{}}`, map[string]string{SignatureHeader: Sign(secret, []byte(`{"metadata":{}}`))}, 400, "is missing or is not a Flows request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, s, tt.method, tt.body, tt.header)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("= %d %s, want %d with %q", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if s.Calls() != 1 {
		t.Errorf("Calls() = %d, want 1: only the signed call is answered", s.Calls())
	}
	if out := logs.String(); !strings.Contains(out, `"action":"INIT"`) || strings.Contains(out, "tok-secret-9") {
		t.Errorf("the log must name the action and never the flow token:\n%s", out)
	}
}

func TestServerRefusesLargeBodiesAndNeverAnswersWithoutASecret(t *testing.T) {
	big := bytes.Repeat([]byte("a"), maxBodyBytes+1)
	s := &Server{AppSecret: secret}
	if status, _ := post(t, s, http.MethodPost, string(big), map[string]string{SignatureHeader: Sign(secret, big)}); status != 413 {
		t.Errorf("a body over 1 MiB = %d, want 413", status)
	}
	if status, body := post(t, &Server{}, http.MethodPost, initCall, map[string]string{SignatureHeader: Sign(nil, []byte(initCall))}); status != 500 || !strings.Contains(body, "no app secret") {
		t.Errorf("without an app secret = %d %s, want 500 saying so", status, body)
	}
}

// The 427 is a Reply inside an HTTP 200: the endpoint reads the status in
// the body and answers Meta's client with HTTP 427 itself.
func TestExpiredTokenIsA427ReplyInsideHTTP200(t *testing.T) {
	call := strings.Replace(initCall, "tok-secret-9", ExpiredPrefix+"1", 1)
	status, body := post(t, &Server{AppSecret: secret}, http.MethodPost, call, map[string]string{SignatureHeader: Sign(secret, []byte(call))})
	var r Reply
	if err := json.Unmarshal([]byte(body), &r); status != 200 || err != nil || r.Status != 427 || r.ErrorMsg != ExpiredMessage || r.Response != nil {
		t.Errorf("= %d %s, want 200 with status 427 and the message", status, body)
	}
}

func TestInvokeIsTheSameContractForLambda(t *testing.T) {
	s := &Server{}
	var call Call
	if err := json.Unmarshal([]byte(initCall), &call); err != nil {
		t.Fatal(err)
	}
	r, err := s.Invoke(context.Background(), call)
	if err != nil || r.Status != 200 || r.Response.Screen != ScreenParty {
		t.Errorf("Invoke = %+v, %v; want the PARTY screen", r, err)
	}
	if _, err := s.Invoke(context.Background(), Call{Request: json.RawMessage(`[1]`)}); err == nil {
		t.Error("Invoke with a request that is not an object succeeded")
	}
}
