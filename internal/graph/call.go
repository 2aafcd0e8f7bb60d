package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxBody caps what is read of any response. Graph's answers here are a
// few KiB; anything larger is a proxy page or worse.
const maxBody = 1 << 20

// usageHeader carries Meta's per-business rate-limit usage.
const usageHeader = "X-Business-Use-Case-Usage"

// maxRegain bounds estimated_time_to_regain_access so an absurd header
// value cannot overflow a Duration. Meta's windows are an hour or so.
const maxRegain = 24 * time.Hour

type request struct {
	op, object string
	method     string
	url        *url.URL
	form       string // form-encoded POST body; "" for none
}

// do runs rq with the retry policy of the package doc. decode sees the
// body of every 2xx response that is not a Graph error; an error from it
// marks the response malformed, which is retried because a well-formed 2xx
// from Meta never fails to decode and a truncated or replaced body is most
// likely transient proxy trouble.
func (c *Client) do(ctx context.Context, auth Auth, rq request, red redactor, decode func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: rq.op, Object: rq.object, Failure: FailureTransport, Transport: contextCause(err), Err: err,
			Retryable: errors.Is(err, context.DeadlineExceeded), TokenSecret: auth.TokenSecret}
	}
	uncertain := ""
	waitedOut := false // a rate limit was waited out already: the one extra call is spent
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, e := c.attempt(ctx, auth, rq, red, decode)
		dur := time.Since(start)

		retry, wait := false, time.Duration(0)
		if e != nil {
			e.Op, e.Object, e.Attempts, e.TokenSecret = rq.op, rq.object, attempt, auth.TokenSecret
			if uncertain == "" && e.mayHaveLanded() {
				uncertain = fmt.Sprintf("attempt %d: %s", attempt, e.outcome())
			}
			e.Uncertain = uncertain
			retry, wait = c.retryAfter(ctx, e, attempt, waitedOut)
			waitedOut = waitedOut || (retry && e.RateLimited)
		}
		if c.opts.Observe != nil {
			call := Call{Op: rq.op, Object: rq.object, Attempt: attempt, HTTPStatus: status, Duration: dur, Retrying: retry}
			if e != nil {
				call.Failure, call.Code, call.Transport, call.RateLimited = e.Failure, e.Code, e.Transport, e.RateLimited
			}
			c.opts.Observe(call)
		}
		if e == nil {
			return nil
		}
		if !retry {
			return e
		}
		if err := c.sleep(ctx, wait); err != nil {
			e.Err = errorsJoinCtx(e.Err, err)
			return e
		}
	}
}

// retryAfter decides whether another attempt follows e, and after what
// wait. A rate limit is waited out at most once per call and only on
// Meta's estimate. Under a deadline no wait is taken unless a whole
// RequestTimeout still fits after it; without one, a rate limit is only
// waited out when it is no longer than an ordinary backoff, so a caller
// without a deadline is never parked for an hour.
func (c *Client) retryAfter(ctx context.Context, e *Error, attempt int, waitedOut bool) (bool, time.Duration) {
	if !e.Retryable || attempt >= c.opts.MaxAttempts || ctx.Err() != nil {
		return false, 0
	}
	wait := c.backoff(attempt)
	if e.RateLimited {
		if waitedOut || e.RegainAccessIn <= 0 {
			return false, 0
		}
		wait = e.RegainAccessIn
	}
	if dl, ok := ctx.Deadline(); ok {
		return wait+c.opts.RequestTimeout <= time.Until(dl), wait
	}
	return !e.RateLimited || wait <= c.opts.MaxBackoff, wait
}

// backoff is full jitter: BaseBackoff*2^(attempt-1), capped at MaxBackoff,
// scaled by Jitter().
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.BaseBackoff
	for i := 1; i < attempt && d < c.opts.MaxBackoff && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	j := c.opts.Jitter()
	if !(j >= 0) { // also catches NaN
		j = 0
	}
	if j > 1 {
		j = 1
	}
	return time.Duration(float64(d) * j)
}

