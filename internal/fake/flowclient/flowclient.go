// Package flowclient encrypts Flows requests as a WhatsApp client does, for
// the unit tests of the endpoint (internal/flowcrypto, internal/gateway,
// functions/endpoint). It is written from Meta's guide and Node example and
// deliberately imports none of the product's crypto: a test that encrypted
// with the code it tests would prove only that the code agrees with itself.
//
// The local stack's client simulator (internal/local) is a separate,
// independent implementation with the same rule.
package flowclient

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Request is one encrypted request and what its sender keeps to read the
// answer.
type Request struct {
	// Body is the JSON envelope, as Meta POSTs it.
	Body []byte
	// The parts of Body, decoded.
	EncryptedAESKey, EncryptedFlowData []byte
	AESKey                             []byte
	IV                                 [16]byte
}

// Encrypt makes a fresh AES-128 key and 16-byte IV, encrypts payload with
// AES-128-GCM (tag appended) and the key with RSA-OAEP-SHA256 (MGF1-SHA256,
// empty label) to pub.
func Encrypt(pub *rsa.PublicKey, payload []byte) (*Request, error) {
	r := &Request{AESKey: make([]byte, 16)}
	if _, err := rand.Read(r.AESKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(r.IV[:]); err != nil {
		return nil, err
	}
	var err error
	if r.EncryptedAESKey, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, r.AESKey, nil); err != nil {
		return nil, fmt.Errorf("flowclient: RSA-OAEP: %w", err)
	}
	aead, err := gcm(r.AESKey)
	if err != nil {
		return nil, err
	}
	r.EncryptedFlowData = aead.Seal(nil, r.IV[:], payload, nil)
	r.Body = r.Envelope()
	return r, nil
}

// Envelope encodes the parts as a request body (standard padded base64).
func (r *Request) Envelope() []byte {
	b, _ := json.Marshal(map[string]string{
		"encrypted_flow_data": base64.StdEncoding.EncodeToString(r.EncryptedFlowData),
		"encrypted_aes_key":   base64.StdEncoding.EncodeToString(r.EncryptedAESKey),
		"initial_vector":      base64.StdEncoding.EncodeToString(r.IV[:]),
	})
	return b
}

// Decrypt reads an HTTP 200 answer: base64 of AES-128-GCM under the same key
// with every bit of the IV inverted.
func (r *Request) Decrypt(body string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("flowclient: response is not base64: %w", err)
	}
	aead, err := gcm(r.AESKey)
	if err != nil {
		return nil, err
	}
	var iv [16]byte
	for i, b := range r.IV {
		iv[i] = ^b
	}
	out, err := aead.Open(nil, iv[:], ct, nil)
	if err != nil {
		return nil, errors.New("flowclient: response does not open with the inverted IV")
	}
	return out, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, 16)
}

// Sign is the X-Hub-Signature-256 value Meta sends: "sha256=" and the hex
// HMAC-SHA256 of body keyed with the app secret.
func Sign(appSecret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
