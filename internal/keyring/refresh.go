package keyring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// refresh runs a refresh, or waits for the one running, and reports whether
// this call ran it. It does nothing when a refresh has finished since the
// caller's snapshot (gen): the caller only has to read the keys again.
//
// Within the floor of the last refresh, a miss waits for the floor to pass
// (when the caller's deadline leaves time for the wait and a load) and then
// refreshes, or finds that another caller has. Failing it at once instead
// would fail a real user: a client that fetched the new key right after a
// rotation sends a request no loaded key decrypts, gets 421, re-fetches the
// same key and retries within milliseconds, into the same floor. Waiting
// keeps the floor's promise all the same: junk still costs at most one
// refresh per floor, and only requests Meta signed get this far. A TTL or
// start-up refresh never waits: the keys it would replace still work.
func (r *Ring) refresh(ctx context.Context, reason string, gen uint64) bool {
	ran, wait := r.refreshOnce(ctx, reason, gen, false)
	if wait <= 0 || reason != reasonMiss || !r.affords(ctx, wait) {
		// A TTL or start-up refresh, and a miss where every key was
		// unavailable, never wait.
		return ran
	}
	if r.opts.Sleep(ctx, wait) != nil {
		return false
	}
	// The floor has passed: one more attempt, which does not look at the
	// clock again, so that a clock that did not move cannot keep it
	// waiting.
	ran, _ = r.refreshOnce(ctx, reason, gen, true)
	return ran
}

// affords reports whether ctx leaves time to wait d and then load.
func (r *Ring) affords(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || r.opts.Now().Add(d+r.opts.LoadTimeout).Before(deadline)
}

// refreshOnce is one attempt of refresh. wait > 0 means the floor forbade
// a refresh for that long; floorPassed skips that check.
func (r *Ring) refreshOnce(ctx context.Context, reason string, gen uint64, floorPassed bool) (ran bool, wait time.Duration) {
	r.mu.Lock()
	if r.gen != gen {
		r.mu.Unlock()
		return false, 0
	}
	if ch := r.inflight; ch != nil {
		hook := r.waitHook
		r.mu.Unlock()
		if hook != nil {
			hook()
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return false, 0
	}
	now := r.opts.Now()
	if since := now.Sub(r.tried); r.triedOnce && since < r.opts.Floor && !floorPassed {
		r.mu.Unlock()
		return false, r.opts.Floor - since
	}
	ch := make(chan struct{})
	r.inflight, r.tried, r.triedOnce = ch, now, true
	prev := r.seen
	r.mu.Unlock()

	// Detached: the callers waiting for this refresh must not see it fail
	// because the caller that started it gave up.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.LoadTimeout)
	seen, info, err := r.read(lctx, prev)
	cancel()
	r.publish(reason, seen, info, err)
	close(ch)
	return true, 0
}

// publish installs what a refresh read (keeping each version's score) and
// ends the refresh.
func (r *Ring) publish(reason string, seen map[string]*entry, info Info, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	r.inflight = nil
	r.lastErr = err
	if err != nil {
		r.opts.Logger.Warn("keyring: refresh failed; keeping the keys already loaded",
			"reason", reason, "keys", len(r.keys), "error", err.Error())
		return
	}
	var keys []*entry
	for v, e := range seen {
		if old, ok := r.seen[v]; ok {
			e.score = old.score
		}
		if e.key != nil {
			keys = append(keys, e)
		}
	}
	slices.SortStableFunc(keys, func(a, b *entry) int {
		if c := byLikelihood(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.version, b.version)
	})
	changed := !sameKeys(r.keys, keys)
	r.keys, r.seen, r.info = keys, seen, info
	r.loaded, r.loadedAt = true, r.opts.Now()
	level := slog.LevelDebug
	if changed {
		level = slog.LevelInfo
	}
	r.opts.Logger.Log(context.Background(), level, "keyring: keys loaded", "reason", reason, "keys", describe(keys))
}

// read is one refresh's calls: DescribeSecret, then GetSecretValue for each
// labelled version not in prev.
func (r *Ring) read(ctx context.Context, prev map[string]*entry) (map[string]*entry, Info, error) {
	out, err := r.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.opts.SecretID)})
	if err != nil {
		return nil, Info{}, fmt.Errorf("keyring: describe secret %s: %w", r.opts.SecretID, err)
	}
	info := Info{Loaded: true, Deleted: out.DeletedDate != nil, Tags: map[string]string{}}
	for _, t := range out.Tags {
		info.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	seen := map[string]*entry{}
	for _, version := range slices.Sorted(maps.Keys(out.VersionIdsToStages)) {
		label := bestLabel(out.VersionIdsToStages[version])
		if label == "" {
			continue
		}
		old, ok := prev[version]
		if !ok {
			if old, ok = r.readVersion(ctx, aws.ToString(out.ARN), version, label); !ok {
				continue
			}
		}
		// A new entry, so that one already handed out never changes.
		seen[version] = &entry{version: version, label: label, fingerprint: old.fingerprint, key: old.key, appSecretID: old.appSecretID, parsed: old.parsed}
		if slices.Contains(out.VersionIdsToStages[version], LabelCurrent) && old.parsed {
			info.CurrentRead, info.AppSecretID = true, old.appSecretID
		}
	}
	return seen, info, nil
}

