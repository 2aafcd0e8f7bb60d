// Package secretsemu is an AWS Secrets Manager emulator for the local stack
// and integration tests: an http.Handler that speaks the AWS JSON 1.1
// protocol, so the unmodified aws-sdk-go-v2 client (with BaseEndpoint) and
// the AWS CLI (with --endpoint-url) talk to it as to AWS, and a rotation
// driver that runs a rotation function's four steps through an Invoker.
//
// Operations: CreateSecret, DescribeSecret, GetSecretValue, PutSecretValue,
// UpdateSecret, UpdateSecretVersionStage, ListSecretVersionIds, ListSecrets,
// BatchGetSecretValue, TagResource, UntagResource, RotateSecret,
// CancelRotateSecret, DeleteSecret, RestoreSecret, GetRandomPassword.
// Exception names, limits and paging are AWS's, and so are the messages
// where Secrets Manager's wording is known. SigV4 signatures are not
// verified, but an Authorization header must be present, as AWS requires.
//
// GET /_emulator/events serves the rotation timeline as JSON; Events and
// WaitEvent serve it in process. Calls counts the requests by caller (the
// access key ID they were signed with) and operation.
//
// Where AWS leaves behaviour open, the emulator decides as follows:
//   - RotateSecret returns at once and drives createSecret, setSecret,
//     testSecret, finishSecret; a failed step ends the attempt and the whole
//     rotation is reattempted with the same ClientRequestToken and
//     RotationToken after Options.RetryDelay, up to Options.RotationAttempts.
//     After the last attempt AWSPENDING stays: the rotation is incomplete.
//   - RotateSecret with the ClientRequestToken of that incomplete rotation
//     (and RotateImmediately not false) runs its four steps again on the
//     same version, with a new RotationToken and no new version, when no
//     run of it is going; while one is (running, or waiting to reattempt),
//     it returns that version as a retried request. This is flowkey's
//     reading of the token as AWS's guard against "duplicate versions if
//     there are failures and retries during rotation"; AWS documents no
//     resume explicitly. Any other RotateSecret is refused while a rotation
//     is incomplete.
//   - With RotateImmediately=false only testSecret runs, once, on a new
//     AWSPENDING version holding a copy of the current value; that version is
//     removed afterwards whatever the outcome.
//   - CancelRotateSecret and DeleteSecret let a running step finish (cutting
//     an RIE invocation short would leave the RIE busy) and then stop; Close
//     cuts it short.
//   - PutSecretValue with a RotationToken different from the rotation in
//     progress is rejected (InvalidRequestException); without a rotation in
//     progress any RotationToken is accepted.
//   - NextRotationDate is reported but scheduled rotations never start by
//     themselves.
//   - AWSCURRENT can only be moved, never removed outright.
//   - ListSecrets sorts by creation date, oldest first, by default; ties go
//     by name. NextToken is an offset: a page may shift if secrets are
//     created or deleted between calls. MaxResults defaults to 100.
//   - Filters: a negated value ("!x") matches when its prefix matches none
//     of the attribute's values (for tag-key: no tag key starts with x).
//     Every secret's primary region is the emulator's Region, and none is
//     owned by another service.
//   - BatchGetSecretValue with Filters reads secrets in ListSecrets' default
//     order; with SecretIdList it rejects MaxResults and NextToken.
//   - A forced DeleteSecret of a secret it cannot find echoes the SecretId:
//     a name with the ARN it would have had (no random suffix), an ARN as
//     given. RestoreSecret of a secret not scheduled for deletion succeeds.
//   - UpdateSecret with a value, like PutSecretValue, abandons an
//     incomplete rotation.
package secretsemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Options configures a Server. The zero value works for everything except
// rotation, which needs an Invoker.
type Options struct {
	// Region and AccountID go into ARNs. Defaults: us-east-1, 123456789012.
	Region    string
	AccountID string
	// Invoker runs the rotation function. RotateSecret fails without one.
	Invoker Invoker
	// RotationAttempts is how many times a rotation is attempted in all,
	// the first run included, before it is left incomplete. Default 3.
	RotationAttempts int
	// RetryDelay is the pause before a failed rotation is reattempted.
	// Default one minute (AWS does not document its delay).
	RetryDelay time.Duration
	// Now is the clock for every date the emulator reports. Default time.Now.
	Now func() time.Time
	// Logger receives one record per request and per rotation event, never
	// a secret value. Default: discard.
	Logger *slog.Logger
	// Rand is the source of version ids, ARN suffixes and rotation tokens.
	// Default crypto/rand.
	Rand io.Reader
}