// attempt makes one HTTP exchange. It returns the HTTP status (0 when no
// response arrived) and the failure, if any, without Op/Object/Attempts.
func (c *Client) attempt(ctx context.Context, auth Auth, rq request, red redactor, decode func([]byte) error) (int, *Error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	var body io.Reader
	if rq.form != "" {
		body = strings.NewReader(rq.form)
	}
	req, err := http.NewRequestWithContext(actx, rq.method, rq.url.String(), body)
	if err != nil {
		return 0, &Error{Failure: FailureTransport, Transport: TransportNetwork, Err: red.wrap(err)}
	}
	req.Header.Set("Authorization", "Bearer "+auth.Token.value)
	req.Header.Set("Accept", "application/json")
	if rq.form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, c.transportError(ctx, actx, err, red)
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	// Reading to EOF (or the cap) lets the transport reuse the connection.
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	regain := regainAccessIn(resp.Header.Values(usageHeader))
	if err != nil {
		e := c.transportError(ctx, actx, err, red)
		e.HTTPStatus, e.RegainAccessIn = status, regain
		return status, e
	}
	e := &Error{HTTPStatus: status, RegainAccessIn: regain}
	if len(data) > maxBody {
		e.Failure, e.Retryable = FailureMalformed, true
		e.Err = malformed("body is larger than %d bytes", maxBody)
		return status, e
	}
	// A Graph error object is Meta's answer whatever the status: on a 200
	// it is still that error, not a malformed success.
	if object, transient := fillGraphError(e, data, red); object {
		e.Retryable, e.RateLimited = classify(status, e, transient)
		return status, e
	}
	if status >= 200 && status <= 299 {
		if err := decode(data); err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				err = fmt.Errorf("%w: %w", ErrMalformedResponse, err)
			}
			e.Failure, e.Retryable = FailureMalformed, true
			e.Err = red.wrap(err)
			return status, e
		}
		return status, nil
	}
	e.Failure = FailureHTTP
	e.Err = fmt.Errorf("no Graph error object in the body (%s)", bodySnippet(data, red))
	e.Retryable, e.RateLimited = classify(status, e, nil)
	return status, e
}

func bodySnippet(data []byte, red redactor) string {
	s := red.clean(string(data), 120)
	if s == "" {
		return "empty body"
	}
	return strconv.Quote(s)
}

// transportError describes a failure to get (or read) a response.
func (c *Client) transportError(ctx, actx context.Context, err error, red redactor) *Error {
	// url.Error repeats method and URL; the *Error prefix already names the
	// operation and object, and a URL is no place for operators to look.
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err
	}
	e := &Error{Failure: FailureTransport}
	switch {
	case ctx.Err() != nil:
		// The caller's deadline or cancellation ends the call: no attempt
		// may follow. A deadline is transient; a cancellation is a decision.
		e.Err = errorsJoinCtx(err, ctx.Err())
		e.Transport = contextCause(ctx.Err())
		e.Retryable = errors.Is(ctx.Err(), context.DeadlineExceeded)
	case actx.Err() != nil:
		e.Err = fmt.Errorf("the %s request timeout passed: %w", c.opts.RequestTimeout, err)
		e.Transport, e.Retryable = TransportTimeout, true
	default:
		e.Err = err
		e.Transport = transportCause(err)
		e.Retryable = !permanentTransport(err)
	}
	e.Err = red.wrap(e.Err)
	return e
}

func contextCause(err error) string {
	if errors.Is(err, context.Canceled) {
		return TransportCanceled
	}
	return TransportDeadline
}

// transportCause names a network failure for operators and metrics.
func transportCause(err error) string {
	var (
		ne  net.Error
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return TransportReset
	case errors.Is(err, syscall.ECONNREFUSED):
		return TransportRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return TransportEOF
	case errors.As(err, &dns):
		return TransportDNS
	case tlsFailure(err):
		return TransportTLS
	case errors.As(err, &ne) && ne.Timeout():
		return TransportTimeout
	}
	return TransportNetwork
}

// permanentTransport picks out the transport failures another attempt
// cannot fix: a certificate Meta's host does not present, TLS spoken to a
// plain-HTTP port, a host name that does not exist. Everything else (resets,
// EOF, refused connections, HTTP/2 stream and GOAWAY errors, whose types
// net/http does not export) is treated as the transient trouble the retry
// table means.
func permanentTransport(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsNotFound
	}
	return tlsFailure(err)
}

func tlsFailure(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		certInvalid      x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		record           tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &certInvalid),
		errors.As(err, &verify), errors.As(err, &record):
		return true
	}
	// net/http replaces the tls.RecordHeaderError with a plain error.
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// regainAccessIn reads the largest estimated_time_to_regain_access
// (minutes) across every business and use-case type in the usage header.
// A malformed header counts as absent: it must never fail a call.
func regainAccessIn(values []string) time.Duration {
	var worst float64
	for _, v := range values {
		var byBusiness map[string]json.RawMessage
		if json.Unmarshal([]byte(v), &byBusiness) != nil {
			continue
		}
		for _, raw := range byBusiness {
			var entries []json.RawMessage
			if json.Unmarshal(raw, &entries) != nil {
				continue
			}
			for _, entry := range entries {
				var u struct {
					Regain json.RawMessage `json:"estimated_time_to_regain_access"`
				}
				if json.Unmarshal(entry, &u) != nil || len(u.Regain) == 0 {
					continue
				}
				m, err := strconv.ParseFloat(strings.Trim(string(u.Regain), `"`), 64)
				if err == nil && m > worst && !math.IsInf(m, 0) {
					worst = m
				}
			}
		}
	}
	if worst <= 0 {
		return 0
	}
	if worst >= maxRegain.Minutes() {
		return maxRegain
	}
	return time.Duration(worst * float64(time.Minute))
}
