package kmsproxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
)

// block is a 16-byte AES key encrypted to key as a WhatsApp client does.
func block(t *testing.T, c *kms.Client, keyID string) []byte {
	t.Helper()
	b, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, publicKey(t, c, keyID), []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addFault(t *testing.T, p *kmsproxy.Proxy, f kmsproxy.Fault) {
	t.Helper()
	if _, err := p.AddFault(f); err != nil {
		t.Fatal(err)
	}
}

// The proxy passes calls through unchanged, counting each by caller, op,
// key and result.
func TestProxyForwardsAndCountsByCallerOpKeyAndResult(t *testing.T) {
	px := startProxied(t)
	rot, ep := px.as(rotator), px.as(endpoint)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	b := block(t, rot, arn)
	for range 3 {
		if _, err := decrypt(ctxT(t), ep, arn, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := decrypt(ctxT(t), ep, arn, b[:100]); errorCode(err) != "InvalidCiphertextException" {
		t.Fatalf("Decrypt of a short block = %v", err)
	}
	calls := px.proxy.Calls()
	keyID := arn[strings.LastIndexByte(arn, '/')+1:]
	for _, tt := range []struct {
		match kmsproxy.Call
		want  int
	}{
		{kmsproxy.Call{Caller: endpoint, Op: "Decrypt"}, 4},
		{kmsproxy.Call{Caller: endpoint, Op: "Decrypt", Result: kmsproxy.ResultOK}, 3},
		{kmsproxy.Call{Op: "Decrypt", Result: "InvalidCiphertextException"}, 1},
		{kmsproxy.Call{Op: "Decrypt", Key: arn}, 4},
		{kmsproxy.Call{Op: "Decrypt", Key: keyID}, 4},
		{kmsproxy.Call{Caller: rotator}, 2}, // CreateKey, GetPublicKey
		{kmsproxy.Call{Caller: rotator, Op: "Decrypt"}, 0},
	} {
		if got := calls.Count(tt.match); got != tt.want {
			t.Errorf("Count(%+v) = %d, want %d; calls %v", tt.match, got, tt.want, calls.List())
		}
	}
	// The proxy's own DescribeKey (for correction 1) is not counted.
	if n := calls.Count(kmsproxy.Call{Op: "DescribeKey"}); n != 0 {
		t.Errorf("%d DescribeKey calls counted", n)
	}
	before := px.proxy.Calls()
	if _, err := decrypt(ctxT(t), ep, arn, b); err != nil {
		t.Fatal(err)
	}
	if d := px.proxy.Calls().Sub(before); d.Count(kmsproxy.Call{}) != 1 || d.Count(kmsproxy.Call{Caller: endpoint, Op: "Decrypt", Result: kmsproxy.ResultOK}) != 1 {
		t.Errorf("Sub = %v, want the one Decrypt", d.List())
	}
	px.proxy.ResetCounters()
	if n := px.proxy.Calls().Count(kmsproxy.Call{}); n != 0 {
		t.Errorf("%d calls after ResetCounters", n)
	}
}

// A throttled call is retried by the SDK (its standard retryer takes
// ThrottlingException as retryable): two throttles are absorbed, every
// attempt counted; a throttle that lasts reaches the caller as the
// ThrottlingException error code (the KMS SDK has no type for it).
func TestProxyThrottlesAndTheSDKRetries(t *testing.T) {
	px := startProxied(t)
	rot, ep := px.as(rotator), px.as(endpoint)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	b := block(t, rot, arn)
	addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Error: kmsproxy.ThrottlingException, Times: 2})
	if _, err := decrypt(ctxT(t), ep, arn, b); err != nil {
		t.Fatalf("Decrypt after two throttles: %v", err)
	}
	calls := px.proxy.Calls()
	if calls.Count(kmsproxy.Call{Op: "Decrypt", Result: kmsproxy.ThrottlingException}) != 2 || calls.Count(kmsproxy.Call{Op: "Decrypt", Result: kmsproxy.ResultOK}) != 1 {
		t.Errorf("calls = %v, want 2 throttled attempts and 1 success", calls.List())
	}

	addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Caller: endpoint, Error: kmsproxy.ThrottlingException, Times: kmsproxy.Forever})
	_, err := decrypt(ctxT(t), ep, arn, b)
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException" || !strings.Contains(api.ErrorMessage(), "rate") {
		t.Fatalf("Decrypt while throttled = %v, want ThrottlingException", err)
	}
	if fault := api.ErrorFault(); fault != smithy.FaultUnknown && fault != smithy.FaultClient {
		t.Errorf("ErrorFault = %v", fault)
	}
	// Only the endpoint is throttled: the rotator's call goes through.
	if _, err := decrypt(ctxT(t), rot, arn, b); err != nil {
		t.Errorf("the rotator's Decrypt: %v", err)
	}
}

