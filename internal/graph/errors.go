package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error renders one line an operator can act on, e.g.
//
//	graph upload 106540352242922: HTTP 400 code 100 subcode 33 (OAuthException): <message> [fbtrace_id AbC] after 1 attempt
//	graph get 106540352242922: no response (timeout): the 10s request timeout passed: context deadline exceeded after 3 attempts
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph ")
	b.WriteString(e.Op)
	if e.Object != "" {
		b.WriteString(" ")
		b.WriteString(e.Object)
	}
	b.WriteString(": ")
	switch {
	case e.Failure == FailureTransport && e.HTTPStatus != 0:
		fmt.Fprintf(&b, "HTTP %d, then the body was cut off (%s)", e.HTTPStatus, e.Transport)
	case e.Failure == FailureTransport && e.Transport != "":
		fmt.Fprintf(&b, "no response (%s)", e.Transport)
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	default:
		b.WriteString("no response")
	}
	if code, ok := e.GraphCode(); ok {
		fmt.Fprintf(&b, " code %d", code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, " subcode %d", e.Subcode)
		}
		if e.Type != "" {
			fmt.Fprintf(&b, " (%s)", e.Type)
		}
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Details != "" {
		fmt.Fprintf(&b, " (%s)", e.Details)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.FBTraceID != "" {
		fmt.Fprintf(&b, " [fbtrace_id %s]", e.FBTraceID)
	}
	switch e.Attempts {
	case 0:
		b.WriteString(" before any attempt")
	case 1:
		b.WriteString(" after 1 attempt")
	default:
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Uncertain != "" && !e.mayHaveLanded() {
		// The last attempt was refused, but an earlier one may have landed:
		// for an upload that is the difference between old and new key.
		fmt.Fprintf(&b, " (%s, outcome unknown)", e.Uncertain)
	}
	regain := int(math.Ceil(e.RegainAccessIn.Minutes()))
	switch {
	case e.RateLimited && regain > 0:
		fmt.Fprintf(&b, "; rate limited, retry after ~%d min", regain)
	case e.RateLimited:
		b.WriteString("; rate limited, retry later")
	case regain > 0:
		fmt.Fprintf(&b, "; Meta's usage header says access returns in ~%d min", regain)
	}
	if fix := e.fix(); fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(fix)
	}
	return b.String()
}

// fix is what an operator does about an auth or permission error: all of
// them are about the token, so each names the secret that holds it.
func (e *Error) fix() string {
	code, ok := e.GraphCode()
	if !ok {
		return ""
	}
	where := "the access token secret"
	if e.TokenSecret != "" {
		where = "secret " + e.TokenSecret
	}
	switch {
	case code == 190 || code == 102 || code == 104:
		return "the access token is missing, expired or revoked; store a valid system user token (with whatsapp_business_management) in " + where
	case code == 0:
		return "Meta cannot authenticate the app user of the token; generate a new system user token for the app and store it in " + where
	case code == 10 || (code >= 200 && code <= 299):
		return "the token in " + where + " lacks a permission; give its system user whatsapp_business_management on this WABA (code 10 on this endpoint can also mean the number is not allowed to use Flows)"
	}
	return ""
}

// mayHaveLanded reports whether Meta may have carried out the attempt
// that failed with e without flowkey seeing its answer.
func (e *Error) mayHaveLanded() bool {
	switch e.Failure {
	case FailureTransport:
		switch e.Transport {
		case TransportRefused, TransportDNS, TransportTLS:
			return false // nothing reached Meta
		}
		return true
	case FailureMalformed:
		return true // a 2xx arrived: it may well have succeeded
	}
	return e.HTTPStatus >= 500
}

// outcome is a short account of one failed attempt, for Uncertain.
func (e *Error) outcome() string {
	switch {
	case e.Failure == FailureTransport && e.HTTPStatus == 0:
		return "no response (" + e.Transport + ")"
	case e.Failure == FailureTransport:
		return fmt.Sprintf("HTTP %d with its body cut off (%s)", e.HTTPStatus, e.Transport)
	case e.Failure == FailureMalformed:
		return fmt.Sprintf("an unreadable HTTP %d", e.HTTPStatus)
	case e.Failure == FailureGraph:
		return fmt.Sprintf("HTTP %d code %d", e.HTTPStatus, e.Code)
	}
	return fmt.Sprintf("HTTP %d", e.HTTPStatus)
}

