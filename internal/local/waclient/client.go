package waclient

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"reflect"
	"time"

	"github.com/flowkey/flowkey/internal/local/flowbackend"
)

// SignatureHeader is the header Meta signs its requests with.
const SignatureHeader = "X-Hub-Signature-256"

const (
	flowsVersion = "3.0"
	userAgent    = "flowkey-waclient/1 (WhatsApp client simulator)"
	// statusExpired is Flows' "flow token no longer valid" (no net/http name).
	statusExpired = 427
	// maxAnswer bounds what is read of an answer: a screen is kilobytes.
	maxAnswer = 1 << 20
)

// Causes of user-visible failures, the keys of Stats.Causes (besides
// "HTTP <status>" for an unexpected status).
const (
	CauseKeyFetch      = "key fetch failed"
	CauseStill421      = "421 after re-fetching the key"
	CauseNoAnswer      = "no answer"
	CauseUndecryptable = "200 that does not decrypt"
	CauseWrongAnswer   = "200 with another answer than the backend's"
	CauseContentType   = "200 not text/plain"
	CauseWrong427      = "427 without the backend's error_msg"
)

// client is one WhatsApp user on one phone number. Only one goroutine at a
// time touches it (one request per client per round).
type client struct {
	id    int
	phone string
	rnd   *rand.Rand

	key     *PublicKey
	expires time.Time

	// The Flow session: the screen shown and what the user entered.
	sessions int
	token    string
	screen   string // "" before INIT and after the Flow closed
	data     map[string]any
	size     string
}

// outcome is what one request (and its retry) came to.
type outcome struct {
	action    string
	sent      int
	got421    int
	retried   bool
	recovered bool
	fetches   int
	keys      []string // fingerprints of the keys each POST was encrypted for
	verified  bool
	expired   bool
	failure   string // a cause; "" when the user saw what the backend answered
	detail    string
}

// answer is the endpoint's reply to one POST.
type answer struct {
	status int
	ctype  string
	body   []byte
	s      Sealed
}

// step sends the client's next request, retrying once after a 421.
func (c *client) step(ctx context.Context, p *Population) outcome {
	req := c.next(*p.opts.Mix)
	o := outcome{action: req.Action}
	plain, err := json.Marshal(req)
	if err != nil {
		return c.fail(o, CauseNoAnswer, err.Error())
	}
	a, err := c.exchange(ctx, p, plain, false, &o)
	if err == nil && a.status == http.StatusMisdirectedRequest {
		// WhatsApp's answer to 421: fetch the key again, retry once.
		o.got421++
		o.retried = true
		a, err = c.exchange(ctx, p, plain, true, &o)
		if err == nil && a.status == http.StatusMisdirectedRequest {
			o.got421++
			return c.fail(o, CauseStill421, "")
		}
	}
	if err != nil {
		return c.fail(o, causeOf(err), err.Error())
	}
	o = c.judge(req, a, o)
	o.recovered = o.retried && o.failure == ""
	return o
}

// fetchError marks a failed key fetch.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func causeOf(err error) string {
	if _, ok := err.(*fetchError); ok {
		return CauseKeyFetch
	}
	return CauseNoAnswer
}

// exchange encrypts plain with the client's key (fetched first when the
// cache has expired, or when refetch is set) and POSTs it.
func (c *client) exchange(ctx context.Context, p *Population, plain []byte, refetch bool, o *outcome) (answer, error) {
	now := p.opts.Now()
	if refetch || c.key == nil || !now.Before(c.expires) {
		o.fetches++
		k, err := FetchKey(ctx, p.opts.HTTPClient, p.opts.GraphURL, p.opts.GraphVersion, p.opts.GraphToken, c.phone)
		if err != nil {
			// A key that can no longer be fetched is not used again.
			c.key = nil
			return answer{}, &fetchError{err}
		}
		c.key, c.expires = k, now.Add(p.keyTTL(c.rnd))
	}
	body, s, err := Seal(c.key.Key, plain)
	if err != nil {
		return answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.EndpointURL, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(SignatureHeader, Sign(p.opts.AppSecret, body))
	o.sent++
	o.keys = append(o.keys, c.key.Fingerprint)
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: got, s: s}, nil
}

