package keypair

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

func TestErrorRendering(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Field: "f", Problem: "is bad", Fix: "do x"}, "f: is bad; fix: do x"},
		{&Error{Field: "f", Problem: "is bad"}, "f: is bad"},
		{&Error{Field: "f", Problem: "is bad", Fix: "do x", Err: cause}, "f: is bad; fix: do x"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if !errors.Is(tests[2].err, cause) {
		t.Error("Unwrap does not expose Err")
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	p, err := Generate(nil) // nil means crypto/rand; LocalGenerator covers rand.Reader
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Public().N.BitLen(); got != Bits {
		t.Fatalf("bits = %d", got)
	}
	if p.Public().E != PublicExponent {
		t.Fatalf("e = %d", p.Public().E)
	}
	priv := p.PrivatePEM()
	if !strings.HasPrefix(priv, "-----BEGIN PRIVATE KEY-----\n") || !strings.HasSuffix(priv, "-----END PRIVATE KEY-----\n") {
		t.Fatalf("PrivatePEM is not PKCS#8 PEM: first line %q", strings.SplitN(priv, "\n", 2)[0])
	}
	pub := p.PublicPEM()
	if !strings.HasPrefix(pub, "-----BEGIN PUBLIC KEY-----\n") || !strings.HasSuffix(pub, "-----END PUBLIC KEY-----\n") {
		t.Fatalf("PublicPEM is not PKIX PEM: first line %q", strings.SplitN(pub, "\n", 2)[0])
	}

	// What other readers see: stdlib parsers, independent of this package.
	block, _ := pem.Decode([]byte(priv))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("stdlib cannot read PrivatePEM: %v", err)
	}
	if !k.(*rsa.PrivateKey).PublicKey.Equal(p.Public()) {
		t.Fatal("PrivatePEM holds another key")
	}
	block, _ = pem.Decode([]byte(pub))
	if !bytes.Equal(block.Bytes, p.PublicDER()) {
		t.Fatal("PublicPEM body is not PublicDER")
	}

	back, err := ParsePrivatePEM("private", priv)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != p.Fingerprint() {
		t.Fatal("fingerprint changed across PrivatePEM/ParsePrivatePEM")
	}
	gotPub, der, err := ParsePublicPEM("public", pub)
	if err != nil {
		t.Fatal(err)
	}
	if !gotPub.Equal(p.Public()) || !p.MatchesPublicDER(der) {
		t.Fatal("ParsePublicPEM(PublicPEM()) is not the pair's public key")
	}
	if err := p.ProveDecrypt(rand.Reader, gotPub); err != nil {
		t.Fatal(err)
	}
}

func TestFingerprint(t *testing.T) {
	f := testFixtures()
	fp := f.pairA.Fingerprint()
	want := sha256.Sum256(f.pkixA)
	if fp != Fingerprint(want) || FingerprintOf(f.pkixA) != fp {
		t.Fatal("fingerprint is not SHA-256 of the PKIX DER")
	}
	if s := fp.String(); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(s) || s != hex.EncodeToString(want[:]) {
		t.Fatalf("String() = %q", s)
	}
	if fp.Short() != fp.String()[:16] {
		t.Fatalf("Short() = %q", fp.Short())
	}
	if f.pairA.Fingerprint() == f.pairB.Fingerprint() {
		t.Fatal("two keys share a fingerprint")
	}
}

func TestMatchesPublicDER(t *testing.T) {
	f := testFixtures()
	if !f.pairA.MatchesPublicDER(f.pkixA) {
		t.Error("own DER does not match")
	}
	if f.pairA.MatchesPublicDER(f.pairB.PublicDER()) {
		t.Error("other key's DER matches")
	}
	if f.pairA.MatchesPublicDER(nil) {
		t.Error("nil matches")
	}
}

func TestPairNeverPrintsPrivateKey(t *testing.T) {
	f := testFixtures()
	p := f.pairA
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("pair", "pair", p, "any", any(p))
	js, err := json.Marshal(map[string]any{"p": p})
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s", p, p, p, p) + logs.String() + string(js)
	if !strings.Contains(out, p.Fingerprint().Short()) {
		t.Fatalf("fingerprint missing from %q", out)
	}
	assertNoFragment(t, out, secretForms(f.a, f.pkcs8A)...)
}

