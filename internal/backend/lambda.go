package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// LambdaAPI is the part of the Lambda client the adapter calls.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Lambda invokes a function synchronously (RequestResponse).
type Lambda struct {
	api      LambdaAPI
	function string
}

// NewLambda returns the adapter for function (a name or ARN).
func NewLambda(api LambdaAPI, function string) (*Lambda, error) {
	if api == nil || function == "" {
		return nil, errors.New("backend: a Lambda client and a function name are required")
	}
	return &Lambda{api: api, function: function}, nil
}

// Call invokes the function with req and decodes its answer. The client
// should not retry (see the package comment); the deadline of ctx bounds
// the call.
func (l *Lambda) Call(ctx context.Context, req *Request) (*Response, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, failure("cannot encode the request", err)
	}
	out, err := l.api.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		reason := "invoke failed"
		var api smithy.APIError
		if errors.As(err, &api) {
			// AWS error codes are a fixed vocabulary, safe to log.
			reason += " (" + api.ErrorCode() + ")"
		}
		return nil, callError(ctx, reason, err)
	}
	if fe := aws.ToString(out.FunctionError); fe != "" {
		// The payload holds the function's error message: not logged.
		kind := "function error"
		if fe == "Unhandled" || fe == "Handled" {
			kind += " (" + fe + ")"
		}
		return nil, failure(kind, nil)
	}
	if out.StatusCode != 200 {
		return nil, failure(fmt.Sprintf("invoke answered status %d", out.StatusCode), nil)
	}
	return DecodeResponse(out.Payload)
}