// Faults by key and op answer only calls that name that key, whichever
// way they name it, with AWS's exceptions and messages.
func TestProxyInjectsExceptionsByKey(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	hit := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	spared := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	bHit, bSpared := block(t, rot, hit), block(t, rot, spared)
	keyID := hit[strings.LastIndexByte(hit, '/')+1:]
	tests := []struct {
		exception string
		check     func(error) bool
		message   string
	}{
		{kmsproxy.DisabledException, func(err error) bool { var e *types.DisabledException; return errors.As(err, &e) }, hit + " is disabled."},
		{kmsproxy.KMSInvalidStateException, func(err error) bool { var e *types.KMSInvalidStateException; return errors.As(err, &e) }, hit + " is pending deletion."},
		{kmsproxy.NotFoundException, func(err error) bool { var e *types.NotFoundException; return errors.As(err, &e) }, "Key '" + hit + "' does not exist"},
		{kmsproxy.AccessDeniedException, func(err error) bool { return errorCode(err) == "AccessDeniedException" }, "is not authorized to perform: kms:Decrypt on resource: " + hit},
		{kmsproxy.KMSInternalException, func(err error) bool { var e *types.KMSInternalException; return errors.As(err, &e) }, "injected"},
	}
	for _, tt := range tests {
		t.Run(tt.exception, func(t *testing.T) {
			px.proxy.ClearFaults()
			// By key ID: the call names the key by its ARN.
			addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Key: keyID, Error: tt.exception, Times: kmsproxy.Forever})
			_, err := decrypt(ctxT(t), rot, hit, bHit)
			if !tt.check(err) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Decrypt = %v, want %s with %q", err, tt.exception, tt.message)
			}
			if _, err := decrypt(ctxT(t), rot, spared, bSpared); err != nil {
				t.Errorf("Decrypt with the other key: %v", err)
			}
			if _, err := rot.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(hit)}); err != nil {
				t.Errorf("DescribeKey of the key (another op): %v", err)
			}
		})
	}
}

// After lets calls through first; Times bounds the fault; a custom message
// replaces AWS's; spent faults stay listed with their use.
func TestProxyFaultAfterTimesAndMessage(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	b := block(t, rot, arn)
	addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Key: arn, Error: kmsproxy.DisabledException, Message: "disabled behind flowkey's back", After: 2, Times: 1})
	var got []string
	for range 4 {
		_, err := decrypt(ctxT(t), rot, arn, b)
		code := errorCode(err)
		if code == "" && err != nil {
			t.Fatal(err)
		}
		if code == "DisabledException" && !strings.Contains(err.Error(), "disabled behind flowkey's back") {
			t.Errorf("message = %v", err)
		}
		got = append(got, code)
	}
	if want := []string{"", "", "DisabledException", ""}; !slices.Equal(got, want) {
		t.Errorf("results = %q, want %q", got, want)
	}
	// Every: one call in three, after the first.
	px.proxy.ClearFaults()
	addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Error: kmsproxy.DisabledException, After: 1, Every: 3, Times: 2})
	got = nil
	for range 9 {
		_, err := decrypt(ctxT(t), rot, arn, b)
		got = append(got, errorCode(err))
	}
	if want := []string{"", "DisabledException", "", "", "DisabledException", "", "", "", ""}; !slices.Equal(got, want) {
		t.Errorf("with Every 3: results = %q, want %q", got, want)
	}
	fs := px.proxy.Faults()
	if len(fs) != 1 || fs[0].Used != 2 {
		t.Errorf("Faults = %+v, want the one fault, used twice", fs)
	}
	if !px.proxy.RemoveFault(fs[0].ID) || px.proxy.RemoveFault(fs[0].ID) || len(px.proxy.Faults()) != 0 {
		t.Error("RemoveFault did not remove the fault exactly once")
	}
}

