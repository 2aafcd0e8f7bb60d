package keypair

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
)

// fixtures are generated once per test binary: RSA generation dominates
// the run time otherwise.
type fixtures struct {
	a, b     *rsa.PrivateKey // two good RSA-2048 keys
	small    *rsa.PrivateKey // RSA-1024
	ec       *ecdsa.PrivateKey
	ed       ed25519.PrivateKey
	exp3     *rsa.PrivateKey // RSA-2048 with e=3
	pairA    *Pair
	pairB    *Pair
	pemA     string // PKCS#8 PEM of a
	pubPEMA  string
	pkcs8A   []byte
	pkixA    []byte
	pkcs8Sm  []byte
	pkixSm   []byte
	pkcs8EC  []byte
	pkixEC   []byte
	pkcs8Ed  []byte
	pkixExp3 []byte
}

var testFixtures = sync.OnceValue(func() *fixtures {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	f := &fixtures{}
	var err error
	f.a, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.b, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.small, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, f.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	f.exp3 = exponent3Key()

	f.pkcs8A, err = x509.MarshalPKCS8PrivateKey(f.a)
	must(err)
	f.pkixA, err = x509.MarshalPKIXPublicKey(&f.a.PublicKey)
	must(err)
	f.pkcs8Sm, err = x509.MarshalPKCS8PrivateKey(f.small)
	must(err)
	f.pkixSm, err = x509.MarshalPKIXPublicKey(&f.small.PublicKey)
	must(err)
	f.pkcs8EC, err = x509.MarshalPKCS8PrivateKey(f.ec)
	must(err)
	f.pkixEC, err = x509.MarshalPKIXPublicKey(&f.ec.PublicKey)
	must(err)
	f.pkcs8Ed, err = x509.MarshalPKCS8PrivateKey(f.ed)
	must(err)
	f.pkixExp3, err = x509.MarshalPKIXPublicKey(&f.exp3.PublicKey)
	must(err)
	f.pemA = pemOf("PRIVATE KEY", f.pkcs8A)
	f.pubPEMA = pemOf("PUBLIC KEY", f.pkixA)

	f.pairA, err = FromPrivateKey("a", f.a)
	must(err)
	f.pairB, err = FromPrivateKey("b", f.b)
	must(err)
	return f
})

// exponent3Key builds a 2048-bit RSA key with e=3, which crypto/rsa will not
// generate, to prove the exponent check is independent of the size check.
func exponent3Key() *rsa.PrivateKey {
	three := big.NewInt(3)
	prime := func() *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			if new(big.Int).Mod(p, three).Int64() == 2 {
				return p
			}
		}
	}
	p, q := prime(), prime()
	for p.Cmp(q) == 0 {
		q = prime()
	}
	n := new(big.Int).Mul(p, q)
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(three, phi)
	return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: d, Primes: []*big.Int{p, q}}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// pemBody is the base64 between the armor lines, joined.
func pemBody(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") || strings.Contains(line, ":") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// secretForms is every printable form key material could leak in.
func secretForms(key *rsa.PrivateKey, pkcs8 []byte) []string {
	forms := []string{
		base64.StdEncoding.EncodeToString(pkcs8),
		hex.EncodeToString(pkcs8),
	}
	if key != nil {
		pkix, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		forms = append(forms,
			base64.StdEncoding.EncodeToString(pkix),
			key.N.String(), key.N.Text(16), key.D.String(), key.D.Text(16),
			key.Primes[0].String(), key.Primes[0].Text(16))
	}
	return forms
}

// assertNoFragment fails if any 12-character window of any material
// appears in text. 12 base64 characters are 72 bits: no English message
// matches one by chance.
func assertNoFragment(t *testing.T, text string, material ...string) {
	t.Helper()
	const window = 12
	for _, m := range material {
		for i := 0; i+window <= len(m); i++ {
			if frag := m[i : i+window]; strings.Contains(text, frag) {
				t.Fatalf("key material fragment %q leaked into %q", frag, text)
			}
		}
	}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got nil")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *keypair.Error", err, err)
	}
	if e.Problem == "" || e.Fix == "" {
		t.Fatalf("error %q lacks a problem or a fix", err)
	}
	return e
}
