package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/local/waclient"
)

// unencryptedPing is the body of the ready-made curl: a health check as
// plain JSON. Signed, it passes the signature check and then fails the
// envelope, so it shows both answers a stranger can get: 421 and 432.
const unencryptedPing = `{"version":"3.0","action":"ping"}`

// flowsCall is one POST to the endpoint, as Meta sends it: printed as a
// curl command, and sent the same way by the tests.
type flowsCall struct {
	URL, Body, Signature string
}

func (c flowsCall) curl() string {
	return fmt.Sprintf("curl -si %s -H 'Content-Type: application/json' -H '%s: %s' -d '%s'", c.URL, waclient.SignatureHeader, c.Signature, c.Body)
}

func (c flowsCall) send(ctx context.Context) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(c.Body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(waclient.SignatureHeader, c.Signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// signedGarbage is the ready-made curl: signed for the app secret, not
// encrypted (HTTP 421).
func signedGarbage(e Endpoints) flowsCall {
	return flowsCall{URL: e.EndpointURL, Body: unencryptedPing, Signature: waclient.Sign([]byte(e.AppSecret), []byte(unencryptedPing))}
}

// badSignature is the same body with a signature made with another secret
// (HTTP 432, before any RSA operation).
func badSignature(e Endpoints) flowsCall {
	return flowsCall{URL: e.EndpointURL, Body: unencryptedPing, Signature: waclient.Sign([]byte("not-the-app-secret"), []byte(unencryptedPing))}
}

// PingCommand is how Commands tells users to send a real ping.
const PingCommand = "go run ./internal/local/cmd/flowkey-flows"

// flowsCommands is the endpoint's part of Commands.
func flowsCommands(w func(string, ...any), e Endpoints) {
	w("")
	w("Flows endpoint (functions/endpoint under its own Lambda RIE, served as a Function URL serves it):")
	w("  endpoint URL (Meta POSTs here)   %s", e.EndpointURL)
	w("  app secret it checks             %s   (secret %s)", e.AppSecret, e.AppSecretName)
	w("  sample backend behind it         %s", e.BackendURL)
	w("A ping must be encrypted with the number's current public key (there is none until the first rotation,")
	w("and each rotation changes it), and the endpoint refuses a replayed body, so no fixed curl can ping it.")
	w("This encrypts a ping for the key Meta serves now, signs it, sends it, decrypts the answer and prints the curl it ran:")
	w("  %s [-action ping|INIT] [-phone ID]", PingCommand)
	w("Ready-made, signed for the app secret above: the signature passes, the body is not encrypted (HTTP 421):")
	w("  %s", signedGarbage(e).curl())
	w("The same body with a wrong signature (HTTP 432, before any RSA operation):")
	w("  %s", badSignature(e).curl())
}

// PingOptions configure Ping.
type PingOptions struct {
	// Action is "ping" (Meta's health check, the default) or "INIT" (the
	// sample Flow's first screen).
	Action string
	// Phone is the number whose key encrypts (the stack's first).
	Phone string
	Out   io.Writer
}

// Ping sends one request to a running stack's endpoint as Meta does: it
// fetches the number's business public key from the Graph simulator,
// encrypts, signs with the app secret, posts, and decrypts the answer. It
// prints the equivalent curl and the answer, and fails unless the answer
// is a 200 that decrypts.
func Ping(ctx context.Context, e Endpoints, opts PingOptions) error {
	if opts.Action == "" {
		opts.Action = "ping"
	}
	if opts.Phone == "" && len(e.PhoneNumberIDs) > 0 {
		opts.Phone = e.PhoneNumberIDs[0]
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	key, err := waclient.FetchKey(ctx, hc, e.GraphURL, waclient.DefaultGraphVersion, stack.DefaultGraphToken, opts.Phone)
	if err != nil {
		return fmt.Errorf("%w (the key secret has no key before its first rotation: make rotate-now LOCAL=1)", err)
	}
	req := map[string]any{"version": "3.0", "action": opts.Action}
	if opts.Action != "ping" {
		req["flow_token"] = "flowkey-local-ping"
	}
	plain, err := json.Marshal(req)
	if err != nil {
		return err
	}
	body, sealed, err := waclient.Seal(key.Key, plain)
	if err != nil {
		return err
	}
	call := flowsCall{URL: e.EndpointURL, Body: string(body), Signature: waclient.Sign([]byte(e.AppSecret), body)}
	fmt.Fprintf(opts.Out, "%s for phone number %s, encrypted for the key Meta serves now (%.16s), signed with the app secret.\n", plain, opts.Phone, key.Fingerprint)
	fmt.Fprintln(opts.Out, "The same request with curl (once: the endpoint answers a replayed body with 421):")
	fmt.Fprintf(opts.Out, "  %s\n", call.curl())
	resp, answer, err := call.send(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "HTTP %d %s\n", resp.StatusCode, resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the endpoint answered HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	decrypted, err := sealed.Open(answer)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "decrypted answer: %s\n", decrypted)
	return nil
}
