// Package graph is the client for the Graph API endpoints flowkey uses:
// the per-number business public key (whatsapp_business_encryption) and a
// WABA's phone number list.
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
}

// Registration is what Meta holds for one phone number.
type Registration struct {
	PublicKeyPEM string         // as returned; " " or "" when Meta holds none
	PublicKey    *rsa.PublicKey // nil when the PEM is blank or not an RSA public key
	PublicDER    []byte         // PKIX DER of PublicKey
	KeyProblem   string         // why PublicKey is nil although PublicKeyPEM is not blank
	Status       string         // StatusValid, StatusMismatch, or what Meta sent
}

// PhoneNumber is one entry of GET /{WABA_ID}/phone_numbers.
type PhoneNumber struct {
	ID                 string `json:"id"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	VerifiedName       string `json:"verified_name"`
}

// Error is a failed Graph call after retries. Use errors.As to get it.
type Error struct {
	Op         string // "upload", "get", "list"
	Object     string // phone number ID or WABA ID
	HTTPStatus int    // 0 when no response arrived
	Code       int    // Graph error code; 0 when the body had none
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
	// RateLimited is set for codes 4, 80007 and 130429.
	RateLimited bool
	// RegainAccessIn is X-Business-Use-Case-Usage's estimated_time_to_regain_access.
	RegainAccessIn time.Duration
	Err            error // transport or decoding cause, if any

	// graphError records that the body held a Graph error object, so that
	// code 0 ("cannot authenticate the app user") prints as a code.
	graphError bool
}

func (e *Error) Unwrap() error { return e.Err }

// Call describes one HTTP attempt, for metrics and logs.
type Call struct {
	Op, Object string
	Attempt    int
	HTTPStatus int
	Code       int
	Duration   time.Duration
	Retrying   bool // another attempt follows
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
