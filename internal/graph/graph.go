// Package graph is the client for the Graph API endpoints flowkey uses:
// the per-number business public key (whatsapp_business_encryption) and a
// WABA's phone number list.
//
// # Retries and time
//
// A call makes up to Options.MaxAttempts attempts, each bounded by
// Options.RequestTimeout and by the context's deadline. Transient failures
// (no response, HTTP 5xx, code 131000, is_transient, a 2xx body that does
// not decode) are retried after a full-jitter backoff. Graph's throttling
// codes (4, 17, 32, 613, 80000-80014, 130429, 131056, or HTTP 429) are
// retried at most once per call, and only after waiting out the
// estimated_time_to_regain_access Meta sent: without an estimate a retry
// is a guess that costs a call of an hourly budget of about 200, so the
// call fails at once. Under a deadline, no wait is taken unless a whole
// RequestTimeout still fits after it: a retry cut off half-way costs a
// call and, for an upload, leaves Meta's state unknown.
//
// # Errors
//
// Every failed call is an *Error. Its Failure says what went wrong: a
// Graph error object (even on HTTP 200), an HTTP error without one, a
// malformed 2xx, or no response at all (Transport names it: timeout,
// reset, EOF...). Code is Graph's code only for FailureGraph; 0 is a real
// Graph code ("cannot authenticate the app user"). Text from Meta is
// cleaned: any run of 8 or more of the token's characters, and the PEM of
// an upload, are replaced by "[redacted]". Auth and permission errors end
// with a fix that names the token secret (Auth.TokenSecret).
package graph

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Defaults for Options.
const (
	DefaultBaseURL = "https://graph.facebook.com"
	DefaultVersion = "v24.0"
)

// Signature statuses Meta reports for a stored key.
const (
	StatusValid    = "VALID"
	StatusMismatch = "MISMATCH"
)

// Token is a Graph access token. It prints, logs and marshals as
// "[redacted]"; only this package reads its value, to set the
// Authorization header.
type Token struct{ value string }

func NewToken(s string) Token { return Token{value: s} }

// IsZero reports whether no token was set.
func (t Token) IsZero() bool { return t.value == "" }

func (Token) String() string               { return "[redacted]" }
func (Token) GoString() string             { return "[redacted]" }
func (Token) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Token) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Auth is what every call needs: the token and the Graph API version
// ("v24.0"), both resolved once per invocation.
type Auth struct {
	Token   Token
	Version string
	// TokenSecret names the secret the token was read from, so that an
	// auth error's fix can say where to store a new one; "" if unknown.
	TokenSecret string
}

// Registration is what Meta holds for one phone number.
type Registration struct {
	PublicKeyPEM string         // as returned; " " or "" when Meta holds none
	PublicKey    *rsa.PublicKey // nil when the PEM is blank or not an RSA public key
	PublicDER    []byte         // PKIX DER of PublicKey
	// KeyProblem says why PublicKey is nil although Meta's answer says it
	// holds a key: a key that is not a usable RSA-2048 key, or KeyOmitted.
	KeyProblem string
	// KeyOmitted is a VALID answer without a key (Meta's v23 reference
	// example has that shape): Meta holds a key flowkey cannot see, which
	// is not the same as holding none.
	KeyOmitted bool
	Status     string // StatusValid, StatusMismatch, or what Meta sent
}

// PhoneNumber is one entry of GET /{WABA_ID}/phone_numbers.
type PhoneNumber struct {
	ID                 string `json:"id"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	VerifiedName       string `json:"verified_name"`
}

// Failure says what kind of failure an *Error is.
type Failure string

const (
	// FailureGraph: Meta answered with a Graph error object carrying a
	// code, on any HTTP status (200 included).
	FailureGraph Failure = "graph"
	// FailureHTTP: an HTTP error status without a Graph error code (an
	// edge proxy's page, an empty 429).
	FailureHTTP Failure = "http"
	// FailureMalformed: a 2xx whose body is not what the endpoint documents.
	FailureMalformed Failure = "malformed"
	// FailureTransport: no complete response (Transport says why), or the
	// caller's deadline or cancellation before any attempt.
	FailureTransport Failure = "transport"
)

// Transport causes of a FailureTransport.
const (
	TransportTimeout  = "timeout"            // no answer within RequestTimeout
	TransportDeadline = "deadline"           // the caller's deadline ended the call
	TransportCanceled = "canceled"           // the caller canceled the call
	TransportReset    = "connection reset"   // the peer reset the connection
	TransportRefused  = "connection refused" // nothing listened
	TransportEOF      = "EOF"                // the connection closed without a (complete) answer
	TransportTLS      = "TLS"                // certificate or handshake failure
	TransportDNS      = "DNS"                // the host name did not resolve
	TransportNetwork  = "network"            // any other network error
)

// Error is a failed Graph call after retries. Use errors.As to get it.
type Error struct {
	Op         string // "upload", "get", "list"
	Object     string // phone number ID or WABA ID
	Failure    Failure
	Transport  string // FailureTransport only: one of the Transport* causes
	HTTPStatus int    // 0 when no response arrived
	Code       int    // Graph error code: meaningful for FailureGraph only (see GraphCode)
	Subcode    int
	Type       string
	Message    string // Meta's message (never contains the token)
	// Details is error_data.details or error_user_msg when Meta sent one
	// that adds to Message (never contains the token).
	Details   string
	FBTraceID string
	Attempts  int
	// Retryable says whether a later attempt could succeed (transient or rate limit).
	Retryable bool
	// RateLimited is set for Graph's throttling codes and HTTP 429.
	RateLimited bool
	// RegainAccessIn is X-Business-Use-Case-Usage's estimated_time_to_regain_access.
	RegainAccessIn time.Duration
	// Uncertain describes the first attempt Meta may have carried out
	// without flowkey seeing its answer (no response, a 5xx, an unreadable
	// 2xx), e.g. "attempt 1: no response (timeout)"; "" when every attempt
	// was refused or never sent. An upload with Uncertain set may have
	// stored the key.
	Uncertain string
	// TokenSecret is Auth.TokenSecret, named in the fix of auth errors.
	TokenSecret string
	Err         error // transport or decoding cause, if any
}

func (e *Error) Unwrap() error { return e.Err }

// GraphCode is Graph's error code and whether Meta sent one: ok is false
// for transport, HTTP and malformed failures, whose Code is not a code.
func (e *Error) GraphCode() (code int, ok bool) {
	return e.Code, e.Failure == FailureGraph
}

// Call describes one HTTP attempt, for metrics and logs.
type Call struct {
	Op, Object string
	Attempt    int
	HTTPStatus int
	// Failure is "" for a successful attempt. Code is Graph's code only
	// when Failure is FailureGraph; Transport names a FailureTransport.
	Failure     Failure
	Code        int
	Transport   string
	RateLimited bool
	Duration    time.Duration
	Retrying    bool // another attempt follows
}

// Options tune the client. Zero values take the defaults noted.
type Options struct {
	BaseURL        string         // DefaultBaseURL; http:// only to loopback
	MaxAttempts    int            // 5
	BaseBackoff    time.Duration  // 200ms
	MaxBackoff     time.Duration  // 10s
	RequestTimeout time.Duration  // 10s per attempt
	Jitter         func() float64 // in [0,1); math/rand/v2 by default
	Observe        func(Call)     // called after every attempt; nil for none
}

// Client is safe for concurrent use.
type Client struct {
	hc   *http.Client
	opts Options
	base *url.URL // scheme and host only
	// sleep waits between attempts; tests replace it to observe waits
	// without spending them.
	sleep func(ctx context.Context, d time.Duration) error
}
