package backend

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// The adapter takes what the SDK client offers.
var _ LambdaAPI = (*lambda.Client)(nil)

type fakeLambda struct {
	in   *lambda.InvokeInput
	out  *lambda.InvokeOutput
	err  error
	wait bool // block until ctx ends
}

func (f *fakeLambda) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	if f.wait {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.out, f.err
}

var testRequest = &Request{Request: json.RawMessage(`{"action":"INIT","flow_token":"t"}`), Metadata: Metadata{RequestID: "r", KeyLabel: "AWSPENDING"}}

func TestLambdaInvokesSynchronouslyWithTheContract(t *testing.T) {
	f := &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"response":{"screen":"FIRST"}}`)}}
	l, err := NewLambda(f, "arn:aws:lambda:us-east-1:111122223333:function:flows-backend")
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Call(context.Background(), testRequest)
	if err != nil || r.Status != 200 || string(r.Response) != `{"screen":"FIRST"}` {
		t.Fatalf("got %+v, %v", r, err)
	}
	if aws.ToString(f.in.FunctionName) != "arn:aws:lambda:us-east-1:111122223333:function:flows-backend" || f.in.InvocationType != types.InvocationTypeRequestResponse {
		t.Fatalf("invoked %s as %s", aws.ToString(f.in.FunctionName), f.in.InvocationType)
	}
	var sent Request
	if err := json.Unmarshal(f.in.Payload, &sent); err != nil || string(sent.Request) != `{"action":"INIT","flow_token":"t"}` || sent.Metadata.KeyLabel != "AWSPENDING" {
		t.Fatalf("payload %s: %v", f.in.Payload, err)
	}
}

func TestLambdaFailures(t *testing.T) {
	const secretish = "user data in the error message"
	tests := []struct {
		name    string
		f       *fakeLambda
		reason  string
		timeout bool
	}{
		{"unhandled function error", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: []byte(`{"errorMessage":"` + secretish + `"}`)}}, "function error (Unhandled)", false},
		{"odd function error", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String(secretish), Payload: []byte(`{}`)}}, "function error", false},
		{"status", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 202}}, "invoke answered status 202", false},
		{"AWS error", &fakeLambda{err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User is not authorized to perform lambda:InvokeFunction"}}, "invoke failed (AccessDeniedException)", false},
		{"plain error", &fakeLambda{err: errors.New("dial tcp: connection refused")}, "invoke failed", false},
		{"bad payload", &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"status":500}`)}}, "status 500 is not 200 or 427", false},
		{"deadline", &fakeLambda{wait: true}, "no answer before the deadline", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := NewLambda(tc.f, "fn")
			ctx := context.Background()
			if tc.f.wait {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 0) // the deadline has passed
				defer cancel()
			}
			_, err := l.Call(ctx, testRequest)
			var e *Error
			if !errors.As(err, &e) || e.Reason != tc.reason || e.Timeout != tc.timeout {
				t.Fatalf("got %#v; want reason %q, timeout %v", err, tc.reason, tc.timeout)
			}
			if strings.Contains(e.Error(), secretish) {
				t.Fatal("the error quotes the backend's message")
			}
		})
	}
	if _, err := NewLambda(nil, "fn"); err == nil {
		t.Fatal("nil client accepted")
	}
}