func TestParsePrivatePEMAccepts(t *testing.T) {
	f := testFixtures()
	tests := map[string]string{
		"PKCS#8":            f.pemA,
		"CRLF line endings": strings.ReplaceAll(f.pemA, "\n", "\r\n"),
		"surrounding space": "\n\n  " + f.pemA + "\n\t \n",
		"no final newline":  strings.TrimSuffix(f.pemA, "\n"),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePrivatePEM("key.private_key_pem", in)
			if err != nil {
				t.Fatal(err)
			}
			if p.Fingerprint() != f.pairA.Fingerprint() {
				t.Fatal("parsed another key")
			}
			if p.PrivatePEM() != f.pairA.PrivatePEM() {
				t.Fatal("PrivatePEM is not normalised to PKCS#8")
			}
		})
	}
}

// TestParsePrivatePEMRejects feeds broken variants of a real key and checks
// the error names the field and the problem and quotes nothing of the key.
func TestParsePrivatePEMRejects(t *testing.T) {
	f := testFixtures()
	const field = "key.private_key_pem"
	body := pemBody(f.pemA)

	flipped := bytes.Clone(f.pkcs8A)
	flipped[len(flipped)/2] ^= 0xff
	badDDER := rawPKCS8(t, f.a, func(k *rawRSAPrivateKey) { k.D.Add(k.D, big.NewInt(2)) })
	badQinvDER := rawPKCS8(t, f.a, func(k *rawRSAPrivateKey) { k.Qinv.Add(k.Qinv, big.NewInt(1)) })
	pkcs1 := x509.MarshalPKCS1PrivateKey(f.a)
	encPKCS1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: pkcs1}))
	withHeader := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Comment": "mine"}, Bytes: f.pkcs8A}))
	middle := len(f.pemA) / 2

	tests := []struct {
		name, in, want string
		fixWant        string
	}{
		{"empty", "", "is empty", ""},
		{"blank", " \n\t", "is empty", ""},
		{"bare base64", body, "is not PEM", ""},
		{"END missing", f.pemA[:strings.Index(f.pemA, "-----END")], "not a well-formed PEM block", ""},
		{"truncated mid-body", f.pemA[:middle], "not a well-formed PEM block", ""},
		{"bad base64 character", f.pemA[:middle] + "!" + f.pemA[middle+1:], "not a well-formed PEM block", ""},
		{"two blocks", f.pemA + f.pemA, "holds 2 PEM blocks, expected exactly one", ""},
		{"private then public", f.pemA + f.pubPEMA, "holds 2 PEM blocks", ""},
		{"trailing garbage", f.pemA + "garbage", "trailing data after the -----END line", ""},
		{"leading garbage", "key:\n" + f.pemA, "text before the -----BEGIN line", ""},
		{"public key", f.pubPEMA, `is a PEM block of type "PUBLIC KEY", expected "PRIVATE KEY"`, ""},
		{"certificate label", pemOf("CERTIFICATE", f.pkixA), `is a PEM block of type "CERTIFICATE"`, ""},
		{"EC label", pemOf("EC PRIVATE KEY", f.pkcs8EC), "this is an EC key", ""},
		{"encrypted PKCS#8", pemOf("ENCRYPTED PRIVATE KEY", f.pkcs8A), "encrypted", "export it unencrypted with `openssl pkcs8 -topk8 -nocrypt`"},
		{"encrypted PKCS#1", encPKCS1, "encrypted", "export it unencrypted with `openssl pkcs8 -topk8 -nocrypt`"},
		{"other header", withHeader, `has PEM header lines Comment, which PEM blocks of type "PRIVATE KEY" do not have`, ""},
		{"flipped DER byte", pemOf("PRIVATE KEY", flipped), "", ""},
		{"truncated DER", pemOf("PRIVATE KEY", f.pkcs8A[:len(f.pkcs8A)-40]), "not a valid PKCS#8 private key", ""},
		{"trailing DER", pemOf("PRIVATE KEY", append(bytes.Clone(f.pkcs8A), 0)), "not a valid PKCS#8 private key", ""},
		{"PKCS#1 labelled PKCS#8", pemOf("PRIVATE KEY", pkcs1), "PKCS#1 RSA private key where PKCS#8 is expected", ""},
		// PKCS#8 is the one format: a PKCS#1 key gets the command that converts it.
		{"PKCS#1", pemOf("RSA PRIVATE KEY", pkcs1), `is a PKCS#1 RSA private key ("RSA PRIVATE KEY"); the document holds PKCS#8 ("PRIVATE KEY")`,
			"convert it with `openssl pkcs8 -topk8 -nocrypt -in rsa.pem -out private.pem`"},
		{"PKCS#8 labelled PKCS#1", pemOf("RSA PRIVATE KEY", f.pkcs8A), "is a PKCS#1 RSA private key", "openssl pkcs8 -topk8 -nocrypt"},
		{"inconsistent private exponent", pemOf("PRIVATE KEY", badDDER), "", ""},
		{"inconsistent CRT coefficient", pemOf("PRIVATE KEY", badQinvDER), "", ""},
		{"RSA-1024", pemOf("PRIVATE KEY", f.pkcs8Sm), "is RSA-1024, must be RSA-2048", ""},
		{"ECDSA P-256", pemOf("PRIVATE KEY", f.pkcs8EC), "is an ECDSA P-256 key, must be RSA-2048", ""},
		{"Ed25519", pemOf("PRIVATE KEY", f.pkcs8Ed), "is an Ed25519 key, must be RSA-2048", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrivatePEM(field, tt.in)
			if p != nil {
				t.Fatal("returned a pair with the error")
			}
			e := asError(t, err)
			if e.Field != field {
				t.Errorf("Field = %q, want %q", e.Field, field)
			}
			if !strings.HasPrefix(err.Error(), field+": ") || !strings.Contains(err.Error(), "; fix: ") {
				t.Errorf("error %q is not rendered as <field>: <problem>; fix: <fix>", err)
			}
			if !strings.Contains(e.Problem, tt.want) {
				t.Errorf("Problem = %q, want it to contain %q", e.Problem, tt.want)
			}
			if !strings.Contains(e.Fix, tt.fixWant) {
				t.Errorf("Fix = %q, want it to contain %q", e.Fix, tt.fixWant)
			}
			assertNoFragment(t, err.Error(), append(secretForms(f.a, f.pkcs8A), pemBody(tt.in), base64.StdEncoding.EncodeToString(flipped))...)
		})
	}
}

