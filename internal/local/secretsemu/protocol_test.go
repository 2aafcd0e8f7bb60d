package secretsemu

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

// raw posts an AWS JSON 1.1 request without the SDK.
func raw(t *testing.T, url, target, body string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260304/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response body %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, resp.Header, m
}

func TestProtocolErrors(t *testing.T) {
	e := newEmu(t, Options{})
	e.create(t, "s", "v")
	tests := []struct {
		name, target, body string
		header             map[string]string
		wantStatus         int
		wantType, wantMsg  string
	}{
		{name: "no Authorization", target: "secretsmanager.DescribeSecret", body: `{"SecretId":"s"}`, header: map[string]string{"Authorization": ""},
			wantStatus: 400, wantType: "MissingAuthenticationTokenException", wantMsg: "Missing Authentication Token"},
		{name: "unsupported operation", target: "secretsmanager.ReplicateSecretToRegions", body: `{}`,
			wantStatus: 400, wantType: "UnknownOperationException", wantMsg: `"secretsmanager.ReplicateSecretToRegions" is not an operation`},
		{name: "another service", target: "TrentService.Decrypt", body: `{}`,
			wantStatus: 400, wantType: "UnknownOperationException", wantMsg: "TrentService.Decrypt"},
		{name: "no target", body: `{}`,
			wantStatus: 400, wantType: "UnknownOperationException", wantMsg: "X-Amz-Target"},
		{name: "malformed JSON", target: "secretsmanager.DescribeSecret", body: `{"SecretId":`,
			wantStatus: 400, wantType: "SerializationException", wantMsg: "not valid JSON"},
		{name: "wrong member type", target: "secretsmanager.CreateSecret", body: `{"Name":5}`,
			wantStatus: 400, wantType: "SerializationException", wantMsg: "member Name: expected string, got a JSON number"},
		{name: "PutSecretValue without token", target: "secretsmanager.PutSecretValue", body: `{"SecretId":"s","SecretString":"x"}`,
			wantStatus: 400, wantType: "InvalidRequestException", wantMsg: "You must provide a ClientRequestToken value. We recommend a UUID-type value."},
		{name: "no SecretId", target: "secretsmanager.GetSecretValue", body: ``,
			wantStatus: 400, wantType: "InvalidParameterException", wantMsg: "SecretId is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := raw(t, e.url, tc.target, tc.body, tc.header)
			if status != tc.wantStatus || body["__type"] != tc.wantType || !strings.Contains(body["message"].(string), tc.wantMsg) {
				t.Errorf("got %d %v, want %d %s containing %q", status, body, tc.wantStatus, tc.wantType, tc.wantMsg)
			}
			if h.Get("X-Amzn-Errortype") != tc.wantType || h.Get("Content-Type") != "application/x-amz-json-1.1" || h.Get("X-Amzn-Requestid") == "" {
				t.Errorf("headers %v", h)
			}
		})
	}
	resp, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / answered %d", resp.StatusCode)
	}
}

func TestTimestampsAreEpochSeconds(t *testing.T) {
	c := newClock()
	c.Add(250 * time.Millisecond)
	e := newEmu(t, Options{Now: c.Now})
	e.create(t, "s", "v")
	_, _, body := raw(t, e.url, "secretsmanager.DescribeSecret", `{"SecretId":"s"}`, nil)
	want := float64(c.Now().UnixMilli()) / 1000
	if got, ok := body["CreatedDate"].(float64); !ok || got != want {
		t.Errorf("CreatedDate = %#v, want the number %v", body["CreatedDate"], want)
	}
	for _, absent := range []string{"RotationEnabled", "LastRotatedDate", "NextRotationDate", "DeletedDate", "Description"} {
		if _, ok := body[absent]; ok {
			t.Errorf("%s is present in %v", absent, body)
		}
	}
	d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil || !d.CreatedDate.Equal(c.Now()) {
		t.Errorf("the SDK reads CreatedDate %v, want %v (%v)", d.CreatedDate, c.Now(), err)
	}
}

