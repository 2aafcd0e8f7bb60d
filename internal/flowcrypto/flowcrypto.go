// Package flowcrypto is the WhatsApp Flows data-exchange envelope: the strict
// decoding of a request body, and the AES-128-GCM that protects the request
// and its response once the AES key has been recovered with RSA.
//
// A request body is exactly
//
//	{"encrypted_flow_data":"<b64>","encrypted_aes_key":"<b64>","initial_vector":"<b64>"}
//
// in any member order: the 256-byte RSA-OAEP block that holds the 16-byte AES
// key, a 16-byte IV, and the AES-128-GCM ciphertext with its 16-byte tag
// appended. The response is the backend's JSON sealed with the same AES key
// and the IV with every bit inverted, sent as base64 text.
//
// # Strictness
//
// ParseEnvelope accepts exactly the three members, each a JSON string, no
// duplicates, no trailing data, and exact decoded lengths. Base64 is the
// standard alphabet with padding (RFC 4648 §4), as every producer Meta ships
// emits it (the WhatsApp clients, Meta's Node, Python, Java and Go examples),
// and as Meta's Go example decodes it. Go's decoder skips CR and LF, so a
// line-wrapped encoding is read too; URL-safe and unpadded forms are refused:
// no Meta producer emits them, and with fixed lengths a refusal is exact.
// Strict mode also refuses non-zero padding bits, so one value has one
// encoding.
//
// # What errors say
//
// An *Error names the member and the kind of problem, never a value, and the
// AES errors say only that authentication failed: a caller answers HTTP 421
// to all of them, and logs them without an oracle for the sender.
package flowcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowkey/flowkey/internal/strictjson"
)

// Sizes fixed by the Flows protocol.
const (
	RSABlockSize = 256 // RSA-2048 OAEP ciphertext
	AESKeySize   = 16  // AES-128
	IVSize       = 16  // GCM nonce: not Go's default 12, hence NewGCMWithNonceSize
	TagSize      = 16  // GCM tag, appended to the ciphertext
)

// The envelope's member names.
const (
	MemberFlowData = "encrypted_flow_data"
	MemberAESKey   = "encrypted_aes_key"
	MemberIV       = "initial_vector"
)

// Envelope is one decoded request body.
type Envelope struct {
	// EncryptedAESKey is exactly RSABlockSize bytes.
	EncryptedAESKey []byte
	// EncryptedFlowData is the ciphertext with the tag appended: at least
	// TagSize bytes.
	EncryptedFlowData []byte
	IV                [IVSize]byte
}

// Error is an envelope that is not what the protocol sends. It carries no
// input beyond member names the protocol defines.
type Error struct {
	// Member is one of the three member names, or "" for the body as a whole.
	Member  string
	Problem string
}

func (e *Error) Error() string {
	if e.Member == "" {
		return "envelope: " + e.Problem
	}
	return "envelope: " + e.Member + ": " + e.Problem
}

// ErrOpen is every AES-GCM failure: a wrong key, a tampered ciphertext, a
// tag that does not match.
var ErrOpen = errors.New("flowcrypto: AES-GCM authentication failed")

// ErrKeySize is an AES key that is not AESKeySize bytes.
var ErrKeySize = errors.New("flowcrypto: the AES key is not 16 bytes")

var b64 = base64.StdEncoding.Strict()

