package flowclient

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// The client is checked against the protocol itself, by hand, so that
// the endpoint's tests rest on something other than the endpoint.
func TestEncryptFollowsTheProtocol(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Encrypt(&priv.PublicKey, []byte(`{"action":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal(r.Body, &env); err != nil || len(env) != 3 {
		t.Fatalf("envelope %s: %v", r.Body, err)
	}
	block, _ := base64.StdEncoding.DecodeString(env["encrypted_aes_key"])
	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, block, nil)
	if err != nil || string(key) != string(r.AESKey) || len(key) != 16 {
		t.Fatalf("AES key: %v", err)
	}
	if iv, _ := base64.StdEncoding.DecodeString(env["initial_vector"]); string(iv) != string(r.IV[:]) {
		t.Fatal("IV differs")
	}
	data, _ := base64.StdEncoding.DecodeString(env["encrypted_flow_data"])
	aead, _ := gcm(key)
	plain, err := aead.Open(nil, r.IV[:], data, nil)
	if err != nil || string(plain) != `{"action":"ping"}` {
		t.Fatalf("flow data: %q %v", plain, err)
	}
	// A response sealed with the inverted IV opens; one with the same IV does not.
	inv := r.IV
	for i := range inv {
		inv[i] ^= 0xff
	}
	resp := base64.StdEncoding.EncodeToString(aead.Seal(nil, inv[:], []byte(`{"ok":1}`), nil))
	if got, err := r.Decrypt(resp); err != nil || string(got) != `{"ok":1}` {
		t.Fatalf("Decrypt: %q %v", got, err)
	}
	same := base64.StdEncoding.EncodeToString(aead.Seal(nil, r.IV[:], []byte(`{"ok":1}`), nil))
	if _, err := r.Decrypt(same); err == nil {
		t.Fatal("a response sealed with the request's own IV must not open")
	}
}

func TestSignMatchesMetaExample(t *testing.T) {
	// HMAC-SHA256("secret", "body"), computed independently (openssl dgst -sha256 -hmac secret).
	const want = "sha256=dc46983557fea127b43af721467eb9b3fde2338fe3e14f51952aa8478c13d355"
	if got := Sign("secret", []byte("body")); got != want {
		t.Fatalf("got %s", got)
	}
}