// Defaults for Options.
const (
	DefaultRegion           = "us-east-1"
	DefaultAccountID        = "123456789012"
	DefaultRotationAttempts = 3
	DefaultRetryDelay       = time.Minute
)

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	region, account string
	invoker         Invoker
	attempts        int
	retryDelay      time.Duration
	now             func() time.Time
	log             *slog.Logger
	rand            io.Reader
	ops             map[string]func([]byte) (any, error) // by X-Amz-Target operation; read-only

	// mu guards the store, Rand and closed; never held while invoking.
	mu      sync.Mutex
	secrets map[string]*secret // by name
	closed  bool

	callMu sync.Mutex
	calls  Calls

	evMu     sync.Mutex
	events   []Event
	evSignal chan struct{} // closed and replaced on every new event

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // rotation drivers
}

var (
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	accountRe = regexp.MustCompile(`^\d{12}$`)
)

// New validates opts and returns a Server.
func New(opts Options) (*Server, error) {
	s := &Server{
		region:     opts.Region,
		account:    opts.AccountID,
		invoker:    opts.Invoker,
		attempts:   opts.RotationAttempts,
		retryDelay: opts.RetryDelay,
		now:        opts.Now,
		log:        opts.Logger,
		rand:       opts.Rand,
		secrets:    map[string]*secret{},
		calls:      Calls{},
		evSignal:   make(chan struct{}),
	}
	if s.region == "" {
		s.region = DefaultRegion
	} else if !regionRe.MatchString(s.region) {
		return nil, fmt.Errorf("secretsemu: Options.Region %q is not a region name; use one like %q", s.region, DefaultRegion)
	}
	if s.account == "" {
		s.account = DefaultAccountID
	} else if !accountRe.MatchString(s.account) {
		return nil, fmt.Errorf("secretsemu: Options.AccountID %q is not 12 digits; use one like %q", s.account, DefaultAccountID)
	}
	switch {
	case s.attempts == 0:
		s.attempts = DefaultRotationAttempts
	case s.attempts < 0:
		return nil, fmt.Errorf("secretsemu: Options.RotationAttempts is %d; use 1 or more (0 means %d)", s.attempts, DefaultRotationAttempts)
	}
	switch {
	case s.retryDelay == 0:
		s.retryDelay = DefaultRetryDelay
	case s.retryDelay < 0:
		return nil, fmt.Errorf("secretsemu: Options.RetryDelay is %s; use a positive duration (0 means %s)", s.retryDelay, DefaultRetryDelay)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.ops = s.operations()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops every rotation driver, including one waiting to reattempt or
// invoking a step, and waits for them to return. The Server still answers
// requests afterwards, but RotateSecret fails. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// maxBody bounds a request: a secret value is at most 64 KiB.
const maxBody = 1 << 20

// ServeHTTP implements the AWS JSON 1.1 protocol and GET /_emulator/events.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_emulator/events" {
		s.serveEvents(w, r)
		return
	}
	requestID := uuid.NewString()
	w.Header().Set("X-Amzn-Requestid", requestID)
	target := r.Header.Get("X-Amz-Target")
	op, known := strings.CutPrefix(target, "secretsmanager.")
	if known {
		s.countCall(r.Header.Get("Authorization"), op)
	}
	start := time.Now()
	out, err := s.serve(r, op, known)
	attrs := []any{"op", op, "requestId", requestID, "elapsed", time.Since(start)}
	if err != nil {
		attrs = append(attrs, "error", errorType(err))
	}
	s.log.Info("request", attrs...)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errInternal(err.Error())
		}
		writeJSON(w, ae.Status, map[string]string{"__type": ae.Type, "message": ae.Message}, ae.Type)
		return
	}
	writeJSON(w, http.StatusOK, out, "")
}

