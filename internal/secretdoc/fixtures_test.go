package secretdoc

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
)

const testKMSKeyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

var testNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

type fixtures struct {
	a, b         *keypair.Pair
	smallPrivPEM string // RSA-1024 PKCS#8
	smallPubPEM  string
	smallFP      string
}

// testFixtures generates keys once per test binary.
var testFixtures = sync.OnceValue(func() *fixtures {
	gen := func() *keypair.Pair {
		p, err := keypair.Generate(rand.Reader)
		if err != nil {
			panic(err)
		}
		return p
	}
	f := &fixtures{a: gen(), b: gen()}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(small)
	if err != nil {
		panic(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if err != nil {
		panic(err)
	}
	f.smallPrivPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.smallPubPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	f.smallFP = keypair.FingerprintOf(pub).String()
	return f
})

// docMap is a valid document with key a, as generic JSON for mutation.
func docMap(t testing.TB) map[string]any {
	t.Helper()
	f := testFixtures()
	d := &Document{
		SchemaVersion: SchemaVersion,
		Config:        Config{PhoneNumberIDs: []string{"106540352242922", "106540352242923"}, AccessTokenSecretID: "flowkey/graph-token", GraphAPIVersion: "v24.0"},
		Key:           NewKey(&keypair.Generated{Pair: f.a, Method: keypair.MethodKMS, KMSKeyID: testKMSKeyARN}, testNow),
	}
	data, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// errorFields lists the Field of every *Error and *keypair.Error in err's tree.
func errorFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
			return
		case *Error:
			out = append(out, e.Field)
			return
		case *keypair.Error:
			out = append(out, e.Field)
			return
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// secretMaterial is every printable form of a pair's private key.
func secretMaterial(p *keypair.Pair) []string {
	body := pemBody(p.PrivatePEM())
	der, _ := base64.StdEncoding.DecodeString(body)
	return []string{body, base64.StdEncoding.EncodeToString(der[len(der)/2:]), pemBody(p.PublicPEM())}
}

func pemBody(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// assertNoFragment fails if any 12-character window of material appears in text.
func assertNoFragment(t testing.TB, text string, material ...string) {
	t.Helper()
	const window = 12
	for _, m := range material {
		for i := 0; i+window <= len(m); i++ {
			if frag := m[i : i+window]; strings.Contains(text, frag) {
				t.Fatalf("key material fragment %q leaked into %q", frag, text)
			}
		}
	}
	if strings.Contains(text, "-----BEGIN") {
		t.Fatalf("PEM armor leaked into %q", text)
	}
}

func isSecretdocOrKeypairError(err error) bool {
	var de *Error
	var ke *keypair.Error
	return errors.As(err, &de) || errors.As(err, &ke)
}