func TestParsePublicPEM(t *testing.T) {
	f := testFixtures()
	const field = "key.public_key_pem"
	pub, der, err := ParsePublicPEM(field, f.pubPEMA)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&f.a.PublicKey) || !bytes.Equal(der, f.pkixA) {
		t.Fatal("wrong key or DER")
	}

	tests := []struct {
		name, in, want, fixWant string
	}{
		{"empty", "", "is empty", ""},
		{"not PEM", "hello", "is not PEM", ""},
		{"two blocks", f.pubPEMA + f.pubPEMA, "holds 2 PEM blocks", ""},
		{"trailing garbage", f.pubPEMA + "x", "trailing data", ""},
		{"PKCS#1 label", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&f.a.PublicKey)), `is a PEM block of type "RSA PUBLIC KEY", expected "PUBLIC KEY" (PKCS#1)`, "-RSAPublicKey_in"},
		{"PKCS#1 body in PKIX label", pemOf("PUBLIC KEY", x509.MarshalPKCS1PublicKey(&f.a.PublicKey)), "PKCS#1 RSAPublicKey", "-RSAPublicKey_in"},
		{"certificate", pemOf("CERTIFICATE", f.pkixA), `is a PEM block of type "CERTIFICATE"`, "openssl x509 -pubkey"},
		{"private key", f.pemA, "private key in the public key field", "-pubout"},
		{"header", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"X": "y"}, Bytes: f.pkixA})), "has PEM header lines (unrecognised)", ""},
		{"garbage DER", pemOf("PUBLIC KEY", []byte("not der at all")), "is not a PKIX SubjectPublicKeyInfo", ""},
		{"RSA-1024", pemOf("PUBLIC KEY", f.pkixSm), "is RSA-1024, must be RSA-2048", ""},
		{"e=3", pemOf("PUBLIC KEY", f.pkixExp3), "has public exponent 3, must be 65537", ""},
		{"ECDSA P-256", pemOf("PUBLIC KEY", f.pkixEC), "is an ECDSA P-256 key, must be RSA-2048", ""},
		{"label copied from the private key", pemOf(pemBody(f.pemA)[200:230], f.pkixA), "is a PEM block of an unrecognised type (30 characters)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, der, err := ParsePublicPEM(field, tt.in)
			if pub != nil || der != nil {
				t.Fatal("returned a key with the error")
			}
			e := asError(t, err)
			if e.Field != field {
				t.Errorf("Field = %q", e.Field)
			}
			if !strings.Contains(e.Problem, tt.want) || !strings.Contains(e.Fix, tt.fixWant) {
				t.Errorf("error = %q, want problem %q and fix %q", err, tt.want, tt.fixWant)
			}
			assertNoFragment(t, err.Error(), append(secretForms(f.a, f.pkcs8A), pemBody(tt.in))...)
		})
	}
}