// A latency holds the call, then answers it (or the fault's exception).
func TestProxyLatency(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	b := block(t, rot, arn)
	const lat = 150 * time.Millisecond
	id, err := px.proxy.AddFault(kmsproxy.Fault{Op: "Decrypt", Latency: lat, Times: 1})
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() { held <- px.proxy.WaitFault(ctxT(t), id) }()
	began := time.Now()
	if _, err := decrypt(ctxT(t), rot, arn, b); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < lat {
		t.Errorf("Decrypt took %s, want at least the latency %s", took, lat)
	}
	if err := <-held; err != nil {
		t.Errorf("WaitFault = %v", err)
	}
	if err := px.proxy.WaitFault(ctxT(t), id+100); err == nil {
		t.Error("WaitFault of a fault that does not exist returned nil")
	}
	addFault(t, px.proxy, kmsproxy.Fault{Op: "Decrypt", Latency: lat, Error: kmsproxy.ThrottlingException, Times: 1})
	c := px.as(endpoint)
	// One attempt: the SDK would retry the throttle.
	began = time.Now()
	_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: aws.String(arn), CiphertextBlob: b, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256},
		func(o *kms.Options) { o.RetryMaxAttempts = 1 })
	if errorCode(err) != "ThrottlingException" || time.Since(began) < lat {
		t.Errorf("Decrypt = %v after %s, want ThrottlingException after %s", err, time.Since(began), lat)
	}
}

func TestProxyRefusesFaultsThatMeanNothing(t *testing.T) {
	px := startProxied(t)
	for name, f := range map[string]kmsproxy.Fault{
		"no error, no latency": {Op: "Decrypt", Times: 1},
		"not an exception":     {Error: "Throttled", Times: 1},
		"zero times":           {Error: kmsproxy.ThrottlingException},
		"negative after":       {Error: kmsproxy.ThrottlingException, Times: 1, After: -1},
		"negative latency":     {Latency: -time.Second, Error: kmsproxy.ThrottlingException, Times: 1},
		"negative every":       {Error: kmsproxy.ThrottlingException, Times: 1, Every: -2},
	} {
		t.Run(name, func(t *testing.T) {
			var in *kmsproxy.InputError
			if _, err := px.proxy.AddFault(f); !errors.As(err, &in) {
				t.Errorf("AddFault = %v, want an InputError", err)
			}
		})
	}
}

// A stopped local-kms looks like an unreachable KMS: the connection drops
// and the SDK reports a transport error, not an API error.
func TestProxyDropsTheConnectionWhenLocalKMSIsDown(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	px.kms.Stop()
	_, err := rot.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	if err == nil || errorCode(err) != "" {
		t.Fatalf("DescribeKey with local-kms down = %v, want a transport error", err)
	}
	if n := px.proxy.Calls().Count(kmsproxy.Call{Op: "DescribeKey", Result: kmsproxy.ResultDropped}); n != 3 {
		t.Errorf("%d dropped DescribeKey calls, want the SDK's 3 attempts", n)
	}
	if err := px.kms.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := rot.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Errorf("DescribeKey after the restart: %v", err)
	}
}

