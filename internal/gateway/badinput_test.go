package gateway

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowkey/flowkey/internal/fake/flowclient"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

// nothingChanged checks what a refused request must not do: call the
// backend, or read a secret beyond what warm-up read.
func (f *fixture) nothingChanged(smBefore int) {
	f.t.Helper()
	if f.backend.count() != 0 {
		f.t.Fatal("a refused request reached the backend")
	}
	if n := f.smCalls(); n != smBefore {
		f.t.Fatalf("a refused request made %d Secrets Manager calls (%v)", n-smBefore, f.sm.Ops()[smBefore:])
	}
}

// warm answers one ping, so that the app secret and the keys are loaded
// and counted before the case under test.
func (f *fixture) warm() int {
	f.t.Helper()
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	f.open(req, f.do(event(req.Body)))
	return f.smCalls()
}

func TestSignatureFailuresAre432BeforeAnyRSA(t *testing.T) {
	req := func(f *fixture) []byte {
		return f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`).Body
	}
	for name, mutate := range map[string]func(map[string]string, []byte){
		"missing":   func(h map[string]string, _ []byte) { delete(h, "x-hub-signature-256") },
		"empty":     func(h map[string]string, _ []byte) { h["x-hub-signature-256"] = "" },
		"malformed": func(h map[string]string, _ []byte) { h["x-hub-signature-256"] = "sha256=nothex" },
		"another secret": func(h map[string]string, b []byte) {
			h["x-hub-signature-256"] = flowclient.Sign("not-the-app-secret", b)
		},
		"another body": func(h map[string]string, b []byte) {
			h["x-hub-signature-256"] = flowclient.Sign(appValue, append(b, ' '))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			before := f.warm()
			ev := event(req(f))
			mutate(ev.Headers, []byte(ev.Body))
			resp := f.do(ev)
			if resp.StatusCode != 432 || resp.Body != "" {
				t.Fatalf("got %d %q", resp.StatusCode, resp.Body)
			}
			f.wantLog(map[string]any{"outcome": "bad_signature", "rsa_ops": 0.0, "status": 432.0})
			f.nothingChanged(before)
		})
	}
}

func TestAnUnreadableAppSecretIs500(t *testing.T) {
	f := newFixture(t)
	f.sm.Delete(appSecret)
	req := f.encrypt(0, `{"version":"3.0","action":"ping"}`)
	if resp := f.do(event(req.Body)); resp.StatusCode != 500 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	f.wantLog(map[string]any{"outcome": "signature_unverifiable", "rsa_ops": 0.0})
}

func TestABodyOverTheCapIs413BeforeAnyWork(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 6<<20) // 6 MB, as the issue asks
	for name, ev := range map[string]func() ([]byte, bool){
		"raw":    func() ([]byte, bool) { return big, false },
		"base64": func() ([]byte, bool) { return big, true },
		"one byte over": func() ([]byte, bool) {
			return bytes.Repeat([]byte("a"), DefaultMaxBodyBytes+1), false
		},
		"one byte over, base64": func() ([]byte, bool) {
			return bytes.Repeat([]byte("a"), DefaultMaxBodyBytes+1), true
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			body, b64 := ev()
			e := event(body)
			if b64 {
				e = base64Event(body)
			}
			if resp := f.do(e); resp.StatusCode != 413 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			f.wantLog(map[string]any{"outcome": "body_too_large", "rsa_ops": 0.0})
			f.nothingChanged(0) // not even the app secret was read
		})
	}
	// At the cap exactly, the body is read (and here refused as an envelope).
	f := newFixture(t)
	if resp := f.do(event(bytes.Repeat([]byte(" "), DefaultMaxBodyBytes))); resp.StatusCode != 421 {
		t.Fatalf("a body at the cap: %d", resp.StatusCode)
	}
}

func TestABodyTheFunctionURLCannotHaveEncodedIs400(t *testing.T) {
	f := newFixture(t)
	ev := event([]byte("x"))
	ev.Body, ev.IsBase64Encoded = "not base64!", true
	if resp := f.do(ev); resp.StatusCode != 400 {
		t.Fatalf("got %d", resp.StatusCode)
	}
}

func TestValidlySignedGarbageIs421AndChangesNothing(t *testing.T) {
	good := func(f *fixture) *flowclient.Request {
		return f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
	}
	b64 := base64.StdEncoding.EncodeToString
	cases := map[string]struct {
		body    func(f *fixture) []byte
		outcome string
		rsaOps  float64
	}{
		"not JSON":   {func(*fixture) []byte { return []byte("garbage") }, "bad_envelope", 0},
		"empty":      {func(*fixture) []byte { return nil }, "bad_envelope", 0},
		"JSON array": {func(*fixture) []byte { return []byte(`[1,2]`) }, "bad_envelope", 0},
		"extra member": {func(f *fixture) []byte {
			return append(bytes.TrimSuffix(good(f).Body, []byte("}")), []byte(`,"x":1}`)...)
		}, "bad_envelope", 0},
		"bad base64": {func(f *fixture) []byte { r := good(f); return withMember(r, "initial_vector", "!!!!") }, "bad_envelope", 0},
		"URL-safe": {func(f *fixture) []byte {
			r := good(f)
			return withMember(r, "encrypted_aes_key", strings.NewReplacer("+", "-", "/", "_").Replace(b64(r.EncryptedAESKey))+"-_")
		}, "bad_envelope", 0},
		"IV of 12": {func(f *fixture) []byte { r := good(f); return withMember(r, "initial_vector", b64(r.IV[:12])) }, "bad_envelope", 0},
		"RSA block 255": {func(f *fixture) []byte {
			r := good(f)
			return withMember(r, "encrypted_aes_key", b64(r.EncryptedAESKey[:255]))
		}, "bad_envelope", 0},
		"data too short": {func(f *fixture) []byte {
			r := good(f)
			return withMember(r, "encrypted_flow_data", b64(r.EncryptedFlowData[:15]))
		}, "bad_envelope", 0},
		"random RSA block": {func(f *fixture) []byte {
			r := good(f)
			junk := make([]byte, 256)
			_, _ = rand.Read(junk)
			return withMember(r, "encrypted_aes_key", b64(junk))
		}, "no_key", 2},
		"tampered data": {func(f *fixture) []byte {
			r := good(f)
			r.EncryptedFlowData[0] ^= 1
			return r.Envelope()
		}, "bad_ciphertext", 1},
		"wrong IV": {func(f *fixture) []byte {
			r := good(f)
			r.IV[0] ^= 1
			return r.Envelope()
		}, "bad_ciphertext", 1},
		"decrypts to non-JSON":       {func(f *fixture) []byte { return f.encrypt(0, "hello").Body }, "bad_request", 1},
		"decrypts to unknown action": {func(f *fixture) []byte { return f.encrypt(0, `{"action":"delete_everything"}`).Body }, "bad_request", 1},
		"decrypts to two actions":    {func(f *fixture) []byte { return f.encrypt(0, `{"action":"ping","action":"INIT"}`).Body }, "bad_request", 1},
		"action not a string":        {func(f *fixture) []byte { return f.encrypt(0, `{"action":["INIT"]}`).Body }, "bad_request", 1},
		"data not an object":         {func(f *fixture) []byte { return f.encrypt(0, `{"action":"INIT","data":"x"}`).Body }, "bad_request", 1},
		"a 32-byte AES key": {func(f *fixture) []byte {
			r := good(f)
			r.EncryptedAESKey = rsaEncrypt(f.t, make([]byte, 32))
			return r.Envelope()
		}, "bad_aes_key", 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			before := f.warm()
			f.clock.Advance(1) // within the floor of warm-up's load
			resp := f.do(event(tc.body(f)))
			if resp.StatusCode != 421 || resp.Body != "" {
				t.Fatalf("got %d %q", resp.StatusCode, resp.Body)
			}
			// A block no key decrypts waits out the floor and looks at the
			// secret once more (one DescribeSecret, no version read): it
			// might be encrypted to a key that has just appeared. Every
			// other refusal comes before the key ring.
			noKey := tc.outcome == "no_key"
			f.wantLog(map[string]any{"outcome": tc.outcome, "rsa_ops": tc.rsaOps, "refreshed": noKey})
			if noKey {
				if got := f.sm.Ops()[before:]; len(got) != 1 || got[0] != secretsfake.OpDescribeSecret {
					t.Fatalf("a block no key decrypts cost %v, want one DescribeSecret", got)
				}
				before++
			}
			f.nothingChanged(before)
		})
	}
}

// Junk that no key decrypts costs at most one refresh per floor: a request
// within the floor waits it out, so refreshes never come closer together.
func TestJunkCausesAtMostOneRefreshPerFloor(t *testing.T) {
	f := newFixture(t)
	before := f.warm()
	junk := func() {
		r := f.encrypt(2, `{"version":"3.0","action":"ping"}`) // a key the secret never held
		if resp := f.do(event(r.Body)); resp.StatusCode != 421 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	}
	start := f.clock.Now()
	for range 40 {
		junk()
	}
	elapsed := f.clock.Now().Sub(start)
	got := f.sm.Ops()[before:]
	if limit := int(elapsed/floor) + 1; len(got) == 0 || len(got) > limit {
		t.Fatalf("40 junk requests over %s cost %d Secrets Manager calls, want 1 to %d (one per floor)", elapsed, len(got), limit)
	}
	for _, op := range got {
		if op != secretsfake.OpDescribeSecret {
			t.Fatalf("junk read a version: %v", got)
		}
	}
	if f.backend.count() != 0 {
		t.Fatal("junk reached the backend")
	}
}

func TestAReplayedBodyIs421AndReachesNothing(t *testing.T) {
	f := newFixture(t)
	req := f.encrypt(0, `{"version":"3.0","action":"INIT","flow_token":"t"}`)
	f.open(req, f.do(event(req.Body)))
	before := f.smCalls()
	for i, e := range []events.LambdaFunctionURLRequest{event(req.Body), base64Event(req.Body)} {
		resp := f.do(e)
		if resp.StatusCode != 421 {
			t.Fatalf("replay %d: got %d", i, resp.StatusCode)
		}
		f.wantLog(map[string]any{"outcome": "replay", "rsa_ops": 0.0})
	}
	if f.backend.count() != 1 || f.smCalls() != before {
		t.Fatalf("a replay reached the backend (%d calls) or Secrets Manager", f.backend.count())
	}
	// After the window, the body is forgotten: it decrypts again.
	f.clock.Advance(DefaultReplayWindow)
	f.open(req, f.do(event(req.Body)))
}

// withMember is r's envelope with one member's value replaced.
func withMember(r *flowclient.Request, name, value string) []byte {
	var m map[string]string
	_ = json.Unmarshal(r.Envelope(), &m)
	m[name] = value
	b, _ := json.Marshal(m)
	return b
}

// rsaEncrypt encrypts msg to the AWSCURRENT key.
func rsaEncrypt(t testing.TB, msg []byte) []byte {
	t.Helper()
	b, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pairs()[0].Public(), msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