func TestParsePublicDER(t *testing.T) {
	f := testFixtures()
	if _, err := ParsePublicDER("pub", f.pkixA); err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{"nil": nil, "empty": {}, "garbage": {0x30, 0x03, 1, 2, 3}, "1024": f.pkixSm} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePublicDER("pub", der)
			if e := asError(t, err); e.Field != "pub" {
				t.Fatalf("Field = %q", e.Field)
			}
		})
	}
}

func TestFromPKCS8(t *testing.T) {
	f := testFixtures()
	p, err := FromPKCS8("der", f.pkcs8A)
	if err != nil {
		t.Fatal(err)
	}
	if p.Fingerprint() != f.pairA.Fingerprint() {
		t.Fatal("wrong key")
	}
	for name, tt := range map[string]struct {
		der  []byte
		want string
	}{
		"empty":   {nil, "is empty"},
		"garbage": {[]byte("garbage"), "not a valid PKCS#8"},
		"EC":      {f.pkcs8EC, "ECDSA P-256"},
		"1024":    {f.pkcs8Sm, "RSA-1024"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := FromPKCS8("der", tt.der)
			e := asError(t, err)
			if e.Field != "der" || !strings.Contains(e.Problem, tt.want) {
				t.Fatalf("error = %q, want %q", err, tt.want)
			}
			assertNoFragment(t, err.Error(), secretForms(nil, tt.der)...)
		})
	}
}

func TestFromPrivateKeyRejects(t *testing.T) {
	f := testFixtures()
	clone := func(k *rsa.PrivateKey) *rsa.PrivateKey {
		return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}, D: new(big.Int).Set(k.D),
			Primes: []*big.Int{new(big.Int).Set(k.Primes[0]), new(big.Int).Set(k.Primes[1])}}
	}
	badD := clone(f.a)
	badD.D.Add(badD.D, big.NewInt(2))
	swappedN := clone(f.a)
	swappedN.N = new(big.Int).Set(f.b.N) // public half of another key
	noD := clone(f.a)
	noD.D = nil
	onePrime := clone(f.a)
	onePrime.Primes = onePrime.Primes[:1]
	//lint:ignore SA1019 a multi-prime key is exactly the legacy input under test
	multi, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		key  *rsa.PrivateKey
		want string
	}{
		{"nil", nil, "is missing"},
		{"no modulus", &rsa.PrivateKey{}, "has no RSA modulus"},
		{"RSA-1024", f.small, "is RSA-1024, must be RSA-2048"},
		{"e=3", f.exp3, "has public exponent 3, must be 65537"},
		{"no private exponent", noD, "has no private exponent"},
		{"one prime", onePrime, "has 1 prime factors, must have 2"},
		{"three primes", multi, "has 3 prime factors, must have 2"},
		{"inconsistent private exponent", badD, "is not a consistent RSA private key"},
		{"public half of another key", swappedN, "is not a consistent RSA private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromPrivateKey("k", tt.key)
			if p != nil {
				t.Fatal("returned a pair with the error")
			}
			e := asError(t, err)
			if e.Field != "k" || !strings.Contains(e.Problem, tt.want) {
				t.Fatalf("error = %q, want %q", err, tt.want)
			}
			if tt.key != nil && tt.key.N != nil && tt.key.D != nil && len(tt.key.Primes) > 0 {
				assertNoFragment(t, err.Error(), secretForms(tt.key, nil)...)
			}
		})
	}
}

