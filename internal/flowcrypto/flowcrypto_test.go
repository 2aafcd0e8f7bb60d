package flowcrypto

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/flowclient"
)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func b64s(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }

func body(flow, key, iv string) string {
	return `{"encrypted_flow_data":"` + flow + `","encrypted_aes_key":"` + key + `","initial_vector":"` + iv + `"}`
}

func TestParseEnvelopeAccepts(t *testing.T) {
	wrapped := b64s(RSABlockSize)
	wrapped = wrapped[:76] + `\r\n` + wrapped[76:]
	for name, in := range map[string]string{
		"what a client sends":          body(b64s(40), b64s(256), b64s(16)),
		"members in another order":     `{"initial_vector":"` + b64s(16) + `","encrypted_aes_key":"` + b64s(256) + `","encrypted_flow_data":"` + b64s(16) + `"}`,
		"white space around":           " \n" + body(b64s(16), b64s(256), b64s(16)) + "\n",
		"escaped slash (PHP encoders)": body(strings.ReplaceAll(b64s(40), "/", `\/`), b64s(256), b64s(16)),
		"line-wrapped base64":          body(b64s(40), wrapped, b64s(16)),
	} {
		t.Run(name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if len(env.EncryptedAESKey) != RSABlockSize || len(env.EncryptedFlowData) < TagSize || env.IV[0] != 7 {
				t.Fatalf("decoded %d/%d bytes", len(env.EncryptedAESKey), len(env.EncryptedFlowData))
			}
		})
	}
}

func TestParseEnvelopeRejects(t *testing.T) {
	url := strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 128)))
	tests := []struct {
		name, in, member, problem string
	}{
		{"empty", ``, "", "is not one well-formed JSON object"},
		{"array", `[1]`, "", "is an array, not a JSON object"},
		{"truncated", body(b64s(16), b64s(256), b64s(16))[:50], "", "is not one well-formed JSON object"},
		{"trailing data", body(b64s(16), b64s(256), b64s(16)) + "{}", "", "is not one well-formed JSON object"},
		{"unknown member", `{"encrypted_flow_data":"` + b64s(16) + `","x":1}`, "", "has a member that is not"},
		{"case differs", `{"Encrypted_Flow_Data":"` + b64s(16) + `"}`, "", "has a member that is not"},
		{"duplicate", `{"initial_vector":"` + b64s(16) + `","initial_vector":"` + b64s(16) + `"}`, MemberIV, "appears twice"},
		{"missing IV", `{"encrypted_flow_data":"` + b64s(16) + `","encrypted_aes_key":"` + b64s(256) + `"}`, MemberIV, "is missing"},
		{"missing all", `{}`, MemberFlowData, "is missing"},
		{"number", `{"initial_vector":16}`, MemberIV, "is a number, not a base64 string"},
		{"null", `{"initial_vector":null}`, MemberIV, "is null, not a base64 string"},
		{"not base64", body(b64s(16), b64s(256), "!!!!!!!!!!!!!!!!!!!!!!!!"), MemberIV, "is not standard padded base64"},
		{"unpadded", body(b64s(16), b64s(256), strings.TrimRight(b64s(16), "=")), MemberIV, "is not standard padded base64"},
		{"URL-safe", body(b64s(16), url, b64s(16)), MemberAESKey, "is not standard padded base64"},
		{"non-zero padding bits", body(b64s(16), b64s(256), b64s(16)[:20]+"Bx=="), MemberIV, "is not standard padded base64"},
		{"IV of 12 bytes", body(b64s(16), b64s(256), b64s(12)), MemberIV, "is 12 bytes, not 16"},
		{"RSA block of 128 bytes", body(b64s(16), b64s(128), b64s(16)), MemberAESKey, "is 128 bytes, not a 256-byte RSA-2048 block"},
		{"RSA block of 512 bytes", body(b64s(16), b64s(512), b64s(16)), MemberAESKey, "is 512 bytes, not a 256-byte RSA-2048 block"},
		{"data shorter than the tag", body(b64s(15), b64s(256), b64s(16)), MemberFlowData, "is 15 bytes, shorter than the 16-byte GCM tag"},
		{"empty data", body("", b64s(256), b64s(16)), MemberFlowData, "is 0 bytes, shorter than the 16-byte GCM tag"},
		{"lone surrogate escape", body(b64s(16), b64s(256), `\ud800`+b64s(16)), MemberIV, "is not standard padded base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tc.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Member != tc.member || !strings.HasPrefix(e.Problem, tc.problem) {
				t.Fatalf("got %q / %q, want %q / %q", e.Member, e.Problem, tc.member, tc.problem)
			}
		})
	}
}

