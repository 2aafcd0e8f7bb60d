package secretdoc

import (
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/keypair"
)

// FuzzParse: Parse never panics, an accepted document survives Marshal and
// Parse unchanged, and no error quotes the fixture keys the seeds carry.
func FuzzParse(f *testing.F) {
	fx := testFixtures()
	valid := encode(f, docMap(f))
	f.Add(valid)
	f.Add([]byte(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`))
	f.Add([]byte(`{"schema_version":1,"config":{"waba_id":"1","include_phone_number_ids":["2"],"exclude_phone_number_ids":["3"]}}`))
	f.Add([]byte(`{"schema_version":2,"config":{}}`))
	f.Add(valid[:len(valid)/2])
	f.Add([]byte("flowkey-local-token"))
	f.Add([]byte(`{"schema_version":1,"config":{"waba_id":"1"},"x":nulL}`))
	m := docMap(f)
	key(m)["public_key_pem"] = fx.b.PublicPEM()
	f.Add(encode(f, m))
	m = docMap(f)
	key(m)["private_key_pem"] = strings.ReplaceAll(fx.a.PrivatePEM(), "\n", "\r\n")
	f.Add(encode(f, m))

	secret := windows(12, append(secretMaterial(fx.a), secretMaterial(fx.b)...)...)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			if d != nil {
				t.Fatal("returned a document with the error")
			}
			if !isSecretdocOrKeypairError(err) {
				t.Fatalf("error %v is neither *Error nor *keypair.Error", err)
			}
			msg := err.Error()
			// encoding/json's syntax errors quote the input's characters.
			if strings.Contains(msg, "invalid character") {
				t.Fatalf("error quotes a character of the value: %s", msg)
			}
			for i := 0; i+12 <= len(msg); i++ {
				if _, ok := secret[msg[i:i+12]]; ok {
					t.Fatalf("error quotes key material %q: %s", msg[i:i+12], msg)
				}
			}
			return
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("Parse accepted what Marshal refuses: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Marshal wrote what Parse refuses: %v", err)
		}
		if (d.Key == nil) != (again.Key == nil) || d.Key != nil && again.Key.Pair().Fingerprint() != d.Key.Pair().Fingerprint() {
			t.Fatal("key changed across Marshal/Parse")
		}
		if d.Key != nil && d.Key.Pair().Fingerprint() != fingerprintOf(d.Key) {
			t.Fatal("accepted a fingerprint that is not the key's")
		}
	})
}

func fingerprintOf(k *Key) keypair.Fingerprint {
	_, der, err := keypair.ParsePublicPEM("", k.PublicKeyPEM)
	if err != nil {
		return keypair.Fingerprint{}
	}
	return keypair.FingerprintOf(der)
}

func windows(n int, material ...string) map[string]struct{} {
	set := map[string]struct{}{}
	for _, m := range material {
		for i := 0; i+n <= len(m); i++ {
			set[m[i:i+n]] = struct{}{}
		}
	}
	return set
}
