package flowcrypto

import (
	"errors"
	"testing"
)

// FuzzParseEnvelope: any input is an *Error or an envelope of exact sizes.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(body(b64s(40), b64s(256), b64s(16))))
	f.Add([]byte(`{"initial_vector":"` + b64s(16) + `","initial_vector":1}`))
	f.Add([]byte(`{"encrypted_flow_data":"\u0041=="}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		env, err := ParseEnvelope(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || env != nil {
				t.Fatalf("error %T %v with envelope %v", err, err, env != nil)
			}
			return
		}
		if len(env.EncryptedAESKey) != RSABlockSize || len(env.EncryptedFlowData) < TagSize {
			t.Fatalf("accepted sizes %d/%d", len(env.EncryptedAESKey), len(env.EncryptedFlowData))
		}
	})
}