// ParseEnvelope decodes body strictly; see the package comment.
func ParseEnvelope(body []byte) (*Envelope, error) {
	members, err := strictjson.Members(body)
	if err != nil {
		var notObj *strictjson.NotObjectError
		if errors.As(err, &notObj) {
			return nil, &Error{Problem: "is " + notObj.Kind.String() + ", not a JSON object"}
		}
		return nil, &Error{Problem: "is not one well-formed JSON object"}
	}
	var env Envelope
	var seen [3]bool
	for _, m := range members {
		var i int
		switch m.Name {
		case MemberFlowData:
			i = 0
		case MemberAESKey:
			i = 1
		case MemberIV:
			i = 2
		default:
			// Not quoted: the name is whatever the sender wrote.
			return nil, &Error{Problem: fmt.Sprintf("has a member that is not %s, %s or %s", MemberFlowData, MemberAESKey, MemberIV)}
		}
		if seen[i] {
			return nil, &Error{Member: m.Name, Problem: "appears twice"}
		}
		seen[i] = true
		raw, err := decodeMember(m)
		if err != nil {
			return nil, err
		}
		switch i {
		case 0:
			if len(raw) < TagSize {
				return nil, &Error{Member: m.Name, Problem: fmt.Sprintf("is %d bytes, shorter than the %d-byte GCM tag", len(raw), TagSize)}
			}
			env.EncryptedFlowData = raw
		case 1:
			if len(raw) != RSABlockSize {
				return nil, &Error{Member: m.Name, Problem: fmt.Sprintf("is %d bytes, not a %d-byte RSA-2048 block", len(raw), RSABlockSize)}
			}
			env.EncryptedAESKey = raw
		case 2:
			if len(raw) != IVSize {
				return nil, &Error{Member: m.Name, Problem: fmt.Sprintf("is %d bytes, not %d", len(raw), IVSize)}
			}
			copy(env.IV[:], raw)
		}
	}
	for i, name := range [3]string{MemberFlowData, MemberAESKey, MemberIV} {
		if !seen[i] {
			return nil, &Error{Member: name, Problem: "is missing"}
		}
	}
	return &env, nil
}

func decodeMember(m strictjson.Member) ([]byte, error) {
	if k := strictjson.KindOf(m.Value); k != strictjson.String {
		return nil, &Error{Member: m.Name, Problem: "is " + k.String() + ", not a base64 string"}
	}
	var s string
	if err := json.Unmarshal(m.Value, &s); err != nil {
		return nil, &Error{Member: m.Name, Problem: "is not a valid JSON string"}
	}
	raw, err := b64.DecodeString(s)
	if err != nil {
		return nil, &Error{Member: m.Name, Problem: "is not standard padded base64"}
	}
	return raw, nil
}

// Session is the AES-128-GCM state of one request: it opens the request and
// seals the response with the same key. It is not safe for concurrent use,
// and is meant to live for one request.
type Session struct {
	aead cipher.AEAD
	iv   [IVSize]byte
}

// NewSession expands aesKey (AESKeySize bytes) for the request's iv. The
// caller may clear aesKey afterwards: the session keeps only the expanded key.
func NewSession(aesKey []byte, iv [IVSize]byte) (*Session, error) {
	if len(aesKey) != AESKeySize {
		return nil, ErrKeySize
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, ErrKeySize
	}
	aead, err := cipher.NewGCMWithNonceSize(block, IVSize)
	if err != nil {
		// Unreachable: 16 is a valid nonce size for AES-GCM.
		return nil, fmt.Errorf("flowcrypto: %w", err)
	}
	return &Session{aead: aead, iv: iv}, nil
}

// Open authenticates and decrypts the request's encrypted_flow_data. Every
// failure is ErrOpen.
func (s *Session) Open(data []byte) ([]byte, error) {
	if len(data) < TagSize {
		return nil, ErrOpen
	}
	out, err := s.aead.Open(nil, s.iv[:], data, nil)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Seal encrypts a response with the request's key and the inverted IV, and
// returns the ciphertext with the tag appended.
func (s *Session) Seal(plaintext []byte) []byte {
	iv := InvertIV(s.iv)
	return s.aead.Seal(make([]byte, 0, len(plaintext)+TagSize), iv[:], plaintext, nil)
}

// SealBase64 is Seal, encoded as the response body Meta expects.
func (s *Session) SealBase64(plaintext []byte) string {
	return base64.StdEncoding.EncodeToString(s.Seal(plaintext))
}

// InvertIV flips every bit of iv: the response's IV.
func InvertIV(iv [IVSize]byte) [IVSize]byte {
	for i := range iv {
		iv[i] = ^iv[i]
	}
	return iv
}
