package keystate

import (
	"bytes"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Keys are the keys of the secret's labelled versions. Each is nil when
// its label is absent, its version holds no key, or the version cannot be
// read.
type Keys struct {
	Current, Pending, Previous *secretdoc.Key
}

// Holder names the label whose key Meta holds in reg: AWSCURRENT, then
// AWSPENDING, then AWSPREVIOUS, the first whose key it is (one key can be
// under two labels: with RotateImmediately=false, Secrets Manager copies
// AWSCURRENT's value to AWSPENDING). It is "" when Meta holds no key
// flowkey can read, or one that no labelled version holds.
func (k Keys) Holder(reg *graph.Registration) string {
	for _, c := range []struct {
		label string
		key   *secretdoc.Key
	}{{StageCurrent, k.Current}, {StagePending, k.Pending}, {StagePrevious, k.Previous}} {
		if Holds(reg, c.key) {
			return c.label
		}
	}
	return ""
}

// Holds reports whether Meta holds key in reg: it returned a readable key
// whose PKIX DER is key's, byte for byte, whatever the key's custody. The
// signature status is not part of it; callers judge that. A nil key, or one
// that secretdoc did not validate (it has no public key), is held by nobody.
func Holds(reg *graph.Registration, key *secretdoc.Key) bool {
	if reg == nil || reg.PublicKey == nil || key == nil || key.PublicDER() == nil {
		return false
	}
	return bytes.Equal(key.PublicDER(), reg.PublicDER)
}

// HeldFingerprint is the fingerprint of the key Meta holds in reg; ok is
// false when it holds none, or one flowkey cannot read.
func HeldFingerprint(reg *graph.Registration) (fp keypair.Fingerprint, ok bool) {
	if reg == nil || reg.PublicKey == nil {
		return keypair.Fingerprint{}, false
	}
	return keypair.FingerprintOf(reg.PublicDER), true
}
