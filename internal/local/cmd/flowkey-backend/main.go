// Command flowkey-backend is the sample Flow backend (internal/local/
// flowbackend) as a Lambda function, for an endpoint configured with
// BACKEND_FUNCTION: the local stack runs it under its own RIE. Lambda's
// IAM decides who may invoke it, so it checks no signature.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flowkey/flowkey/internal/local/flowbackend"
)

func main() {
	s := &flowbackend.Server{Logger: slog.New(slog.NewJSONHandler(os.Stdout, nil))}
	lambda.Start(s.Invoke)
}
