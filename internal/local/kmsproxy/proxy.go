// Package kmsproxy stands in front of local-kms (github.com/nsmithuk/local-kms)
// on the local stack, speaking AWS KMS's JSON 1.1 protocol on both sides
// (POST /, X-Amz-Target: TrentService.<Op>, errors as HTTP 400
// {"__type":"<Exception>","message":"..."}), for three jobs:
//
//   - Faults. Scripted Faults answer matching calls, by operation, key and
//     caller, with an exception flowkey must survive (ThrottlingException,
//     DisabledException, KMSInvalidStateException, NotFoundException,
//     AccessDeniedException for a key in another account, ...) or hold them
//     for a latency first, as a distant or overloaded KMS would.
//   - Counts. Every call is counted by caller (the access key ID that signed
//     it: the local stack gives each function its own), operation, key and
//     result, so tests can tell how many kms:Decrypt calls a Flows request
//     cost.
//   - AWS's behaviour where local-kms departs from it on something flowkey
//     relies on (Corrections lists them): Decrypt checks the key's KeyUsage
//     and EncryptionAlgorithm, GetPublicKey names the EncryptionAlgorithms,
//     a key ARN of another account is denied, ScheduleKeyDeletion reports
//     the key's state and window, and CreateKey applies the key-policy
//     lockout safety check. The product is thus tested against what AWS
//     answers, not against the emulator's shortcuts.
//
// Control calls live under /_kms/ (see Control); local-kms itself only
// answers POST /. When local-kms cannot be reached the proxy drops the
// client's connection, so a stopped local-kms looks like an unreachable KMS.
package kmsproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxBody bounds a KMS request: the largest field flowkey or the tests send
// is a key policy (32 KiB); KMS's own limits are below this.
const maxBody = 1 << 20

// targetPrefix starts every KMS X-Amz-Target.
const targetPrefix = "TrentService."

// Options configure a Proxy. Target, AccountID and Region are required.
type Options struct {
	// Target is local-kms's base URL, e.g. http://127.0.0.1:4599.
	Target string
	// AccountID and Region are local-kms's (KMS_ACCOUNT_ID, KMS_REGION):
	// a key ARN naming another account is another account's key.
	AccountID, Region string
	// Principals map a caller (the access key ID that signs its requests)
	// to the IAM principal it stands for and the KMS actions its IAM
	// policy allows, for CreateKey's lockout safety check. A caller not
	// listed skips the check.
	Principals map[string]Principal
	// Client reaches Target (a client with a 30 s timeout).
	Client *http.Client
}

// Principal is the IAM identity behind a caller.
type Principal struct {
	// ARN is the role (or user) ARN, as a key policy names it.
	ARN string
	// IAMActions are the KMS actions ("kms:Decrypt", "kms:*") its IAM
	// policy allows on the keys it makes; conditions are not modelled.
	IAMActions []string
}

// Proxy is the http.Handler. Its methods are safe for concurrent use.
type Proxy struct {
	opts Options

	mu     sync.Mutex
	faults []*faultState
	nextID int
	calls  Calls
	// changed is closed, and dropped, when a call is counted (see Wait).
	changed chan struct{}
	// meta caches what local-kms says of a key that never changes
	// (KeyUsage, KeySpec, EncryptionAlgorithms), by key ID.
	meta map[string]keyInfo
}

// New returns a proxy in front of opts.Target.
func New(opts Options) (*Proxy, error) {
	if opts.Target == "" || opts.AccountID == "" || opts.Region == "" {
		return nil, errors.New("kmsproxy: Options.Target, AccountID and Region are required")
	}
	opts.Target = strings.TrimSuffix(opts.Target, "/")
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Proxy{opts: opts, calls: Calls{}, meta: map[string]keyInfo{}}, nil
}

// request is one KMS call as the proxy sees it.
type request struct {
	op     string
	caller string
	header http.Header
	body   []byte
	// fields are the request's top-level members, for KeyId and the like.
	fields map[string]json.RawMessage
	key    string // the key the call names, normalised (see keyRef)
	keyRaw string // as the caller wrote it
}

// ServeHTTP answers a KMS call, or a control call under /_kms/.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_kms" || strings.HasPrefix(r.URL.Path, "/_kms/") {
		p.control(w, r)
		return
	}
	rq, ok := readRequest(w, r)
	if !ok {
		return
	}
	res := p.handle(r.Context(), rq)
	p.count(Call{Caller: rq.caller, Op: rq.op, Key: rq.key, Result: res.result()})
	res.write(w)
}

