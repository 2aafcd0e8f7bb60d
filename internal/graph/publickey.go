package graph

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// What Meta accepts for a business public key.
const (
	keyBits     = 2048
	keyExponent = 65537
)

const encryptionEdge = "whatsapp_business_encryption"

// UploadPublicKey is POST /{version}/{phoneNumberID}/whatsapp_business_encryption.
//
// The PEM is checked before any I/O: it must hold exactly one RSA-2048,
// e=65537 public key (PKIX "PUBLIC KEY", or PKCS#1 "RSA PUBLIC KEY"). What
// is sent is the canonical PKIX PEM of that key, so stray text, or a
// private key pasted by mistake, can never reach Meta.
func (c *Client) UploadPublicKey(ctx context.Context, auth Auth, phoneNumberID, publicKeyPEM string) error {
	const op = "upload"
	if err := c.checkCall(op, "phone number ID", phoneNumberID, auth); err != nil {
		return err
	}
	_, der, problem := parsePublicKey(publicKeyPEM)
	if problem != "" {
		return fmt.Errorf("graph %s %s: public key PEM %s; fix: pass the PKIX \"PUBLIC KEY\" PEM of an RSA-2048 key with e=65537: %w",
			op, phoneNumberID, problem, ErrInvalidInput)
	}
	canonical := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	rq := request{
		op: op, object: phoneNumberID, method: http.MethodPost,
		url:  c.endpoint(auth.Version, phoneNumberID, encryptionEdge),
		form: url.Values{"business_public_key": {canonical}}.Encode(),
	}
	return c.do(ctx, auth, rq, newRedactor(auth.Token.value, publicKeyPEM, canonical), decodeSuccess)
}

// decodeSuccess accepts only {"success": true}: a 200 that does not say
// so has not been shown to store the key.
func decodeSuccess(body []byte) error {
	var r struct {
		Success *bool `json:"success"`
	}
	if err := decodeObject(body, &r); err != nil {
		return err
	}
	switch {
	case r.Success == nil:
		return malformed("HTTP 2xx without a success field")
	case !*r.Success:
		return malformed("success is false")
	}
	return nil
}

// keyFields are asked for explicitly: Meta's v23 reference example of a
// VALID answer to a GET without fields carries the status alone.
const keyFields = "business_public_key,business_public_key_signature_status"