func TestErrorsNeverQuoteTheInput(t *testing.T) {
	const canary = "CANARYCANARYCANARY"
	for _, in := range []string{
		`{"` + canary + `":1}`,
		`{"initial_vector":"` + canary + `"}`,
		`"` + canary + `"`,
		`{"initial_vector":"` + base64.StdEncoding.EncodeToString([]byte(canary)) + `"}`,
	} {
		_, err := ParseEnvelope([]byte(in))
		if err == nil || strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "Q0FOQVJZ") {
			t.Fatalf("%s: %v", in, err)
		}
	}
}

func TestSessionOpensWhatAClientSealsAndAnswersWithTheInvertedIV(t *testing.T) {
	req, err := flowclient.Encrypt(&testKey().PublicKey, []byte(`{"version":"3.0","action":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(req.AESKey, env.IV)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Open(env.EncryptedFlowData)
	if err != nil || string(plain) != `{"version":"3.0","action":"ping"}` {
		t.Fatalf("Open: %q %v", plain, err)
	}
	resp := s.SealBase64([]byte(`{"data":{"status":"active"}}`))
	got, err := req.Decrypt(resp)
	if err != nil || string(got) != `{"data":{"status":"active"}}` {
		t.Fatalf("client reads %q, %v", got, err)
	}
}

func TestOpenFailsAsOneError(t *testing.T) {
	req, err := flowclient.Encrypt(&testKey().PublicKey, []byte(`{"action":"INIT"}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(req.AESKey, req.IV)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(req.EncryptedFlowData)
	flipped[0] ^= 1
	tagFlipped := bytes.Clone(req.EncryptedFlowData)
	tagFlipped[len(tagFlipped)-1] ^= 1
	otherKey := bytes.Clone(req.AESKey)
	otherKey[0] ^= 1
	wrong, _ := NewSession(otherKey, req.IV)
	otherIV := req.IV
	otherIV[15] ^= 1
	wrongIV, _ := NewSession(req.AESKey, otherIV)
	for name, tc := range map[string]struct {
		s    *Session
		data []byte
	}{
		"ciphertext bit":  {s, flipped},
		"tag bit":         {s, tagFlipped},
		"truncated":       {s, req.EncryptedFlowData[:len(req.EncryptedFlowData)-1]},
		"shorter than 16": {s, req.EncryptedFlowData[:15]},
		"wrong key":       {wrong, req.EncryptedFlowData},
		"wrong IV":        {wrongIV, req.EncryptedFlowData},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := tc.s.Open(tc.data); !errors.Is(err, ErrOpen) || out != nil {
				t.Fatalf("got %q, %v", out, err)
			}
		})
	}
}

func TestNewSessionNeedsA16ByteKey(t *testing.T) {
	for _, n := range []int{0, 15, 17, 24, 32} {
		if _, err := NewSession(make([]byte, n), [IVSize]byte{}); !errors.Is(err, ErrKeySize) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
}

func TestInvertIV(t *testing.T) {
	iv := [IVSize]byte{0x00, 0xff, 0x0f, 0xa5}
	got := InvertIV(iv)
	if got[0] != 0xff || got[1] != 0x00 || got[2] != 0xf0 || got[3] != 0x5a || got[15] != 0xff {
		t.Fatalf("%x", got)
	}
	if InvertIV(got) != iv {
		t.Fatal("not an involution")
	}
}
