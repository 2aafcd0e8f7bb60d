package keystate

import (
	"context"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// keyOf is p's key as a parsed version holds it.
func keyOf(p *keypair.Pair) *secretdoc.Key {
	return secretdoc.NewKey(&keypair.Generated{Pair: p, Method: keypair.MethodCrypto}, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
}

// registration is what graphfake returns for a number holding pemText
// with status.
func registration(t *testing.T, pemText, status string) *graph.Registration {
	t.Helper()
	g := graphfake.New()
	g.Set(phones[0], pemText, status)
	reg, err := g.GetPublicKey(context.Background(), graph.Auth{}, phones[0])
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestHolder(t *testing.T) {
	cur, pend, prev := keyOf(pairs[0]), keyOf(pairs[1]), keyOf(pairs[2])
	all := Keys{Current: cur, Pending: pend, Previous: prev}
	tests := []struct {
		name string
		keys Keys
		held string // the PEM Meta holds
		want string
	}{
		{"current", all, pairs[0].PublicPEM(), StageCurrent},
		{"pending", all, pairs[1].PublicPEM(), StagePending},
		{"previous", all, pairs[2].PublicPEM(), StagePrevious},
		{"a key no version holds", all, pairs[3].PublicPEM(), ""},
		{"no key", all, " ", ""},
		{"an unreadable key", all, "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n", ""},
		{"AWSCURRENT before AWSPENDING", Keys{Current: cur, Pending: keyOf(pairs[0])}, pairs[0].PublicPEM(), StageCurrent},
		{"AWSPENDING before AWSPREVIOUS", Keys{Pending: pend, Previous: keyOf(pairs[1])}, pairs[1].PublicPEM(), StagePending},
		{"AWSCURRENT before AWSPREVIOUS", Keys{Current: cur, Previous: keyOf(pairs[0])}, pairs[0].PublicPEM(), StageCurrent},
		{"labels without keys", Keys{}, pairs[0].PublicPEM(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The signature status does not change which key Meta holds.
			for _, status := range []string{graph.StatusValid, graph.StatusMismatch, ""} {
				if got := tc.keys.Holder(registration(t, tc.held, status)); got != tc.want {
					t.Errorf("status %q: Holder = %q, want %q", status, got, tc.want)
				}
			}
		})
	}
	if got := all.Holder(nil); got != "" {
		t.Errorf("nil registration: Holder = %q", got)
	}
}

func TestHolds(t *testing.T) {
	valid := registration(t, pairs[0].PublicPEM(), graph.StatusValid)
	k := keyOf(pairs[0])
	// The same key's fields without its pair, as a Key literal has them.
	unpaired := &secretdoc.Key{PublicKeyPEM: k.PublicKeyPEM, FingerprintSHA256: k.FingerprintSHA256}
	tests := []struct {
		name string
		reg  *graph.Registration
		key  *secretdoc.Key
		want bool
	}{
		{"the same key", valid, keyOf(pairs[0]), true},
		{"the same key, MISMATCH", registration(t, pairs[0].PublicPEM(), graph.StatusMismatch), keyOf(pairs[0]), true},
		{"another key", valid, keyOf(pairs[1]), false},
		{"no key at Meta", registration(t, " ", graph.StatusMismatch), keyOf(pairs[0]), false},
		{"no key in the version", valid, nil, false},
		{"a key that was not parsed", valid, unpaired, false},
		{"no registration", nil, keyOf(pairs[0]), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Holds(tc.reg, tc.key); got != tc.want {
				t.Errorf("Holds = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHeldFingerprint(t *testing.T) {
	tests := []struct {
		name string
		reg  *graph.Registration
		want keypair.Fingerprint
		ok   bool
	}{
		{"a key", registration(t, pairs[2].PublicPEM(), graph.StatusValid), pairs[2].Fingerprint(), true},
		{"no key", registration(t, " ", graph.StatusMismatch), keypair.Fingerprint{}, false},
		{"an unreadable key", registration(t, "garbage", graph.StatusValid), keypair.Fingerprint{}, false},
		{"no registration", nil, keypair.Fingerprint{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := HeldFingerprint(tc.reg); got != tc.want || ok != tc.ok {
				t.Errorf("got %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestHoldsAKMSHeldKey: a key whose private half is in KMS is held when
// Meta holds its public key, exactly as a PEM-held one.
func TestHoldsAKMSHeldKey(t *testing.T) {
	k, err := secretdoc.NewKMSKey("arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", pairs[1].PublicDER(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !Holds(registration(t, pairs[1].PublicPEM(), graph.StatusValid), k) || Holds(registration(t, pairs[0].PublicPEM(), graph.StatusValid), k) {
		t.Error("Holds does not judge a KMS-held key by its public key")
	}
	if got := (Keys{Current: keyOf(pairs[0]), Previous: k}).Holder(registration(t, pairs[1].PublicPEM(), graph.StatusValid)); got != StagePrevious {
		t.Errorf("Holder = %q, want AWSPREVIOUS", got)
	}
}
