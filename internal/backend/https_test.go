package backend

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type signer struct{ secret string }

func (s signer) Sign(_ context.Context, body []byte) (string, error) {
	m := hmac.New(sha256.New, []byte(s.secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil)), nil
}

type failingSigner struct{}

func (failingSigner) Sign(context.Context, []byte) (string, error) {
	return "", errors.New("no secret")
}

func TestHTTPSPostsTheContractAndSignsIt(t *testing.T) {
	var got struct {
		method, ctype, sig string
		body               []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.ctype, got.sig = r.Method, r.Header.Get("Content-Type"), r.Header.Get(SignatureHeader)
		got.body, _ = io.ReadAll(r.Body)
		_, _ = w.Write([]byte(`{"status":427,"error_msg":"expired"}`))
	}))
	defer srv.Close()
	h, err := NewHTTPS(srv.Client(), srv.URL+"/flow", signer{"app-secret"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.Call(context.Background(), testRequest)
	if err != nil || r.Status != 427 || r.ErrorMsg != "expired" {
		t.Fatalf("got %+v, %v", r, err)
	}
	want, _ := signer{"app-secret"}.Sign(context.Background(), got.body)
	if got.method != http.MethodPost || got.ctype != "application/json" || got.sig != want {
		t.Fatalf("got %s %s signature %q, want POST application/json %q", got.method, got.ctype, got.sig, want)
	}
	var sent Request
	if err := json.Unmarshal(got.body, &sent); err != nil || string(sent.Request) != string(testRequest.Request) {
		t.Fatalf("body %s: %v", got.body, err)
	}
	// Without a signer there is no header.
	h, _ = NewHTTPS(srv.Client(), srv.URL, nil)
	if _, err := h.Call(context.Background(), testRequest); err != nil || got.sig != "" {
		t.Fatalf("unsigned call: %v, header %q", err, got.sig)
	}
}

func TestHTTPSFailures(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = w.Write([]byte(`{"response":{}}`))
	}))
	defer other.Close()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("user data in an error page"))
		case "/redirect":
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
		case "/big":
			_, _ = w.Write([]byte(`{"response":{"x":"` + strings.Repeat("a", MaxResponseBytes) + `"}}`))
		case "/slow":
			<-release
		case "/bad":
			_, _ = w.Write([]byte(`{"status":200}`))
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close: the slow handler must return
	tests := []struct {
		path, reason string
		signer       Signer
		timeout      bool
	}{
		{"/503", "answered HTTP 503", nil, false},
		{"/redirect", "answered HTTP 307", nil, false},
		{"/big", "response is over", nil, false},
		{"/bad", `status 200 needs a JSON object "response"`, nil, false},
		{"/slow", "no answer before the deadline", nil, true},
		{"/503", "cannot sign the request", failingSigner{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			h, err := NewHTTPS(srv.Client(), srv.URL+tc.path, tc.signer)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.timeout {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond) // the behaviour under test is the deadline itself
				defer cancel()
			}
			_, err = h.Call(ctx, testRequest)
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Reason, tc.reason) || e.Timeout != tc.timeout {
				t.Fatalf("got %v; want %q, timeout %v", err, tc.reason, tc.timeout)
			}
			if strings.Contains(e.Error(), "user data") {
				t.Fatal("the error quotes the backend's body")
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("a redirect was followed %d times", n)
	}
	if _, err := NewHTTPS(nil, srv.URL, nil); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := NewHTTPS(srv.Client(), "http://flows.example.com/", nil); err == nil {
		t.Fatal("http:// to a remote host accepted")
	}
}
