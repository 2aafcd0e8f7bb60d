package keypair

import (
	"crypto/rand"
	"testing"
)

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		if _, err := Generate(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePrivatePEM(b *testing.B) {
	pemText := testFixtures().pemA
	for b.Loop() {
		if _, err := ParsePrivatePEM("key.private_key_pem", pemText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProveDecrypt(b *testing.B) {
	p := testFixtures().pairA
	for b.Loop() {
		if err := p.ProveDecrypt(rand.Reader, p.Public()); err != nil {
			b.Fatal(err)
		}
	}
}