// graphErrorBody is Graph's error envelope. Only code is reliably present.
type graphErrorBody struct {
	Error *struct {
		Message        string          `json:"message"`
		Type           string          `json:"type"`
		Code           *flexInt        `json:"code"`
		Subcode        flexInt         `json:"error_subcode"`
		IsTransient    *bool           `json:"is_transient"`
		FBTraceID      string          `json:"fbtrace_id"`
		ErrorData      json.RawMessage `json:"error_data"`
		ErrorUserTitle string          `json:"error_user_title"`
		ErrorUserMsg   string          `json:"error_user_msg"`
	} `json:"error"`
}

// flexInt accepts 100 and "100": proxies and older Graph versions have sent
// both, and a code lost to a type mismatch would turn a permanent error
// into a retried one.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", clip(string(b), 20))
	}
	*f = flexInt(n)
	return nil
}

// fillGraphError copies a Graph error body into e, redacted and
// sanitized. object reports whether the body held an error object at all;
// e.Failure is FailureGraph when it carried a code, FailureHTTP when not.
// transient is its is_transient, nil when absent.
func fillGraphError(e *Error, body []byte, red redactor) (object bool, transient *bool) {
	var ge graphErrorBody
	if json.Unmarshal(body, &ge) != nil || ge.Error == nil {
		return false, nil
	}
	g := ge.Error
	e.Failure = FailureHTTP
	if g.Code != nil {
		e.Failure, e.Code = FailureGraph, int(*g.Code)
	}
	e.Subcode = int(g.Subcode)
	e.Type = red.clean(g.Type, 80)
	e.Message = red.clean(g.Message, 500)
	e.FBTraceID = red.clean(g.FBTraceID, 80)
	details := errorDataDetails(g.ErrorData)
	if details == "" {
		details = g.ErrorUserMsg
	}
	if details == "" {
		details = g.ErrorUserTitle
	}
	if d := red.clean(details, 500); d != "" && !strings.Contains(e.Message, d) {
		if e.Message == "" {
			e.Message = d
		} else {
			e.Details = d
		}
	}
	if e.Message == "" && e.Failure == FailureHTTP {
		e.Err = errors.New("a Graph error object without a code")
	}
	return true, g.IsTransient
}

// errorDataDetails reads error_data, which Cloud API sends as an object
// with "details" and older endpoints as a plain string.
func errorDataDetails(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Details string `json:"details"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Details
	}
	return ""
}

// classify applies the retry table of platform-facts §1. A subcode 33
// (the object is gone) is final; a throttling code is a rate limit; then
// Meta's is_transient decides when it sent one, then the Graph code, then
// the HTTP status.
func classify(status int, e *Error, transient *bool) (retryable, rateLimited bool) {
	if e.Subcode == 33 {
		return false, false
	}
	code, hasCode := e.GraphCode()
	if hasCode && isThrottling(code) {
		return true, true
	}
	if transient != nil {
		return *transient, false
	}
	if hasCode {
		switch c := code; {
		case c == 131000:
			return true, false
		case c == 0 || c == 3 || c == 10 || c == 33 || c == 100 || c == 190 || (c >= 200 && c <= 299):
			return false, false
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		return true, true
	case status >= 500:
		return true, false
	}
	return false, false
}

// isThrottling reports Graph's rate-limit codes: 4 (app), 17 (user), 32
// (page), 613 (calls within an hour), the business-use-case family
// 80000-80014 (80007: WhatsApp Business Management), 130429 and 131056
// (Cloud API throughput).
func isThrottling(code int) bool {
	switch {
	case code == 4, code == 17, code == 32, code == 613, code == 130429, code == 131056:
		return true
	case code >= 80000 && code <= 80014:
		return true
	}
	return false
}

// clip shortens s to at most max runes, marking the cut.
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// malformed wraps a decoding problem so errors.Is(err, ErrMalformedResponse) holds.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
}

// errorsJoinCtx attaches a context error to an attempt's cause without
// losing either for errors.Is.
func errorsJoinCtx(cause, ctxErr error) error {
	if cause == nil {
		return ctxErr
	}
	if errors.Is(cause, ctxErr) {
		return cause
	}
	return fmt.Errorf("%w (then %w)", cause, ctxErr)
}
