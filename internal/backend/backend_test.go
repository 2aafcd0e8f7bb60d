package backend

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeResponse(t *testing.T) {
	ok := []struct {
		in      string
		status  int
		body    string
		message string
	}{
		{`{"status":200,"response":{"screen":"NEXT","data":{}}}`, 200, `{"screen":"NEXT","data":{}}`, ""},
		{`{"response":{"screen":"SUCCESS"}}`, 200, `{"screen":"SUCCESS"}`, ""},
		{` {"response":{},"status":200} `, 200, `{}`, ""},
		{`{"status":427}`, 427, "", ""},
		{`{"status":427,"error_msg":"This offer has expired."}`, 427, "", "This offer has expired."},
	}
	for _, tc := range ok {
		r, err := DecodeResponse([]byte(tc.in))
		if err != nil || r.Status != tc.status || string(r.Response) != tc.body || r.ErrorMsg != tc.message {
			t.Errorf("%s: %+v, %v", tc.in, r, err)
		}
	}
	bad := []struct{ in, reason string }{
		{``, "response is not one JSON object"},
		{`[]`, "response is not one JSON object"},
		{`{"response":{}} {}`, "response is not one JSON object"},
		{`{"status":200}`, `status 200 needs a JSON object "response"`},
		{`{"response":[1]}`, `status 200 needs a JSON object "response"`},
		{`{"response":null}`, `status 200 needs a JSON object "response"`},
		{`{"Response":{}}`, `response has a member other than "status", "response" and "error_msg"`},
		{`{"data":{}}`, `response has a member other than`},
		{`{"status":"200","response":{}}`, `response "status" is not a whole number`},
		{`{"status":200.5,"response":{}}`, `response "status" is not a whole number`},
		{`{"status":421}`, "status 421 is not 200 or 427"},
		{`{"status":500}`, "status 500 is not 200 or 427"},
		{`{"status":0,"response":{}}`, "status 0 is not 200 or 427"},
		{`{"status":427,"response":{}}`, `status 427 takes no "response"`},
		{`{"status":427,"error_msg":1}`, `response "error_msg" is not a string`},
		{`{"response":{},"error_msg":"x"}`, `"error_msg" goes only with status 427`},
		{`{"response":{},"response":{}}`, "response has a member twice"},
		{`{"response":{"x":"` + strings.Repeat("a", MaxResponseBytes) + `"}}`, "response is over"},
	}
	for _, tc := range bad {
		r, err := DecodeResponse([]byte(tc.in))
		var e *Error
		if !errors.As(err, &e) || r != nil || e.Timeout || !strings.HasPrefix(e.Reason, tc.reason) {
			t.Errorf("%.60s: got %+v, %v; want reason %q", tc.in, r, err, tc.reason)
		}
	}
}

func TestRequestShape(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	b, err := json.Marshal(&Request{Request: json.RawMessage(`{"action":"INIT"}`), Metadata: Metadata{
		RequestID: "req-1", ReceivedAt: at, Deadline: at.Add(6 * time.Second), KeyLabel: "AWSCURRENT"}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"request":{"action":"INIT"},"metadata":{"request_id":"req-1","received_at":"2026-11-25T10:00:00.123456789Z","deadline":"2026-11-25T10:00:06.123456789Z","key_label":"AWSCURRENT"}}`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

func TestValidateURL(t *testing.T) {
	for _, s := range []string{"https://flows.example.com/endpoint", "https://flows.example.com:8443/x?y=1", "http://127.0.0.1:8080/flow", "http://localhost/x", "http://[::1]:9/x"} {
		if err := ValidateURL(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for s, want := range map[string]string{
		"":                                       "is not an absolute URL",
		"flows.example.com/endpoint":             "is not an absolute URL",
		"http://flows.example.com/endpoint":      "uses http:// to a host that is not loopback",
		"http://10.0.0.1/endpoint":               "uses http:// to a host that is not loopback",
		"ftp://flows.example.com/":               `has scheme "ftp", not https`,
		"https://user:hunter2@flows.example.com": "contains user info",
		"https://flows.example.com/#x":           "has a fragment",
		"https://flows.example.com/%zz":          "is not a URL",
	} {
		err := ValidateURL(s)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "BACKEND_URL=") {
			t.Errorf("%q: %v; want %q", s, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password", s)
		}
	}
}
