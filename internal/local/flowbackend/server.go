package flowbackend

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
)

// SignatureHeader carries the endpoint's signature of an HTTPS call:
// "sha256=" and the hex HMAC-SHA256 of the body, keyed with the Meta app
// secret the endpoint also checks Meta's requests with.
const SignatureHeader = "X-Flowkey-Signature-256"

// maxBodyBytes bounds a call: a Flows request is a few kilobytes.
const maxBodyBytes = 1 << 20

// Call is what the endpoint sends.
type Call struct {
	Request  json.RawMessage `json:"request"`
	Metadata Metadata        `json:"metadata"`
}

// Metadata is what the endpoint adds to the request. Deadline is when the
// endpoint stops waiting: a backend that calls other services should pass
// it on.
type Metadata struct {
	RequestID  string `json:"request_id"`
	ReceivedAt string `json:"received_at"`
	Deadline   string `json:"deadline"`
	KeyLabel   string `json:"key_label"`
}

// Server answers the endpoint's calls over HTTP (ServeHTTP) or as a Lambda
// handler (Invoke). The zero value is not usable: AppSecret is required
// for HTTP.
type Server struct {
	// AppSecret verifies SignatureHeader: only the endpoint can call.
	AppSecret []byte
	// Logger receives one line per call, never the form data or the flow
	// token: they are the user's personal data. Discarded when nil.
	Logger *slog.Logger

	calls atomic.Int64
}

// Calls is how many calls the server has answered with a Reply.
func (s *Server) Calls() int64 { return s.calls.Load() }

// ServeHTTP answers POST calls: 405 for another method, 413 for a body over
// 1 MiB, 401 when SignatureHeader does not verify, 400 when the body is not
// a Call; otherwise 200 with the Reply as JSON (a 427 Reply included: the
// status inside the body is what the endpoint acts on).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST the endpoint's call"})
		return
	}
	if len(s.AppSecret) == 0 {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "flowbackend: no app secret configured, so no call can be verified"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("the body is over %d bytes", maxBodyBytes)})
		return
	}
	// Before anything else: the body of an unverified call is not read.
	if !Verify(s.AppSecret, body, r.Header.Get(SignatureHeader)) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": SignatureHeader + " is missing or does not match the body"})
		return
	}
	var call Call
	if err := json.Unmarshal(body, &call); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is not the endpoint's call: " + err.Error()})
		return
	}
	reply, err := s.Invoke(r.Context(), call)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// Invoke answers one call. As a Lambda handler it needs no signature: IAM
// decides who may invoke a function. Its error means the call was not a
// Flows request; the endpoint treats it as a backend failure.
func (s *Server) Invoke(ctx context.Context, call Call) (Reply, error) {
	var req FlowRequest
	if len(call.Request) == 0 || json.Unmarshal(call.Request, &req) != nil {
		return Reply{}, errors.New(`flowbackend: "request" is missing or is not a Flows request object`)
	}
	reply := Respond(req)
	s.calls.Add(1)
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	screen := ""
	if reply.Response != nil {
		screen = reply.Response.Screen
	}
	log.InfoContext(ctx, "flowbackend: call answered", "action", req.Action, "screen", req.Screen,
		"next_screen", screen, "status", reply.Status, "key_label", call.Metadata.KeyLabel, "request_id", call.Metadata.RequestID)
	return reply, nil
}

// Verify reports whether header is "sha256=" and the hex HMAC-SHA256 of body
// keyed with secret, comparing in constant time.
func Verify(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign is the header value Verify accepts for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"flowbackend: cannot encode the reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