func TestEventsEndpoint(t *testing.T) {
	e, _ := rotEmu(t, Options{})
	arn, _ := e.create(t, "s", "v")
	e.create(t, "other", "v")
	for _, id := range []string{"s", "other"} {
		if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(id), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"s", "other"} {
		if _, err := e.srv.WaitEvent(ctxT(t), func(ev Event) bool {
			return ev.Type == RotationSucceeded && strings.Contains(ev.SecretARN, ":secret:"+id+"-")
		}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(query string) (int, []Event) {
		resp, err := http.Get(e.url + "/_emulator/events" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Events []Event }
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, body.Events
	}
	want := e.srv.Events(arn)
	for _, q := range []string{"?secret=s", "?secret=" + arn} {
		status, got := get(q)
		if status != 200 || len(got) != len(want) {
			t.Fatalf("%s: %d, %d events, want %d", q, status, len(got), len(want))
		}
		for i := range got {
			w, g := want[i], got[i]
			if d := g.Duration - w.Duration; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("event %d duration %v, want %v", i, g.Duration, w.Duration)
			}
			g.Duration, w.Duration = 0, 0
			if !g.Time.Equal(w.Time) {
				t.Errorf("event %d time %v, want %v", i, g.Time, w.Time)
			}
			g.Time, w.Time = time.Time{}, time.Time{}
			if g != w {
				t.Errorf("event %d = %+v, want %+v", i, g, w)
			}
		}
	}
	if _, all := get(""); len(all) != 2*len(want) {
		t.Errorf("all events: %d, want %d", len(all), 2*len(want))
	}
	_, all := get("")
	last := all[len(all)-1].Seq
	if _, after := get("?after=" + strconv.FormatInt(last-1, 10)); len(after) != 1 || after[0].Seq != last {
		t.Errorf("after=%d returned %+v, want the last event only", last-1, after)
	}
	if _, after := get("?after=" + strconv.FormatInt(last, 10)); len(after) != 0 {
		t.Errorf("after=%d returned %+v, want none", last, after)
	}
	if status, _ := get("?after=-1"); status != http.StatusBadRequest {
		t.Errorf("after=-1 answered %d", status)
	}
	resp, err := http.Post(e.url+"/_emulator/events", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /_emulator/events answered %d", resp.StatusCode)
	}
}

func TestWaitEventHonoursContext(t *testing.T) {
	e := newEmu(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.srv.WaitEvent(ctx, func(Event) bool { return true }); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("WaitEvent with a cancelled context: %v", err)
	}
}

func TestNewValidatesOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // "" for success
	}{
		{name: "zero value", opts: Options{}},
		{name: "bad region", opts: Options{Region: "mars"}, want: `Options.Region "mars"`},
		{name: "bad account", opts: Options{AccountID: "12345"}, want: `Options.AccountID "12345" is not 12 digits`},
		{name: "negative attempts", opts: Options{RotationAttempts: -1}, want: "Options.RotationAttempts is -1"},
		{name: "negative delay", opts: Options{RetryDelay: -time.Second}, want: "Options.RetryDelay is -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if s.region != DefaultRegion || s.account != DefaultAccountID || s.attempts != DefaultRotationAttempts || s.retryDelay != DefaultRetryDelay {
					t.Errorf("defaults: %s %s %d %s", s.region, s.account, s.attempts, s.retryDelay)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLogsAreJSONAndCarryNoSecretValue(t *testing.T) {
	var buf logbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	e, _ := rotEmu(t, Options{Logger: logger})
	const value = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
	arn, _ := e.create(t, "s", value)
	e.put(t, arn, token("v2"), value+"2")
	e.value(t, arn, "AWSCURRENT")
	if _, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(t, arn, RotationSucceeded, 0)
	e.srv.Close()
	out := buf.String()
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "MIIEvQ") {
		t.Errorf("a secret value reached the log:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var sawRequest, sawEvent bool
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		sawRequest = sawRequest || m["msg"] == "request"
		sawEvent = sawEvent || m["msg"] == "rotation event"
	}
	if !sawRequest || !sawEvent {
		t.Errorf("want request and rotation event lines, got:\n%s", out)
	}
}