// Sign is Meta's X-Hub-Signature-256 of body: "sha256=" and the hex
// HMAC-SHA256 keyed with the app secret.
func Sign(appSecret, body []byte) string {
	mac := hmac.New(sha256.New, appSecret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// judge compares the answer with what the sample backend answers to req,
// and moves the session on.
func (c *client) judge(req flowbackend.FlowRequest, a answer, o outcome) outcome {
	want := flowbackend.Respond(req)
	switch {
	case want.Status == statusExpired && a.status == statusExpired:
		var got struct {
			ErrorMsg string `json:"error_msg"`
		}
		if json.Unmarshal(a.body, &got) != nil || got.ErrorMsg != want.ErrorMsg {
			return c.fail(o, CauseWrong427, snippet(a.body))
		}
		o.expired = true
		c.screen = ""
		return o
	case a.status != http.StatusOK || want.Status != http.StatusOK:
		return c.fail(o, fmt.Sprintf("HTTP %d", a.status), fmt.Sprintf("the backend answers status %d; %s", want.Status, snippet(a.body)))
	}
	if mt, _, _ := mime.ParseMediaType(a.ctype); mt != "text/plain" {
		return c.fail(o, CauseContentType, "Content-Type "+a.ctype)
	}
	plain, err := a.s.Open(a.body)
	if err != nil {
		return c.fail(o, CauseUndecryptable, err.Error())
	}
	var got, expected any
	wantJSON, _ := json.Marshal(want.Response)
	_ = json.Unmarshal(wantJSON, &expected)
	if json.Unmarshal(plain, &got) != nil || !reflect.DeepEqual(got, expected) {
		// The decrypted answer is the sample's screen data, not a user's:
		// safe to quote.
		return c.fail(o, CauseWrongAnswer, fmt.Sprintf("got %s, want %s", snippet(plain), wantJSON))
	}
	o.verified = true
	if req.Action != flowbackend.ActionPing {
		c.screen, c.data = want.Response.Screen, want.Response.Data
		if c.screen == flowbackend.ScreenSuccess {
			c.screen = ""
		}
	}
	return o
}

// fail records a user-visible failure; the user starts the Flow again.
func (c *client) fail(o outcome, cause, detail string) outcome {
	o.failure = cause
	o.detail = fmt.Sprintf("client %d (phone %s) %s: %s", c.id, c.phone, o.action, cause)
	if detail != "" {
		o.detail += ": " + detail
	}
	c.screen = ""
	return o
}

// next is what the user does now.
func (c *client) next(mix Mix) flowbackend.FlowRequest {
	if c.rnd.Float64() < mix.Ping {
		return flowbackend.FlowRequest{Version: flowsVersion, Action: flowbackend.ActionPing}
	}
	req := flowbackend.FlowRequest{Version: flowsVersion, FlowToken: c.token, Screen: c.screen}
	switch c.screen {
	case "":
		c.sessions++
		c.token = fmt.Sprintf("flowkey-sim-%d-%d", c.id, c.sessions)
		if c.rnd.Float64() < mix.Expired {
			c.token = flowbackend.ExpiredPrefix + c.token
		}
		c.size = ""
		return flowbackend.FlowRequest{Version: flowsVersion, Action: flowbackend.ActionInit, FlowToken: c.token}
	case flowbackend.ScreenParty:
		c.size = c.pick("sizes")
		req.Action, req.Data = flowbackend.ActionDataExchange, map[string]any{"party_size": c.size}
	case flowbackend.ScreenSlot:
		if c.rnd.Float64() < mix.Back {
			req.Action = flowbackend.ActionBack
			return req
		}
		req.Action, req.Data = flowbackend.ActionDataExchange, map[string]any{"party_size": c.size, "slot": c.pick("slots")}
	default: // CONFIRM
		if c.rnd.Float64() < mix.Back {
			req.Action = flowbackend.ActionBack
			return req
		}
		req.Action, req.Data = flowbackend.ActionDataExchange, map[string]any{"party_size": c.data["party_size"], "slot": c.data["slot"]}
	}
	return req
}

// pick chooses one of the options the screen shows in data[field].
func (c *client) pick(field string) string {
	opts, _ := c.data[field].([]any)
	if len(opts) == 0 {
		return ""
	}
	o, _ := opts[c.rnd.IntN(len(opts))].(map[string]any)
	id, _ := o["id"].(string)
	return id
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
