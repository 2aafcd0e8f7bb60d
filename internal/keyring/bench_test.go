package keyring_test

import (
	"context"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
)

// BenchmarkDecryptSteadyState is a warm ring of three keys whose traffic
// all goes to one: one RSA operation per call, and the ring's bookkeeping.
func BenchmarkDecryptSteadyState(b *testing.B) {
	f := newFixture(b)
	p := pairs()
	f.put("v1", p[0], secretsfake.StagePrevious)
	f.put("v2", p[1], secretsfake.StageCurrent)
	f.put("v3", p[2], secretsfake.StagePending)
	blk := block(b, p[1])
	ctx := context.Background()
	ops := 0
	for b.Loop() {
		res, err := f.ring.Decrypt(ctx, blk)
		if err != nil || res.Label != keyring.LabelCurrent {
			b.Fatal(err)
		}
		ops += res.RSAOps
	}
	b.ReportMetric(float64(ops)/float64(b.N), "rsa-ops/op")
}

// BenchmarkPairDecryptOAEP is the one RSA operation alone, for comparison.
func BenchmarkPairDecryptOAEP(b *testing.B) {
	p := pairs()[1]
	blk := block(b, p)
	for b.Loop() {
		if _, err := p.DecryptOAEP(blk); err != nil {
			b.Fatal(err)
		}
	}
}
