// Package funcurl serves a Lambda function at a plain HTTP URL the way a
// Lambda Function URL (auth type NONE, BUFFERED) does, so that the local
// stack can put the real endpoint binary, running under the Lambda RIE,
// where Meta's requests arrive: the method, headers and raw body of each
// request become a payload format 2.0 event, and the function's answer
// becomes the HTTP response.
//
// The event: version "2.0", routeKey and stage "$default", rawPath,
// rawQueryString, queryStringParameters, headers lower-cased with repeated
// values joined by commas (Cookie moved to cookies), requestContext with
// http.method/path/protocol/sourceIp/userAgent, a request ID and the time,
// and the body: as it arrived when the Content-Type is textual (text/*,
// JSON, XML, JavaScript, form data), base64 with isBase64Encoded true
// otherwise, as AWS does for binary bodies.
//
// The answer: a JSON object with statusCode is a structured response
// (statusCode, headers, cookies, body, isBase64Encoded); anything else is
// the body of a 200 application/json response, as Lambda infers it. A
// function error, or an invocation that fails, is HTTP 502; a body, or an
// event, over 6 MB, Lambda's synchronous payload limit, is 413 before any
// invocation.
package funcurl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// MaxBodyBytes is Lambda's limit for a synchronous request payload.
const MaxBodyBytes = 6 << 20

// Invoker runs one synchronous invocation (secretsemu.RIEInvoker is one).
// err covers function errors too.
type Invoker interface {
	Invoke(ctx context.Context, functionARN string, payload []byte) ([]byte, error)
}

// Adapter is an http.Handler in front of one function. Invoker is
// required.
type Adapter struct {
	Invoker     Invoker
	FunctionARN string // passed to Invoke
	// URLID is the Function URL's ID in domainName (a fixed local one).
	URLID  string
	Region string // in domainName ("us-east-1")
	// Now stamps requestContext.time (time.Now).
	Now func() time.Time

	invocations atomic.Int64
}

// Invocations is how many requests reached the function.
func (a *Adapter) Invocations() int64 { return a.invocations.Load() }

// Event is a Function URL request event, payload format 2.0.
type Event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        RequestContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

// RequestContext is the event's requestContext.
type RequestContext struct {
	AccountID    string      `json:"accountId"`
	APIID        string      `json:"apiId"`
	DomainName   string      `json:"domainName"`
	DomainPrefix string      `json:"domainPrefix"`
	HTTP         HTTPContext `json:"http"`
	RequestID    string      `json:"requestId"`
	RouteKey     string      `json:"routeKey"`
	Stage        string      `json:"stage"`
	Time         string      `json:"time"`
	TimeEpoch    int64       `json:"timeEpoch"`
}

// HTTPContext is requestContext.http.
type HTTPContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// Response is a structured Function URL response.
type Response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Cookies         []string          `json:"cookies"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

// ServeHTTP turns the request into an Event, invokes the function and
// writes its answer.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > MaxBodyBytes {
		tooLarge(w)
		return
	}
	payload, err := json.Marshal(a.Event(r, body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// The limit is Lambda's, on the invocation payload: the event, with
	// its JSON escapes or base64.
	if len(payload) > MaxBodyBytes {
		tooLarge(w)
		return
	}
	a.invocations.Add(1)
	out, err := a.Invoker.Invoke(r.Context(), a.FunctionARN, payload)
	if err != nil {
		// What a Function URL answers to a function error.
		writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
		return
	}
	writeResponse(w, out)
}

// Event is the Function URL event for r with the body already read.
func (a *Adapter) Event(r *http.Request, body []byte) Event {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now().UTC()
	urlID, region := a.URLID, a.Region
	if urlID == "" {
		urlID = "flowkeylocal"
	}
	if region == "" {
		region = "us-east-1"
	}
	headers := map[string]string{"host": r.Host}
	var cookies []string
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if lower == "cookie" {
			for _, v := range values {
				cookies = append(cookies, strings.Split(v, "; ")...)
			}
			continue
		}
		headers[lower] = strings.Join(values, ",")
	}
	if _, ok := headers["content-length"]; !ok && r.ContentLength >= 0 {
		headers["content-length"] = strconv.FormatInt(r.ContentLength, 10)
	}
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	headers["x-forwarded-for"] = sourceIP
	headers["x-forwarded-proto"] = "https"
	headers["x-forwarded-port"] = "443"
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	e := Event{
		Version: "2.0", RouteKey: "$default", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query,
		RequestContext: RequestContext{
			AccountID: "anonymous", APIID: urlID, DomainName: urlID + ".lambda-url." + region + ".on.aws", DomainPrefix: urlID,
			HTTP:      HTTPContext{Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent()},
			RequestID: uuid.NewString(), RouteKey: "$default", Stage: "$default",
			Time: t.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: t.UnixMilli(),
		},
	}
	if len(body) > 0 {
		if textual(r.Header.Get("Content-Type")) {
			e.Body = string(body)
		} else {
			e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return e
}

// textual reports whether a body of this Content-Type is passed as text.
func textual(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// writeResponse maps the function's answer onto HTTP.
func writeResponse(w http.ResponseWriter, out []byte) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) != nil || probe["statusCode"] == nil {
		// Not a structured response: Lambda infers a 200 with the answer
		// as a JSON body.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return
	}
	var resp Response
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
		return
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"Message": "Internal Server Error"})
			return
		}
		body = decoded
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, bytes.NewReader(body))
}

// tooLarge is Lambda's refusal of an oversized invocation.
func tooLarge(w http.ResponseWriter) {
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"Message": fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxBodyBytes)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
