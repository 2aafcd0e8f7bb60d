package flowcrypto

import (
	"testing"

	"github.com/flowkey/flowkey/internal/fake/flowclient"
)

// BenchmarkEnvelopeOpenSeal is the envelope's share of a request: decode,
// AES-GCM open, seal the answer, base64.
func BenchmarkEnvelopeOpenSeal(b *testing.B) {
	req, err := flowclient.Encrypt(&testKey().PublicKey, []byte(`{"version":"3.0","action":"data_exchange","screen":"FORM","flow_token":"tok","data":{"name":"Ana"}}`))
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`{"screen":"NEXT","data":{"greeting":"Hello Ana"}}`)
	for b.Loop() {
		env, err := ParseEnvelope(req.Body)
		if err != nil {
			b.Fatal(err)
		}
		s, err := NewSession(req.AESKey, env.IV)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Open(env.EncryptedFlowData); err != nil {
			b.Fatal(err)
		}
		_ = s.SealBase64(answer)
	}
}
