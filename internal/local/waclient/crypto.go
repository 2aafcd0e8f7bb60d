package waclient

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// This file is the client's half of Meta's Flows encryption, written from
// Meta's "Implementing your Flow endpoint" and its Node example
// (WhatsApp/WhatsApp-Flows-Tools), not from flowkey's own code: a simulator
// that reused the code under test would prove nothing.
//
//	request:  a fresh 128-bit AES key and 16-byte IV per request;
//	          encrypted_flow_data = AES-128-GCM(key, IV, JSON), the 16-byte tag appended;
//	          encrypted_aes_key   = RSA-OAEP(business public key, key), SHA-256 for hash and MGF1;
//	          initial_vector      = IV; all three standard base64.
//	response: base64 of AES-128-GCM(same key, IV with every bit inverted, JSON), tag appended.

const (
	aesKeyBytes = 16
	ivBytes     = 16
)

// envelope is the body WhatsApp POSTs to the endpoint.
type envelope struct {
	EncryptedFlowData string `json:"encrypted_flow_data"`
	EncryptedAESKey   string `json:"encrypted_aes_key"`
	InitialVector     string `json:"initial_vector"`
}

// Sealed remembers what decrypts the answer to one request: keep it
// secret, it is the request's AES key.
type Sealed struct {
	key, iv []byte
}

// Seal encrypts plaintext (a Flows request's JSON) for the business public
// key pub, as WhatsApp does, and returns the body to POST.
func Seal(pub *rsa.PublicKey, plaintext []byte) ([]byte, Sealed, error) {
	s := Sealed{key: make([]byte, aesKeyBytes), iv: make([]byte, ivBytes)}
	// crypto/rand, never the seeded source: a repeated key and IV would be
	// a replayed body, which the endpoint refuses.
	rand.Read(s.key)
	rand.Read(s.iv)
	gcm, err := newGCM(s.key)
	if err != nil {
		return nil, Sealed{}, err
	}
	data := gcm.Seal(nil, s.iv, plaintext, nil)
	encKey, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, s.key, nil)
	if err != nil {
		return nil, Sealed{}, fmt.Errorf("RSA-OAEP: %w", err)
	}
	body, err := json.Marshal(envelope{
		EncryptedFlowData: base64.StdEncoding.EncodeToString(data),
		EncryptedAESKey:   base64.StdEncoding.EncodeToString(encKey),
		InitialVector:     base64.StdEncoding.EncodeToString(s.iv),
	})
	return body, s, err
}

// errUndecryptable is an answer that AES-GCM refuses with the inverted IV.
var errUndecryptable = errors.New("the response does not decrypt with the request's AES key and the inverted IV")

// Open decrypts the endpoint's answer (HTTP 200, base64) to the request s
// sealed.
func (s Sealed) Open(body []byte) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(body)))
	if err != nil {
		return nil, fmt.Errorf("the response is not base64: %w", err)
	}
	gcm, err := newGCM(s.key)
	if err != nil {
		return nil, err
	}
	flipped := make([]byte, len(s.iv))
	for i, b := range s.iv {
		flipped[i] = ^b
	}
	plain, err := gcm.Open(nil, flipped, data, nil)
	if err != nil {
		return nil, errUndecryptable
	}
	return plain, nil
}

// newGCM is AES-128-GCM with Flows' 16-byte IV: Go's default nonce is 12.
func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, ivBytes)
}