// readRequest reads a KMS call; a call that is not one is answered as
// local-kms would (a KMS client never sends one).
func readRequest(w http.ResponseWriter, r *http.Request) (*request, bool) {
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || r.URL.Path != "/" || !strings.HasPrefix(target, targetPrefix) {
		http.Error(w, "kmsproxy: not a KMS call (POST / with X-Amz-Target: TrentService.<Op>)", http.StatusBadRequest)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "kmsproxy: unreadable or oversized body", http.StatusBadRequest)
		return nil, false
	}
	rq := &request{op: strings.TrimPrefix(target, targetPrefix), caller: caller(r.Header.Get("Authorization")), header: r.Header, body: body}
	// A body that is not a JSON object is local-kms's to refuse.
	_ = json.Unmarshal(body, &rq.fields)
	for _, f := range []string{"KeyId", "TargetKeyId"} {
		if s, ok := rq.str(f); ok {
			rq.keyRaw, rq.key = s, keyRef(s)
			break
		}
	}
	return rq, true
}

// str is the string member name of the request, if it has one.
func (rq *request) str(name string) (string, bool) {
	raw, ok := rq.fields[name]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// caller is the access key ID of a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/kms/aws4_request, ...".
func caller(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	akid, _, _ := strings.Cut(cred, "/")
	return akid
}

// keyRef normalises a KeyId as faults and counters key it: a key ARN or
// key ID becomes the key ID; an alias (name or ARN) its name. A key of
// another account keeps its ARN, so that it never matches one of ours.
func keyRef(id string) string {
	if !strings.HasPrefix(id, "arn:") {
		return id
	}
	parts := strings.SplitN(id, ":", 6)
	if len(parts) != 6 {
		return id
	}
	res := parts[5]
	switch {
	case strings.HasPrefix(res, "key/"):
		return strings.TrimPrefix(res, "key/")
	case strings.HasPrefix(res, "alias/"):
		return res
	}
	return id
}

// handle runs the faults, the corrections and the forward, in that order.
func (p *Proxy) handle(ctx context.Context, rq *request) response {
	if res, ok, err := p.fault(ctx, rq); ok || err != nil {
		if err != nil {
			return dropped(err)
		}
		return res
	}
	if res, ok := p.before(ctx, rq); ok {
		return res
	}
	res := p.forward(ctx, rq.header, rq.body)
	return p.after(ctx, rq, res)
}

// response is an answer to a client: forwarded from local-kms or made here.
type response struct {
	status int
	header http.Header
	body   []byte
	// drop closes the client's connection without an answer.
	drop error
}

func dropped(err error) response { return response{drop: err} }

// result names a response for the counters: "OK", the exception's
// __type, "HTTP <status>", or "dropped".
func (r response) result() string {
	switch {
	case r.drop != nil:
		return ResultDropped
	case r.status == http.StatusOK:
		return ResultOK
	}
	if t := errorType(r.body); t != "" {
		return t
	}
	return fmt.Sprintf("HTTP %d", r.status)
}

func (r response) write(w http.ResponseWriter) {
	if r.drop != nil {
		dropConn(w)
		return
	}
	for k, vs := range r.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// dropConn closes the client's connection unanswered, as an unreachable
// endpoint would; without a hijackable connection it panics the handler
// the way net/http documents for aborting a response.
func dropConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// errorType is the __type of a KMS error body, without the namespace some
// services prefix ("com.amazonaws.kms#NotFoundException").
func errorType(body []byte) string {
	var e struct {
		Type string `json:"__type"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	if i := strings.LastIndexByte(e.Type, '#'); i >= 0 {
		return e.Type[i+1:]
	}
	return e.Type
}

// kmsError is an answer in KMS's error shape: HTTP 400, but 500 for the
// exceptions AWS models as server faults (which the SDK retries).
func kmsError(typ, msg string) response {
	body, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	status := http.StatusBadRequest
	switch typ {
	case KMSInternalException, DependencyTimeout, "KeyUnavailableException":
		status = http.StatusInternalServerError
	}
	return response{status: status, header: h, body: body}
}

// forward sends the call to local-kms unchanged.
func (p *Proxy) forward(ctx context.Context, header http.Header, body []byte) response {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.Target+"/", bytes.NewReader(body))
	if err != nil {
		return dropped(err)
	}
	for _, h := range []string{"Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date"} {
		if v := header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return dropped(fmt.Errorf("kmsproxy: local-kms: %w", err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return dropped(fmt.Errorf("kmsproxy: reading local-kms's answer: %w", err))
	}
	h := http.Header{}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	return response{status: resp.StatusCode, header: h, body: out}
}

// call makes a call of the proxy's own to local-kms (uncounted, unfaulted).
func (p *Proxy) call(ctx context.Context, op string, in any, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amz-Target", targetPrefix+op)
	res := p.forward(ctx, h, body)
	if res.drop != nil {
		return res.drop
	}
	if res.status != http.StatusOK {
		return &upstreamError{op: op, res: res}
	}
	return json.Unmarshal(res.body, out)
}

// upstreamError is local-kms refusing one of the proxy's own calls: its
// answer goes to the client as it is.
type upstreamError struct {
	op  string
	res response
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("kmsproxy: local-kms %s: %s", e.op, e.res.result())
}
