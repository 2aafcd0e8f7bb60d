package rotation

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// errNoCustody is a KMS-held key in a function built without a KMS client.
var errNoCustody = errors.New("this function has no KMS client for KMS custody keys; fix: build the rotator with one (functions/rotator always does)")

// newKMSKey finds or creates the version's KMS custody key (see
// internal/custody, "One key per rotation") and records it. The KMS calls
// may use all but the report's share of the invocation.
func (r *Rotator) newKMSKey(ctx context.Context, inv *invocation) (*secretdoc.Key, error) {
	if r.opts.Custody == nil {
		return nil, errNoCustody
	}
	if err := r.opts.Custody.CanCreate(); err != nil {
		return nil, err
	}
	arn, token := inv.secret.ARN, inv.ev.ClientRequestToken
	kctx, cancel := until(ctx, r.budget(ctx).rollback)
	defer cancel()
	got, err := r.opts.Custody.Ensure(kctx, custody.Request{
		SecretARN: arn,
		Token:     token,
		Recorded:  inv.secret.Tags[custody.SecretTagCreation],
		Record: func(ctx context.Context) error {
			_, err := r.sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn),
				Tags: []types.Tag{{Key: aws.String(custody.SecretTagCreation), Value: aws.String(token)}}})
			return err
		},
		Keep: r.lazyNamedKeys(kctx, inv),
	})
	if err != nil {
		return nil, fmt.Errorf("KMS custody key for version %s: %w", token, err)
	}
	key, err := secretdoc.NewKMSKey(got.Key.ARN, got.PublicDER, r.opts.Now())
	if err != nil {
		return nil, fmt.Errorf("KMS custody key %s: %w", got.Key.ARN, err)
	}
	inv.log.Info("custody key ready", "key_arn", got.Key.ARN, "found", got.How, "fingerprint", key.FingerprintSHA256[:16])
	return key, nil
}

// checkKMSKey checks that a KMS-held key can decrypt for the secret: in its
// account and region, enabled, RSA_2048, ENCRYPT_DECRYPT. A PEM-held key
// passes.
func (r *Rotator) checkKMSKey(ctx context.Context, arn string, k *secretdoc.Key) error {
	if !k.InKMS() {
		return nil
	}
	if err := k.CheckHome(arn); err != nil {
		return err
	}
	if r.opts.Custody == nil {
		return errNoCustody
	}
	_, err := r.opts.Custody.Check(ctx, k.KMSKeyARN, arn)
	return err
}

// prover proves, for one verification, that want's private key decrypts
// what a client encrypts to the key Meta returned. A KMS-held key is proven
// once per distinct public key: every number that passes holds want's key
// byte for byte, so one kms:Decrypt stands for all of them instead of one
// per number, from the RSA quota the endpoint shares.
type prover struct {
	r      *Rotator
	want   *secretdoc.Key
	mu     sync.Mutex // held across a KMS proof
	proven map[string]bool
}

func (r *Rotator) newProver(want *secretdoc.Key) *prover {
	return &prover{r: r, want: want, proven: map[string]bool{}}
}

func (p *prover) prove(ctx context.Context, pub *rsa.PublicKey, der []byte) error {
	if !p.want.InKMS() {
		return p.want.Pair().ProveDecrypt(p.r.opts.Random, pub)
	}
	if p.r.opts.Custody == nil {
		return errNoCustody
	}
	// Held across the proof, so that numbers verified at once wait for the
	// first proof instead of each making their own.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proven[string(der)] {
		return nil
	}
	if err := p.r.opts.Custody.ProveDecrypt(ctx, p.want.KMSKeyARN, p.r.opts.Random, pub); err != nil {
		return err
	}
	p.proven[string(der)] = true
	return nil
}

// namedKeys reads every labelled version of the secret (as described now)
// and returns the key IDs of the KMS keys they name. Any version that
// cannot be read makes it fail: what that version names is unknown.
func (r *Rotator) namedKeys(ctx context.Context, sec *keystate.Secret) (map[string]bool, error) {
	named := map[string]bool{}
	for _, v := range slices.Sorted(maps.Keys(sec.Stages)) {
		if len(sec.Stages[v]) == 0 {
			continue
		}
		doc, err := r.state.Load(ctx, sec.ARN, v, "")
		switch {
		case isNotFound(err):
			continue // staged, no value yet: it names nothing
		case err != nil:
			return nil, err
		}
		if doc.Key.InKMS() {
			if home, ok := secretdoc.ParseKMSKeyARN(doc.Key.KMSKeyARN); ok {
				named[home.KeyID] = true
			}
		}
	}
	return named, nil
}

// lazyNamedKeys is namedKeys as createSecret's Keep: read only if an
// orphan is found, and keeping every key when the versions cannot be read.
func (r *Rotator) lazyNamedKeys(ctx context.Context, inv *invocation) func(string) bool {
	once := sync.OnceValues(func() (map[string]bool, error) { return r.namedKeys(ctx, inv.secret) })
	return func(id string) bool {
		named, err := once()
		if err != nil {
			inv.log.Warn("custody: labelled versions unreadable; keeping every key", "error", err.Error())
			return true
		}
		return named[id]
	}
}

// retireKeys runs after a promotion: it retires the secret's custody keys
// that no labelled version names. A secret never in KMS custody (no
// creation record) is not looked at, so a PEM-only deploy makes no KMS
// call. Failures are logged, never returned: the rotation is complete, and
// the next finishSecret retries.
func (r *Rotator) retireKeys(ctx context.Context, inv *invocation) {
	if r.opts.Custody == nil || inv.secret.Tags[custody.SecretTagCreation] == "" {
		return
	}
	log := inv.log.With("phase", "retire_custody_keys")
	rctx, cancel := until(ctx, r.budget(ctx).rollback)
	defer cancel()
	// The labels as they are after the promotion: Secrets Manager moved
	// AWSPREVIOUS too.
	sec, err := r.state.Describe(rctx, inv.secret.ARN)
	var named map[string]bool
	if err == nil {
		named, err = r.namedKeys(rctx, sec)
	}
	if err != nil {
		log.Error("custody keys not retired: the labelled versions could not be read, so what they name is unknown; the next finishSecret retries", "error", err.Error())
		return
	}
	done, err := r.opts.Custody.Retire(rctx, inv.secret.ARN, func(id string) bool { return named[id] })
	retired := 0
	for _, d := range done {
		if d.Skipped == "" && d.Err == nil {
			retired++
		}
	}
	if err != nil {
		log.Error("custody keys not all retired; the next finishSecret retries", "retired", retired, "error", err.Error())
		return
	}
	log.Info("custody keys checked for retirement", "retired", retired, "kept", len(named), "examined", len(done))
}
