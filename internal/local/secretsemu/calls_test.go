package secretsemu

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestCallsCountRequestsByCallerAndOperation(t *testing.T) {
	e := newEmu(t, Options{})
	arn, _ := e.create(t, "s", "v")
	for range 2 {
		if _, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed request counts too.
	if _, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("missing")}); err == nil {
		t.Fatal("DescribeSecret of a missing secret succeeded")
	}
	raw(t, e.url, "secretsmanager.GetSecretValue", `{"SecretId":"s"}`, map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDRAW/20260304/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00"})
	raw(t, e.url, "secretsmanager.GetSecretValue", `{"SecretId":"s"}`, map[string]string{"Authorization": "AWS4-HMAC-SHA256 SignedHeaders=host"})
	raw(t, e.url, "kms.Decrypt", `{}`, nil) // not an operation of Secrets Manager: not counted
	calls := e.srv.Calls()
	sdk := e.callerOfClient(t)
	for c, want := range map[Call]int{
		{Caller: sdk, Op: "CreateSecret"}:         1,
		{Caller: sdk, Op: "GetSecretValue"}:       2,
		{Caller: sdk, Op: "DescribeSecret"}:       1,
		{Caller: "AKIDRAW", Op: "GetSecretValue"}: 1,
		{Op: "GetSecretValue"}:                    4, // "" matches any caller, the unsigned one too
		{Caller: "AKIDRAW"}:                       1,
		{}:                                        6,
	} {
		if got := calls.Count(c); got != want {
			t.Errorf("Count(%+v) = %d, want %d (calls %v)", c, got, want, calls)
		}
	}
	e.srv.ResetCalls()
	if n := e.srv.Calls().Count(Call{}); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}

// callerOfClient is the access key ID the test client signs with.
func (e *emu) callerOfClient(t *testing.T) string {
	t.Helper()
	creds, err := e.client.Options().Credentials.Retrieve(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return creds.AccessKeyID
}
