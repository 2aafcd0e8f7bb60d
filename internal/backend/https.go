package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// SignatureHeader carries the gateway's signature of an HTTPS call.
const SignatureHeader = "X-Flowkey-Signature-256"

// Signer signs a request body (an *appsecret.Store).
type Signer interface {
	Sign(ctx context.Context, body []byte) (string, error)
}

// HTTPS POSTs to a URL.
type HTTPS struct {
	client *http.Client
	url    string
	signer Signer
}

// NewHTTPS returns the adapter for rawURL (checked with ValidateURL). The
// client is copied with redirects turned off: a backend has no reason to
// redirect, and a followed redirect would send the user's data elsewhere.
// A nil signer sends no signature.
func NewHTTPS(hc *http.Client, rawURL string, signer Signer) (*HTTPS, error) {
	if hc == nil {
		return nil, errors.New("backend: an HTTP client is required")
	}
	if err := ValidateURL(rawURL); err != nil {
		return nil, err
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &HTTPS{client: &c, url: rawURL, signer: signer}, nil
}

// Call POSTs req and decodes the answer.
func (h *HTTPS) Call(ctx context.Context, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, failure("cannot encode the request", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, failure("cannot build the request", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "flowkey-endpoint")
	if h.signer != nil {
		sig, err := h.signer.Sign(ctx, body)
		if err != nil {
			return nil, failure("cannot sign the request", err)
		}
		hr.Header.Set(SignatureHeader, sig)
	}
	resp, err := h.client.Do(hr)
	if err != nil {
		return nil, callError(ctx, "request failed", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		return nil, failure("answered HTTP "+strconv.Itoa(resp.StatusCode), nil)
	}
	payload, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, callError(ctx, "reading the answer failed", err)
	}
	return DecodeResponse(payload)
}

// ValidateURL accepts an absolute https:// URL without user info; http://
// only to a loopback host (a local sample backend). The error names
// BACKEND_URL and never shows a password.
func ValidateURL(s string) error {
	bad := func(shown, problem, fix string) error {
		return fmt.Errorf("BACKEND_URL=%q %s; fix: %s", shown, problem, fix)
	}
	const fix = "use the https:// URL of your backend, like https://flows.example.com/endpoint"
	u, err := url.Parse(s)
	if err != nil {
		return bad("(unparsable)", "is not a URL", fix)
	}
	shown := u.Redacted()
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return bad(shown, "is not an absolute URL with a scheme and a host", fix)
	case u.User != nil:
		return bad(shown, "contains user info", "remove the user@ part; the gateway signs each call with "+SignatureHeader)
	case u.Fragment != "":
		return bad(shown, "has a fragment", "remove everything from the #")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return bad(shown, "uses http:// to a host that is not loopback, so the users' data would cross the network in clear text",
			"use https://; plain http is allowed only to 127.0.0.0/8, ::1 and localhost (a local sample backend)")
	}
	return bad(shown, "has scheme "+strconv.Quote(u.Scheme)+", not https", fix)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