func TestProxyControlAPI(t *testing.T) {
	px := startProxied(t)
	ctl := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, px.url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	status, out := ctl("POST", "/_kms/faults", `{"op":"Decrypt","caller":"local-endpoint","error":"ThrottlingException","latency":"10ms","times":-1}`)
	var spec kmsproxy.FaultSpec
	if status != 200 || json.Unmarshal([]byte(out), &spec) != nil || spec.ID == 0 || *spec.Times != kmsproxy.Forever {
		t.Fatalf("POST /_kms/faults = %d %s", status, out)
	}
	if status, out := ctl("POST", "/_kms/faults", `{"op":"Decrypt"}`); status != 400 || !strings.Contains(out, "latency") {
		t.Errorf("POST of a fault that does nothing = %d %s, want 400 naming the fix", status, out)
	}
	if status, out := ctl("POST", "/_kms/faults", `{"op":"Decrypt","error":"ThrottlingException","latncy":"1s"}`); status != 400 || !strings.Contains(out, "latncy") {
		t.Errorf("POST with an unknown field = %d %s, want 400", status, out)
	}
	arn := rsaKey(t, px.as(rotator), types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	if _, err := decrypt(ctxT(t), px.as(endpoint), arn, block(t, px.as(rotator), arn)); errorCode(err) != "ThrottlingException" {
		t.Fatalf("Decrypt = %v, want the fault", err)
	}
	status, out = ctl("GET", "/_kms/faults", "")
	var faults []kmsproxy.FaultSpec
	if status != 200 || json.Unmarshal([]byte(out), &faults) != nil || len(faults) != 1 || faults[0].Used != 3 || faults[0].Latency != "10ms" {
		t.Errorf("GET /_kms/faults = %d %s, want the fault used 3 times", status, out)
	}
	status, out = ctl("GET", "/_kms/calls", "")
	var calls []kmsproxy.CallCount
	if status != 200 || json.Unmarshal([]byte(out), &calls) != nil || !slices.ContainsFunc(calls, func(c kmsproxy.CallCount) bool {
		return c.Caller == endpoint && c.Op == "Decrypt" && c.Result == "ThrottlingException" && c.Count == 3
	}) {
		t.Errorf("GET /_kms/calls = %d %s", status, out)
	}
	if status, _ := ctl("DELETE", "/_kms/faults", ""); status != 200 || len(px.proxy.Faults()) != 0 {
		t.Errorf("DELETE /_kms/faults = %d, %d faults left", status, len(px.proxy.Faults()))
	}
	if status, _ := ctl("POST", "/_kms/reset-counters", ""); status != 200 || px.proxy.Calls().Count(kmsproxy.Call{}) != 0 {
		t.Errorf("POST /_kms/reset-counters = %d", status)
	}
	if status, out := ctl("GET", "/_kms/nothing", ""); status != 404 || !strings.Contains(out, kmsproxy.ControlRoutes) {
		t.Errorf("GET of an unknown route = %d %s, want 404 listing the routes", status, out)
	}
	// What is neither a KMS call nor a control call is refused.
	resp, err := http.Post(px.url+"/", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("POST / without X-Amz-Target = %d, want 400", resp.StatusCode)
	}
}

// Wait returns once the counts satisfy the condition, and with ctx's error
// when they never do.
func TestProxyWaitForCalls(t *testing.T) {
	px := startProxied(t)
	rot := px.as(rotator)
	arn := rsaKey(t, rot, types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt)
	b := block(t, rot, arn)
	twoDecrypts := func(c kmsproxy.Calls) bool { return c.Count(kmsproxy.Call{Op: "Decrypt"}) >= 2 }
	done := make(chan error, 1)
	go func() {
		_, err := px.proxy.Wait(ctxT(t), twoDecrypts)
		done <- err
	}()
	for range 2 {
		if _, err := decrypt(ctxT(t), rot, arn, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Wait = %v", err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if c, err := px.proxy.Wait(ctx, func(c kmsproxy.Calls) bool { return false }); !errors.Is(err, context.Canceled) || c.Count(kmsproxy.Call{Op: "Decrypt"}) != 2 {
		t.Errorf("Wait on a cancelled context = %v, %v", c, err)
	}
}
