package endpointlog

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	steady  = `[endpoint] {"time":"t","level":"INFO","msg":"request","action":"INIT","screen":"","outcome":"ok","status":200,"key_label":"AWSCURRENT","rsa_ops":1,"duration_ms":3,"backend_ms":1,"refreshed":false,"signature_check":"on"}`
	refresh = `[endpoint] {"time":"t","level":"INFO","msg":"request","action":"data_exchange","outcome":"ok","status":200,"key_label":"AWSPENDING","rsa_ops":2,"refreshed":true,"signature_check":"on"}`
	miss    = `[endpoint] {"time":"t","level":"WARN","msg":"request","action":"","outcome":"no_key","status":421,"key_label":"","rsa_ops":3,"refreshed":false,"signature_check":"off"}`
	emf     = `[endpoint] {"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"RSAOperations":1,"status":200}`
	report  = `[endpoint] REPORT RequestId: 1	Duration: 3.2 ms`
	failed  = `[endpoint] {"level":"ERROR","msg":"backend call failed"}`
)

func TestRequestLinesAreCountedAndTheRestOnlySeen(t *testing.T) {
	var r Recorder
	// Chunks that split lines anywhere, as pipes deliver them.
	text := strings.Join([]string{steady, report, refresh, emf, miss, failed, steady}, "\n") + "\n"
	for i := 0; i < len(text); i += 7 {
		if _, err := r.Write([]byte(text[i:min(i+7, len(text))])); err != nil {
			t.Fatal(err)
		}
	}
	got := r.Totals()
	if got.Requests != 4 || got.RSAOps != 7 || got.Refreshes != 1 || got.SignatureOff != 1 || got.Lines != 7 || got.Errors != 1 {
		t.Errorf("totals %+v", got)
	}
	if got.ByStatus[200] != 3 || got.ByStatus[421] != 1 || got.ByLabel["AWSCURRENT"] != 2 || got.ByLabel["AWSPENDING"] != 1 || got.ByLabel[""] != 1 || got.ByOutcome["no_key"] != 1 {
		t.Errorf("by status %v, by label %v, by outcome %v", got.ByStatus, got.ByLabel, got.ByOutcome)
	}
	if ops := got.RSAOpsPerRequest(); ops != 1.75 {
		t.Errorf("RSA ops per request = %v, want 1.75", ops)
	}
}

func TestSubIsWhatHappenedSince(t *testing.T) {
	var r Recorder
	fmt.Fprintln(&r, steady)
	before := r.Totals()
	fmt.Fprintln(&r, refresh)
	fmt.Fprintln(&r, refresh)
	d := r.Totals().Sub(before)
	if d.Requests != 2 || d.RSAOps != 4 || d.Refreshes != 2 || d.ByLabel["AWSPENDING"] != 2 || len(d.ByLabel) != 1 || d.RSAOpsPerRequest() != 2 {
		t.Errorf("since = %+v", d)
	}
	if (Totals{}).RSAOpsPerRequest() != 0 {
		t.Error("no requests must give 0 RSA operations per request")
	}
}

func TestWaitRequestsReturnsOnceTheLinesHaveArrived(t *testing.T) {
	var r Recorder
	done := make(chan Totals)
	go func() {
		got, err := r.WaitRequests(context.Background(), 2)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	fmt.Fprintln(&r, steady)
	fmt.Fprintln(&r, report)
	fmt.Fprintln(&r, miss)
	if got := <-done; got.Requests < 2 {
		t.Errorf("WaitRequests returned with %d requests", got.Requests)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if got, err := r.WaitRequests(ctx, 3); err == nil || got.Requests != 2 || !strings.Contains(err.Error(), "2 request lines read, waiting for 3") {
		t.Errorf("WaitRequests for a line that never comes = %d, %v", got.Requests, err)
	}
}
