// Package backend is the contract between the Flows endpoint gateway and the
// business logic behind it, and its two adapters: a Lambda function invoked
// synchronously, and an HTTPS URL. The backend never sees a key, a
// ciphertext or a signature: it gets the decrypted request and answers JSON.
//
// # Request
//
// The same JSON goes to both adapters (the Lambda payload, or the body of an
// HTTPS POST with Content-Type application/json):
//
//	{"request":  <the decrypted Flows request object, exactly as received>,
//	 "metadata": {"request_id":  "<the endpoint's Lambda request ID>",
//	              "received_at": "<RFC 3339, nanoseconds>",
//	              "deadline":    "<RFC 3339: answer before this>",
//	              "key_label":   "AWSCURRENT" | "AWSPENDING" | "AWSPREVIOUS"}}
//
// An HTTPS call also carries X-Flowkey-Signature-256: "sha256=" and the hex
// HMAC-SHA256 of the body keyed with the Meta app secret, so the backend can
// check that the call comes from the gateway (absent only when the endpoint
// runs without an app secret, in local tests).
//
// # Response
//
//	{"status": 200, "response": {<the Flow response: screen and data>}}
//	{"status": 427, "error_msg": "<optional text the user sees>"}
//
// "status" defaults to 200, and 200 needs a JSON object "response". 427
// (the flow token is no longer valid) makes the gateway answer HTTP 427 with
// {"error_msg": ...}, unencrypted, as Meta's documentation shows it. Member
// names are exact, and nothing else is accepted: a typo such as "Response"
// fails loudly instead of sending the user an empty screen.
//
// # Failures
//
// Anything else is an *Error: another status, a missing or invalid
// response, a Lambda FunctionError or an invoke error, an HTTPS status other
// than 2xx, a response over MaxResponseBytes, a redirect (never followed), or
// the deadline passing (Error.Timeout). The gateway answers 500, or 504 for a
// timeout; never 421, which would make the client re-fetch the key for
// nothing. The gateway never retries a backend call: a data_exchange need
// not be idempotent, and Meta's 10 seconds leave no room.
//
// Error.Reason is safe to log: it names the kind of failure, an HTTP status
// or an AWS error code, never the backend's own message, which could quote
// the user's data.
package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowkey/flowkey/internal/strictjson"
)

// MaxResponseBytes bounds a backend's answer: sealed and base64-encoded it
// must still fit in a Lambda response (6 MB).
const MaxResponseBytes = 3 << 20

// Statuses a backend may ask for.
const (
	StatusOK               = 200
	StatusFlowTokenInvalid = 427
)

// Request is what the gateway sends.
type Request struct {
	Request  json.RawMessage `json:"request"`
	Metadata Metadata        `json:"metadata"`
}

// Metadata describes the request; none of it comes from the user.
type Metadata struct {
	RequestID  string    `json:"request_id"`
	ReceivedAt time.Time `json:"received_at"`
	Deadline   time.Time `json:"deadline"`
	KeyLabel   string    `json:"key_label"`
	// Tenant is the fleet tenant the request's path named (/t/<tenant>);
	// absent for the single-secret path.
	Tenant string `json:"tenant,omitempty"`
}

// Response is a backend's valid answer.
type Response struct {
	// Status is StatusOK or StatusFlowTokenInvalid.
	Status int
	// Response is the JSON object to encrypt (StatusOK only).
	Response json.RawMessage
	// ErrorMsg is the optional text of a 427.
	ErrorMsg string
}

// Backend is one adapter.
type Backend interface {
	Call(ctx context.Context, req *Request) (*Response, error)
}

// Error is a backend failure.
type Error struct {
	// Timeout is true when the deadline passed (HTTP 504 at the gateway).
	Timeout bool
	// Reason is a short description that is safe to log.
	Reason string
	// Err is the cause, for errors.Is and errors.As; it is not logged.
	Err error
}

func (e *Error) Error() string { return "backend: " + e.Reason }
func (e *Error) Unwrap() error { return e.Err }

func failure(reason string, err error) *Error { return &Error{Reason: reason, Err: err} }

// callError classifies an error of the call itself.
func callError(ctx context.Context, reason string, err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return &Error{Timeout: true, Reason: "no answer before the deadline", Err: err}
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return &Error{Timeout: true, Reason: "no answer before the deadline", Err: err}
	}
	return failure(reason, err)
}

// DecodeResponse validates a backend's answer; see the package comment.
func DecodeResponse(payload []byte) (*Response, error) {
	if len(payload) > MaxResponseBytes {
		return nil, failure(fmt.Sprintf("response is over %d bytes", MaxResponseBytes), nil)
	}
	members, err := strictjson.Members(payload)
	if err != nil {
		return nil, failure("response is not one JSON object", err)
	}
	if len(strictjson.Duplicates(members)) > 0 {
		return nil, failure("response has a member twice", nil)
	}
	r := &Response{Status: StatusOK}
	var body json.RawMessage
	var hasMsg bool
	for _, m := range members {
		switch m.Name {
		case "status":
			if strictjson.KindOf(m.Value) != strictjson.Number || json.Unmarshal(m.Value, &r.Status) != nil {
				return nil, failure(`response "status" is not a whole number`, nil)
			}
		case "response":
			body = m.Value
		case "error_msg":
			hasMsg = true
			if strictjson.KindOf(m.Value) != strictjson.String || json.Unmarshal(m.Value, &r.ErrorMsg) != nil {
				return nil, failure(`response "error_msg" is not a string`, nil)
			}
		default:
			return nil, failure(`response has a member other than "status", "response" and "error_msg"`, nil)
		}
	}
	switch r.Status {
	case StatusOK:
		if strictjson.KindOf(body) != strictjson.Object {
			return nil, failure(`status 200 needs a JSON object "response"`, nil)
		}
		if hasMsg {
			return nil, failure(`"error_msg" goes only with status 427`, nil)
		}
		r.Response = body
	case StatusFlowTokenInvalid:
		if body != nil {
			return nil, failure(`status 427 takes no "response"`, nil)
		}
	default:
		return nil, failure(fmt.Sprintf("status %d is not 200 or 427", r.Status), nil)
	}
	return r, nil
}