// readVersion reads and parses one version of secret arn. ok false means
// "read it again next time" (no value yet, or the read failed); an entry
// without a key is a version that will never hold one it can use.
func (r *Ring) readVersion(ctx context.Context, arn, version, label string) (_ *entry, ok bool) {
	log := r.opts.Logger.With("version_id", version, "label", label)
	out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.opts.SecretID), VersionId: aws.String(version)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			log.Info("keyring: version has no value yet; reading it again at the next refresh")
		} else {
			log.Warn("keyring: cannot read version; reading it again at the next refresh", "error", err.Error())
		}
		return nil, false
	}
	skip := &entry{version: version}
	if out.SecretString == nil {
		log.Warn("keyring: skipping a version without a SecretString")
		return skip, true
	}
	doc, err := secretdoc.Parse([]byte(*out.SecretString))
	if err != nil {
		// Field paths only: the parse errors never quote key material,
		// and the contract is stricter still (no content at all).
		log.Warn("keyring: skipping a version that is not a valid flowkey document", "fields", faultyFields(err))
		return skip, true
	}
	skip.parsed, skip.appSecretID = true, doc.Config.AppSecretID
	if doc.Key == nil {
		log.Info("keyring: skipping a configuration-only version (no key)")
		return skip, true
	}
	fp := keypair.FingerprintOf(doc.Key.PublicDER()).Short()
	if !doc.Key.InKMS() {
		return &entry{version: version, fingerprint: fp, key: LocalKey(doc.Key.Pair()), parsed: true, appSecretID: doc.Config.AppSecretID}, true
	}
	if arn == "" {
		arn = r.opts.SecretID
	}
	switch err := doc.Key.CheckHome(arn); {
	case err != nil:
		log.Warn("keyring: skipping a version whose KMS key is not in the secret's account and region", "error", err.Error())
		return skip, true
	case r.opts.KMS == nil:
		log.Warn("keyring: skipping a version whose key is held by KMS: the ring has no KMS client", "kms_key_arn", doc.Key.KMSKeyARN)
		return skip, true
	}
	return &entry{version: version, fingerprint: fp, key: KMSKey(r.opts.KMS, doc.Key.KMSKeyARN), parsed: true, appSecretID: doc.Config.AppSecretID}, true
}

// bestLabel is the first of labels that stages holds, or "".
func bestLabel(stages []string) string {
	for _, l := range labels {
		if slices.Contains(stages, l) {
			return l
		}
	}
	return ""
}

// faultyFields lists the JSON paths a parse error names (secretdoc keeps
// them to known names and lowercase identifiers), walking wrapped and
// joined errors.
func faultyFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *secretdoc.Error:
			out = append(out, e.Field)
		case *keypair.Error:
			out = append(out, e.Field)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	if len(out) == 0 {
		out = []string{"document"}
	}
	return out
}

type keyInfo struct {
	VersionID   string `json:"version_id"`
	Label       string `json:"label"`
	Fingerprint string `json:"fingerprint"`
}

func describe(keys []*entry) []keyInfo {
	out := make([]keyInfo, 0, len(keys))
	for _, e := range keys {
		out = append(out, keyInfo{e.version, e.label, e.fingerprint})
	}
	return out
}

func sameKeys(a, b []*entry) bool {
	return slices.EqualFunc(a, b, func(x, y *entry) bool { return x.version == y.version && x.label == y.label })
}