// rawRSAPrivateKey is PKCS#1 RSAPrivateKey. crypto/x509 refuses to marshal
// inconsistent keys, so tests that need one encode it by hand.
type rawRSAPrivateKey struct {
	Version               int
	N                     *big.Int
	E                     int
	D, P, Q, Dp, Dq, Qinv *big.Int
}

func rawPKCS8(t *testing.T, k *rsa.PrivateKey, mutate func(*rawRSAPrivateKey)) []byte {
	t.Helper()
	c := func(x *big.Int) *big.Int { return new(big.Int).Set(x) }
	raw := rawRSAPrivateKey{N: c(k.N), E: k.E, D: c(k.D), P: c(k.Primes[0]), Q: c(k.Primes[1]),
		Dp: c(k.Precomputed.Dp), Dq: c(k.Precomputed.Dq), Qinv: c(k.Precomputed.Qinv)}
	mutate(&raw)
	pkcs1, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{Algo: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, Parameters: asn1.NullRawValue}, PrivateKey: pkcs1})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy gone") }

func TestProveDecrypt(t *testing.T) {
	f := testFixtures()
	if err := f.pairA.ProveDecrypt(rand.Reader, &f.a.PublicKey); err != nil {
		t.Fatalf("own public key: %v", err)
	}
	tests := []struct {
		name   string
		random io.Reader
		pub    *rsa.PublicKey
		want   string
	}{
		{"another key's public", rand.Reader, &f.b.PublicKey, "does not belong to private key " + f.pairA.Fingerprint().Short()},
		{"1024-bit public", rand.Reader, &f.small.PublicKey, "does not belong"},
		{"nil public", rand.Reader, nil, "is missing"},
		{"failing random", failingReader{}, &f.a.PublicKey, "entropy gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.pairA.ProveDecrypt(tt.random, tt.pub)
			e := asError(t, err)
			if !strings.Contains(e.Problem, tt.want) {
				t.Fatalf("error = %q, want %q", err, tt.want)
			}
			assertNoFragment(t, err.Error(), secretForms(f.a, f.pkcs8A)...)
		})
	}
}

func TestNilInputsDoNotPanic(t *testing.T) {
	f := testFixtures()
	if err := f.pairA.ProveDecrypt(nil, &f.a.PublicKey); err != nil {
		t.Fatalf("nil random should mean crypto/rand: %v", err)
	}
	var nilPair *Pair
	if e := asError(t, nilPair.ProveDecrypt(rand.Reader, &f.a.PublicKey)); e.Field != "key pair" {
		t.Fatalf("Field = %q", e.Field)
	}
	if e := asError(t, (&Pair{}).ProveDecrypt(rand.Reader, &f.a.PublicKey)); e.Field != "key pair" {
		t.Fatalf("Field = %q", e.Field)
	}
	if e := asError(t, f.pairA.ProveDecrypt(rand.Reader, &rsa.PublicKey{})); e.Field != "public key" {
		t.Fatalf("Field = %q", e.Field)
	}
}

func TestFromPrivateKeyDoesNotAliasCallerDER(t *testing.T) {
	f := testFixtures()
	der := bytes.Clone(f.pkcs8A)
	p, err := FromPKCS8("der", der)
	if err != nil {
		t.Fatal(err)
	}
	clear(der)
	if err := p.ProveDecrypt(rand.Reader, &f.a.PublicKey); err != nil {
		t.Fatalf("pair depends on the caller's buffer: %v", err)
	}
	if p.PrivatePEM() != f.pemA {
		t.Fatal("PrivatePEM changed after the caller zeroed its buffer")
	}
}
