package waclient

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// PublicKey is a business public key as a client holds it.
type PublicKey struct {
	Key *rsa.PublicKey
	// Fingerprint is the hex SHA-256 of the PKIX DER, as graphsim and the
	// secret document name keys.
	Fingerprint string
}

// keyInfo is one answer of GET /{phone}/whatsapp_business_encryption.
type keyInfo struct {
	Key    string `json:"business_public_key"`
	Status string `json:"business_public_key_signature_status"`
}

// FetchKey reads a number's business public key from the Graph API at
// graphURL, as WhatsApp does before it encrypts. Both shapes of the answer
// are accepted: Graph's {"data":[{...}]} and the flat object of Meta's
// guide. A key Meta does not report VALID is refused.
func FetchKey(ctx context.Context, hc *http.Client, graphURL, version, token, phone string) (*PublicKey, error) {
	// Without fields, Graph answers with the signature status alone (Meta's
	// v23 reference example), as graphsim does.
	url := strings.TrimSuffix(graphURL, "/") + "/" + version + "/" + phone +
		"/whatsapp_business_encryption?fields=business_public_key,business_public_key_signature_status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET the key of %s: %w", phone, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET the key of %s: %w", phone, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET the key of %s: HTTP %d", phone, resp.StatusCode)
	}
	info, err := parseKeyAnswer(body)
	if err != nil {
		return nil, fmt.Errorf("GET the key of %s: %w", phone, err)
	}
	return parsePublicKey(info)
}

func parseKeyAnswer(body []byte) (keyInfo, error) {
	var wrapped struct {
		Data *[]keyInfo `json:"data"`
		keyInfo
	}
	if err := json.Unmarshal(body, &wrapped); err != nil {
		return keyInfo{}, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if wrapped.Data == nil {
		return wrapped.keyInfo, nil
	}
	if len(*wrapped.Data) == 0 {
		return keyInfo{}, errors.New("no key is registered for the number (data is empty)")
	}
	return (*wrapped.Data)[0], nil
}

// parsePublicKey refuses what no client could encrypt with: no key, a
// signature Meta reports as MISMATCH, anything but an RSA-2048 PKIX key.
func parsePublicKey(info keyInfo) (*PublicKey, error) {
	if info.Status != "" && info.Status != "VALID" {
		return nil, fmt.Errorf("the key's signature status is %s", info.Status)
	}
	block, _ := pem.Decode([]byte(info.Key))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("business_public_key is not a PEM PUBLIC KEY block")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("business_public_key: %w", err)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		return nil, errors.New("business_public_key is not an RSA-2048 key")
	}
	sum := sha256.Sum256(block.Bytes)
	return &PublicKey{Key: pub, Fingerprint: hex.EncodeToString(sum[:])}, nil
}
