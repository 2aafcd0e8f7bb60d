package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/backend"
)

// canary stands for the users' personal data: it is in every decrypted
// field a request can have, and must appear in no log line, no metric and no
// answer other than the encrypted ones.
const canary = "CANARY-d4e1-personal-data"

func TestDecryptedDataNeverReachesALogOrAMetric(t *testing.T) {
	f := newFixture(t)
	f.backend.answer = func(_ context.Context, r *backend.Request) (*backend.Response, error) {
		if strings.Contains(string(r.Request), `"flow_token":"expired-`) {
			return &backend.Response{Status: 427, ErrorMsg: "sorry"}, nil
		}
		// The backend echoes the user's data back, as a real one may.
		return &backend.Response{Status: 200, Response: json.RawMessage(`{"screen":"NEXT","data":{"echo":"` + canary + `"}}`)}, nil
	}
	payloads := []string{
		`{"version":"3.0","action":"data_exchange","screen":"FORM","flow_token":"` + canary + `","data":{"name":"` + canary + `"}}`,
		`{"version":"3.0","action":"INIT","screen":"` + canary + `","flow_token":"t"}`,
		`{"version":"3.0","action":"BACK","screen":"A B","flow_token":"t","data":{"` + canary + `":1}}`,
		`{"version":"3.0","action":"data_exchange","flow_token":"t","data":{"error":"` + canary + `","error_message":"` + canary + `"}}`,
		`{"version":"3.0","action":"data_exchange","flow_token":"expired-` + canary + `","data":{}}`,
		`{"version":"3.0","action":"` + canary + `"}`,
		`{"version":"3.0","action":"INIT","data":"` + canary + `"}`,
		`{"action":"INIT","data":{"a":"` + canary + `","a":1}}`,
		canary,
	}
	var answers []string
	for _, p := range payloads {
		req := f.encrypt(0, p)
		resp := f.do(event(req.Body))
		answers = append(answers, resp.Body)
		for k, v := range resp.Headers {
			answers = append(answers, k, v)
		}
		// Nothing of the envelope is logged either.
		for _, part := range [][]byte{req.EncryptedAESKey, req.EncryptedFlowData, req.AESKey} {
			if strings.Contains(f.logs.String(), base64.StdEncoding.EncodeToString(part)[:20]) {
				t.Fatal("a log line holds part of the envelope")
			}
		}
	}
	for name, out := range map[string]string{"logs": f.logs.String(), "metrics": f.emf.String(), "answers": strings.Join(answers, "\n")} {
		if strings.Contains(out, canary) || strings.Contains(out, "CANARY") {
			t.Errorf("the %s hold decrypted data:\n%s", name, out)
		}
	}
	if n := strings.Count(f.logs.String(), `"msg":"request"`); n != len(payloads) {
		t.Fatalf("%d request log lines for %d requests", n, len(payloads))
	}
	if !strings.Contains(f.logs.String(), `"screen":"(invalid)"`) {
		t.Fatal("a screen that is not a screen ID is not marked (invalid)")
	}
}

func TestEveryRequestLogsTheContractFieldsOnce(t *testing.T) {
	f := newFixture(t)
	req := f.encrypt(0, `{"version":"3.0","action":"INIT","screen":"WELCOME","flow_token":"t"}`)
	f.open(req, f.do(event(req.Body)))
	f.do(event([]byte("garbage")))
	ev := event([]byte("x"))
	ev.RequestContext.HTTP.Method = "GET"
	f.do(ev)
	var lines []map[string]any
	for l := range strings.Lines(f.logs.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("%d request lines, want 3", len(lines))
	}
	fields := []string{"request_id", "action", "screen", "outcome", "status", "key_label", "rsa_ops", "duration_ms", "backend_ms", "refreshed", "signature_check"}
	for i, l := range lines {
		for _, k := range fields {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d has no %s: %v", i, k, l)
			}
		}
	}
	if l := lines[0]; l["action"] != "INIT" || l["screen"] != "WELCOME" || l["outcome"] != "ok" || l["level"] != "INFO" {
		t.Errorf("first line: %v", l)
	}
	if l := lines[1]; l["outcome"] != "bad_envelope" || l["level"] != "WARN" || !strings.HasPrefix(l["reason"].(string), "envelope: ") {
		t.Errorf("second line: %v", l)
	}
	// One EMF line per request, with the status as a dimension.
	emf := strings.Split(strings.TrimSpace(f.emf.String()), "\n")
	if len(emf) != 3 || !strings.Contains(emf[0], `"Status":"200"`) || !strings.Contains(emf[1], `"Status":"421"`) || !strings.Contains(emf[2], `"Status":"405"`) {
		t.Fatalf("EMF lines:\n%s", f.emf.String())
	}
	if !strings.Contains(emf[0], `"BackendErrors":0`) || strings.Contains(emf[1], "BackendLatency") {
		t.Fatalf("backend metrics on the wrong lines:\n%s", f.emf.String())
	}
}