func errorType(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Type
	}
	return "InternalServiceError"
}

func (s *Server) serve(r *http.Request, op string, known bool) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, &apiError{Type: "UnknownOperationException", Status: http.StatusNotFound,
			Message: fmt.Sprintf("%s %s: Secrets Manager answers POST / only (and GET /_emulator/events)", r.Method, r.URL.Path)}
	}
	if r.Header.Get("Authorization") == "" {
		return nil, newAPIError("MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	h, ok := s.ops[op]
	if !known || !ok {
		return nil, newAPIError("UnknownOperationException",
			fmt.Sprintf("X-Amz-Target %q is not an operation this emulator knows; it serves secretsmanager.{%s}", r.Header.Get("X-Amz-Target"), strings.Join(operationNames, ",")))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, newAPIError("SerializationException", "reading the request body: "+err.Error())
	}
	if len(body) > maxBody {
		return nil, newAPIError("SerializationException", fmt.Sprintf("the request body exceeds %d bytes", maxBody))
	}
	return h(body)
}

// operationNames are the supported operations, for error messages.
var operationNames = []string{
	"CreateSecret", "DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage",
	"ListSecretVersionIds", "ListSecrets", "BatchGetSecretValue", "TagResource", "UntagResource",
	"RotateSecret", "CancelRotateSecret", "DeleteSecret", "RestoreSecret", "GetRandomPassword",
}

func (s *Server) operations() map[string]func([]byte) (any, error) {
	return map[string]func([]byte) (any, error){
		"CreateSecret":             decoded(s.createSecret),
		"DescribeSecret":           decoded(s.describeSecret),
		"GetSecretValue":           decoded(s.getSecretValue),
		"PutSecretValue":           decoded(s.putSecretValue),
		"UpdateSecretVersionStage": decoded(s.updateSecretVersionStage),
		"ListSecretVersionIds":     decoded(s.listSecretVersionIds),
		"RotateSecret":             decoded(s.rotateSecret),
		"CancelRotateSecret":       decoded(s.cancelRotateSecret),
		"DeleteSecret":             decoded(s.deleteSecret),
		"UpdateSecret":             decoded(s.updateSecret),
		"ListSecrets":              decoded(s.listSecrets),
		"BatchGetSecretValue":      decoded(s.batchGetSecretValue),
		"TagResource":              decoded(s.tagResource),
		"UntagResource":            decoded(s.untagResource),
		"RestoreSecret":            decoded(s.restoreSecret),
		"GetRandomPassword":        decoded(s.getRandomPassword),
	}
}

// decoded turns an operation on a typed input into a handler of raw JSON.
// Unknown members are ignored, as AWS ignores members a newer SDK may send.
func decoded[In any](op func(In) (any, error)) func([]byte) (any, error) {
	return func(body []byte) (any, error) {
		var in In
		if len(strings.TrimSpace(string(body))) == 0 {
			body = []byte("{}")
		}
		if err := json.Unmarshal(body, &in); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, newAPIError("SerializationException",
					fmt.Sprintf("member %s: expected %s, got a JSON %s", te.Field, te.Type, te.Value))
			}
			return nil, newAPIError("SerializationException", "the request body is not valid JSON: "+err.Error())
		}
		return op(in)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any, errType string) {
	b, err := json.Marshal(v)
	if err != nil {
		status, errType = http.StatusInternalServerError, "InternalServiceError"
		b = []byte(`{"__type":"InternalServiceError","message":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if errType != "" {
		w.Header().Set("X-Amzn-Errortype", errType)
	}
	w.WriteHeader(status)
	w.Write(b)
}
