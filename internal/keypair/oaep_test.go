package keypair

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestDecryptOAEP(t *testing.T) {
	f := testFixtures()
	aesKey := []byte("0123456789abcdef")
	good, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, f.pairA.Public(), aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.pairA.DecryptOAEP(good)
	if err != nil || string(got) != string(aesKey) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	sha1Block, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, f.pairA.Public(), aesKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	labelled, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, f.pairA.Public(), aesKey, []byte("label"))
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string][]byte{
		"another key":     mustEncrypt(t, f.pairB.Public(), aesKey),
		"SHA-1 OAEP":      sha1Block,
		"non-empty label": labelled,
		"short":           good[:255],
		"empty":           nil,
		"long":            append(append([]byte{}, good...), 0),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := f.pairA.DecryptOAEP(block)
			if !errors.Is(err, rsa.ErrDecryption) || out != nil {
				t.Fatalf("got %d bytes, %v; want rsa.ErrDecryption", len(out), err)
			}
		})
	}
	var nilPair *Pair
	if _, err := nilPair.DecryptOAEP(good); !errors.Is(err, rsa.ErrDecryption) {
		t.Fatalf("nil pair: %v", err)
	}
}

func mustEncrypt(t *testing.T, pub *rsa.PublicKey, msg []byte) []byte {
	t.Helper()
	out, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
