package funcurl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// recorder is an Invoker that keeps the event and answers as told.
type recorder struct {
	arn     string
	payload []byte
	answer  string
	err     error
}

func (r *recorder) Invoke(_ context.Context, arn string, payload []byte) ([]byte, error) {
	r.arn, r.payload = arn, payload
	return []byte(r.answer), r.err
}

func serve(t *testing.T, inv *recorder, req *http.Request) *http.Response {
	t.Helper()
	a := &Adapter{Invoker: inv, FunctionARN: "arn:fn", Now: func() time.Time { return time.Date(2026, 3, 12, 19, 3, 58, 390e6, time.UTC) }}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	req.URL.Scheme, req.URL.Host, req.RequestURI = "http", strings.TrimPrefix(srv.URL, "http://"), ""
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// What Meta sends becomes the event the endpoint reads with aws-lambda-go.
func TestMetasRequestBecomesAFunctionURLEvent(t *testing.T) {
	body := `{"encrypted_flow_data":"AAA=","encrypted_aes_key":"BBB=","initial_vector":"CCC="}`
	req := httptest.NewRequest(http.MethodPost, "/flows/endpoint?a=1&a=2&b=3", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256=abc")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Set("Cookie", "c1=v1; c2=v2")
	req.Header.Set("User-Agent", "facebookexternalua")
	inv := &recorder{answer: `{"statusCode":200,"headers":{"Content-Type":"text/plain"},"body":"b64","isBase64Encoded":false}`}
	serve(t, inv, req)

	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(inv.payload, &ev); err != nil {
		t.Fatal(err)
	}
	if inv.arn != "arn:fn" || ev.Version != "2.0" || ev.RawPath != "/flows/endpoint" || ev.RawQueryString != "a=1&a=2&b=3" {
		t.Errorf("event %+v", ev)
	}
	if ev.Body != body || ev.IsBase64Encoded {
		t.Errorf("body %q base64 %v; want the raw JSON, not base64", ev.Body, ev.IsBase64Encoded)
	}
	for k, want := range map[string]string{"x-hub-signature-256": "sha256=abc", "content-type": "application/json", "x-multi": "one,two", "user-agent": "facebookexternalua", "content-length": strconv.Itoa(len(body))} {
		if got := ev.Headers[k]; got != want {
			t.Errorf("headers[%q] = %q, want %q", k, got, want)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-cased", k)
		}
	}
	if _, ok := ev.Headers["cookie"]; ok || len(ev.Cookies) != 2 || ev.Cookies[1] != "c2=v2" {
		t.Errorf("cookies %q, headers %v; want the Cookie header moved to cookies", ev.Cookies, ev.Headers)
	}
	if ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "3" {
		t.Errorf("query %v", ev.QueryStringParameters)
	}
	rc := ev.RequestContext
	if rc.HTTP.Method != "POST" || rc.HTTP.Path != "/flows/endpoint" || rc.HTTP.SourceIP != "127.0.0.1" || rc.HTTP.UserAgent != "facebookexternalua" ||
		rc.AccountID != "anonymous" || rc.RequestID == "" || rc.TimeEpoch != 1773342238390 || rc.Time != "12/Mar/2026:19:03:58 +0000" ||
		rc.DomainName != "flowkeylocal.lambda-url.us-east-1.on.aws" {
		t.Errorf("requestContext %+v", rc)
	}
	var raw map[string]any
	_ = json.Unmarshal(inv.payload, &raw)
	if raw["routeKey"] != "$default" || raw["requestContext"].(map[string]any)["stage"] != "$default" {
		t.Errorf("routeKey/stage missing: %s", inv.payload)
	}
}

func TestABinaryBodyArrivesBase64Encoded(t *testing.T) {
	body := []byte{0, 1, 2, 0xff, 'x'}
	for _, ctype := range []string{"application/octet-stream", ""} {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		inv := &recorder{answer: `{"statusCode":204}`}
		serve(t, inv, req)
		var ev events.LambdaFunctionURLRequest
		_ = json.Unmarshal(inv.payload, &ev)
		got, err := base64.StdEncoding.DecodeString(ev.Body)
		if !ev.IsBase64Encoded || err != nil || !bytes.Equal(got, body) {
			t.Errorf("Content-Type %q: body %q base64 %v", ctype, ev.Body, ev.IsBase64Encoded)
		}
	}
	for _, ctype := range []string{"text/plain; charset=utf-8", "application/x-www-form-urlencoded", "application/problem+json"} {
		if !textual(ctype) {
			t.Errorf("%q is not passed as text", ctype)
		}
	}
}

func TestTheFunctionsAnswerBecomesTheHTTPResponse(t *testing.T) {
	tests := []struct {
		name       string
		answer     string
		err        error
		wantStatus int
		wantType   string
		wantBody   string
		wantCookie string
	}{
		{"encrypted 200", `{"statusCode":200,"headers":{"Content-Type":"text/plain"},"body":"ZW5j"}`, nil, 200, "text/plain", "ZW5j", ""},
		{"427 as JSON", `{"statusCode":427,"headers":{"Content-Type":"application/json"},"body":"{\"error_msg\":\"expired\"}"}`, nil, 427, "application/json", `{"error_msg":"expired"}`, ""},
		{"a base64 body is decoded", `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"body":"aGVsbG8=","isBase64Encoded":true,"cookies":["s=1"]}`, nil, 200, "application/octet-stream", "hello", "s=1"},
		{"no headers: JSON", `{"statusCode":421}`, nil, 421, "application/json", "", ""},
		{"not structured: Lambda infers a 200", `{"hello":"world"}`, nil, 200, "application/json", `{"hello":"world"}`, ""},
		{"a function error is 502", ``, errors.New("function error errorString: boom"), 502, "application/json", `{"Message":"Internal Server Error"}`, ""},
		{"a bad base64 body is 502", `{"statusCode":200,"body":"%%","isBase64Encoded":true}`, nil, 502, "application/json", `{"Message":"Internal Server Error"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := serve(t, &recorder{answer: tt.answer, err: tt.err}, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType || string(b) != tt.wantBody || resp.Header.Get("Set-Cookie") != tt.wantCookie {
				t.Errorf("= %d %q %q cookie %q; want %d %q %q cookie %q", resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header.Get("Set-Cookie"),
					tt.wantStatus, tt.wantType, tt.wantBody, tt.wantCookie)
			}
		})
	}
}

func TestABodyOrEventOverSixMBIsRefusedWithoutAnInvocation(t *testing.T) {
	inv := &recorder{}
	a := &Adapter{Invoker: inv}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, MaxBodyBytes+1))))
	if rec.Code != http.StatusRequestEntityTooLarge || inv.payload != nil || a.Invocations() != 0 {
		t.Errorf("= %d, invoked %v; want 413 and no invocation", rec.Code, inv.payload != nil)
	}
	// 2 MB of NUL bytes is 12 MB of JSON escapes in the event.
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, 2<<20)))
	req.Header.Set("Content-Type", "text/plain")
	a.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || a.Invocations() != 0 {
		t.Errorf("an event over 6 MB = %d, want 413 and no invocation", rec.Code)
	}
	rec = httptest.NewRecorder()
	inv.answer = `{"statusCode":200}`
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 || a.Invocations() != 1 {
		t.Errorf("a GET = %d after %d invocations; the function decides what a GET gets", rec.Code, a.Invocations())
	}
}
