// Command bootstrap is a throwaway Lambda function for the RIEInvoker test.
// The "mode" field of the event chooses its behaviour so a single binary can
// show every outcome the invoker has to map.
package main

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	// Step is set on Secrets Manager rotation events; the step named by the
	// FAIL_STEP environment variable fails like mode "error".
	Step string `json:"Step"`
	Mode string `json:"mode"`
	// Hold is a TCP address; in "hold" mode the function connects to it and
	// blocks until the test writes a byte, so the test controls how long the
	// invocation stays in progress without sleeping.
	Hold string `json:"hold"`
	Echo string `json:"echo"`
}

type result struct {
	Echo string `json:"echo"`
}

func handle(ctx context.Context, ev event) (result, error) {
	if ev.Step != "" && ev.Step == os.Getenv("FAIL_STEP") {
		ev.Mode = "error"
	}
	switch ev.Mode {
	case "error":
		return result{}, errors.New("boom: step refused")
	case "crash":
		os.Exit(3)
	case "hold":
		c, err := net.Dial("tcp", ev.Hold)
		if err != nil {
			return result{}, err
		}
		defer c.Close()
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return result{}, err
		}
	}
	return result{Echo: ev.Echo}, nil
}

func main() {
	lambda.Start(handle)
}