// GetPublicKey is GET /{version}/{phoneNumberID}/whatsapp_business_encryption?fields=...
//
// Both response shapes are accepted: the guide's flat object and the
// {"data":[{...}]} wrapper the API actually returns. An empty data array,
// or an object with neither, means no key is registered: PublicKeyPEM and
// Status are "". A stored key that is not a usable RSA-2048 key is not an
// error: PublicKey is nil and KeyProblem says why, and the caller decides.
// A VALID answer without a key sets KeyOmitted: Meta holds a key it did
// not show.
func (c *Client) GetPublicKey(ctx context.Context, auth Auth, phoneNumberID string) (*Registration, error) {
	const op = "get"
	if err := c.checkCall(op, "phone number ID", phoneNumberID, auth); err != nil {
		return nil, err
	}
	u := c.endpoint(auth.Version, phoneNumberID, encryptionEdge)
	u.RawQuery = url.Values{"fields": {keyFields}}.Encode()
	rq := request{op: op, object: phoneNumberID, method: http.MethodGet, url: u}
	var reg *Registration
	err := c.do(ctx, auth, rq, newRedactor(auth.Token.value), func(body []byte) error {
		r, err := decodeRegistration(body)
		reg = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return reg, nil
}

type keyEntry struct {
	Key    *string `json:"business_public_key"`
	Status *string `json:"business_public_key_signature_status"`
}

// decodeRegistration parses a GET response body. Only the first data entry
// counts: Meta keeps one active key per number.
func decodeRegistration(body []byte) (*Registration, error) {
	var r struct {
		keyEntry
		Data []keyEntry `json:"data"`
	}
	if err := decodeObject(body, &r); err != nil {
		return nil, err
	}
	entry := r.keyEntry
	if len(r.Data) > 0 {
		entry = r.Data[0]
	}
	reg := &Registration{}
	if entry.Key != nil {
		reg.PublicKeyPEM = *entry.Key
	}
	if entry.Status != nil {
		reg.Status = *entry.Status
	}
	if strings.TrimSpace(reg.PublicKeyPEM) == "" {
		if reg.Status == StatusValid {
			reg.KeyOmitted = true
			reg.KeyProblem = "Meta answered VALID but returned no key (business_public_key was asked for and is missing or blank)"
		}
		return reg, nil
	}
	pub, der, problem := parsePublicKey(reg.PublicKeyPEM)
	if problem != "" {
		reg.KeyProblem = "business_public_key " + problem
		return reg, nil
	}
	reg.PublicKey, reg.PublicDER = pub, der
	return reg, nil
}

// decodeObject unmarshals a JSON object; null, arrays and non-JSON are
// malformed.
func decodeObject(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return malformed("empty body")
	}
	if trimmed[0] != '{' {
		return malformed("body is not a JSON object (%d bytes)", len(body))
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return malformed("body does not decode (%v)", err)
	}
	return nil
}

// parsePublicKey reads one RSA-2048, e=65537 public key from PEM text and
// returns it with its canonical PKIX DER, or a problem phrased to follow
// "the key ..." that never quotes the key material.
func parsePublicKey(text string) (*rsa.PublicKey, []byte, string) {
	s := strings.TrimSpace(text)
	if s == "" {
		return nil, nil, "is blank"
	}
	if !strings.Contains(s, "\n") && strings.Contains(s, `\n`) {
		// JSON escaping applied twice somewhere on the way.
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	if strings.Contains(s, "PRIVATE KEY") {
		return nil, nil, "contains a PRIVATE key; only the public half may leave the secret (derive it with `openssl pkey -pubout`)"
	}
	var der []byte
	block, rest := pem.Decode([]byte(s))
	switch {
	case block == nil:
		d, ok := singleLinePEM(s)
		if !ok {
			return nil, nil, "is not PEM (no -----BEGIN PUBLIC KEY----- block)"
		}
		der = d
	case !strings.HasPrefix(s, "-----BEGIN "):
		return nil, nil, "has text before the PEM block"
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, nil, "has text after the PEM block (more than one block?)"
	case len(block.Headers) != 0:
		return nil, nil, "has PEM headers (is it encrypted?)"
	case block.Type == "PUBLIC KEY":
		der = block.Bytes
	case block.Type == "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Sprintf("is not a valid PKCS#1 RSA public key (%v)", err)
		}
		if der, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, nil, fmt.Sprintf("cannot be re-encoded as PKIX (%v)", err)
		}
	default:
		return nil, nil, fmt.Sprintf("has PEM type %q, not \"PUBLIC KEY\"", clip(block.Type, 40))
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, fmt.Sprintf("is not a valid PKIX public key (%v)", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, nil, "is " + keyKind(key) + ", not RSA"
	}
	if bits := pub.N.BitLen(); bits != keyBits {
		return nil, nil, fmt.Sprintf("is a %d-bit RSA key; Flows needs %d bits", bits, keyBits)
	}
	if pub.E != keyExponent {
		return nil, nil, fmt.Sprintf("has public exponent %d; Flows needs %d", pub.E, keyExponent)
	}
	canonical, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Sprintf("cannot be re-encoded as PKIX (%v)", err)
	}
	return pub, canonical, ""
}

// singleLinePEM reads a PUBLIC KEY PEM whose line breaks were lost, as
// "-----BEGIN PUBLIC KEY-----MIIB...-----END PUBLIC KEY-----".
func singleLinePEM(s string) ([]byte, bool) {
	const begin, end = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
	if !strings.HasPrefix(s, begin) || !strings.HasSuffix(s, end) || len(s) < len(begin)+len(end) {
		return nil, false
	}
	body := strings.Join(strings.Fields(s[len(begin):len(s)-len(end)]), "")
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(der) == 0 {
		return nil, false
	}
	return der, true
}

func keyKind(key any) string {
	switch key.(type) {
	case *ecdsa.PublicKey:
		return "an ECDSA key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	default:
		return fmt.Sprintf("a %T key", key)
	}
}
