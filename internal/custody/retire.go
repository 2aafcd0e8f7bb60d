package custody

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Aliased is one of a secret's keys found through its alias.
type Aliased struct {
	Alias string
	// Key is nil when DescribeKey failed (Err says why) or the key no
	// longer exists (Err is nil, Gone is true).
	Key  *Key
	Gone bool
	Err  error
}

// List reports every key that carries secretARN's alias prefix, in alias
// order, with its state. ListAliases lists the account's aliases (no keys
// are listed), then each key is described once.
func (m *Manager) List(ctx context.Context, secretARN string) ([]Aliased, error) {
	aliases, err := m.aliases(ctx, secretARN)
	if err != nil {
		return nil, err
	}
	out := make([]Aliased, 0, len(aliases))
	for _, a := range aliases {
		entry := Aliased{Alias: a.name}
		entry.Key, entry.Err = m.describe(ctx, a.target)
		if code(entry.Err) == codeNotFound {
			entry.Gone, entry.Err = true, nil
		}
		out = append(out, entry)
	}
	return out, nil
}

type aliasEntry struct{ name, target string }

// aliases lists the aliases with secretARN's prefix. ListAliases cannot
// filter by prefix, so every page is read.
func (m *Manager) aliases(ctx context.Context, secretARN string) ([]aliasEntry, error) {
	prefix := AliasPrefix(secretARN)
	var out []aliasEntry
	var marker *string
	for {
		page, err := call(ctx, m, "ListAliases", "", func(ctx context.Context) (*kms.ListAliasesOutput, error) {
			return m.kms.ListAliases(ctx, &kms.ListAliasesInput{Marker: marker, Limit: aws.Int32(100)})
		})
		if err != nil {
			return nil, err
		}
		for _, a := range page.Aliases {
			if name := aws.ToString(a.AliasName); strings.HasPrefix(name, prefix) && a.TargetKeyId != nil {
				out = append(out, aliasEntry{name: name, target: aws.ToString(a.TargetKeyId)})
			}
		}
		if !page.Truncated || page.NextMarker == nil {
			break
		}
		marker = page.NextMarker
	}
	slices.SortFunc(out, func(a, b aliasEntry) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// Retired is what Retire did to one key.
type Retired struct {
	Alias string
	Key   *Key
	// Before is the state Retire found; the key is PendingDeletion after,
	// until DeletionDate, unless Err says otherwise.
	Before       types.KeyState
	DeletionDate time.Time
	// Skipped says why Retire left the key as it was ("" when it retired it).
	Skipped string
	Err     error
}

// Retire disables, then schedules for deletion, each key with secretARN's
// alias prefix that keep does not keep (by key ID), and reports what it did
// to each. A key pending deletion or gone is left alone, and so is a key
// not tagged for the secret (an alias pointed elsewhere by hand). Every key
// is tried; the error joins the failures.
func (m *Manager) Retire(ctx context.Context, secretARN string, keep func(keyID string) bool) ([]Retired, error) {
	aliases, err := m.aliases(ctx, secretARN)
	if err != nil {
		return nil, err
	}
	var out []Retired
	var errs []error
	seen := map[string]bool{}
	for _, a := range aliases {
		if seen[a.target] || keep(a.target) {
			continue
		}
		seen[a.target] = true
		r := m.retireAliased(ctx, secretARN, a)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (m *Manager) retireAliased(ctx context.Context, secretARN string, a aliasEntry) Retired {
	r := Retired{Alias: a.name}
	k, err := m.describe(ctx, a.target)
	switch {
	case code(err) == codeNotFound:
		r.Skipped = "the key no longer exists"
		return r
	case err != nil:
		r.Err = err
		return r
	}
	r.Key, r.Before, r.DeletionDate = k, k.State, k.DeletionDate
	if k.State == types.KeyStatePendingDeletion {
		r.Skipped = "already pending deletion"
		return r
	}
	tags, err := m.tags(ctx, k.ID)
	if err != nil {
		r.Err = err
		return r
	}
	if tags[TagSecretARN] != secretARN {
		r.Skipped = "not tagged " + TagSecretARN + " for this secret (its alias was pointed at it by hand)"
		m.opts.Logger.Warn("custody: alias names a key that is not the secret's; left alone", "alias", a.name, "key_arn", k.ARN)
		return r
	}
	r.DeletionDate, r.Err = m.retire(ctx, k)
	if r.Err == nil {
		m.opts.Logger.Info("custody key retired", "secret_arn", secretARN, "alias", a.name, "key_arn", k.ARN, "state_before", string(k.State),
			"deletion_date", r.DeletionDate.UTC().Format(time.RFC3339), "pending_window_days", m.opts.DeletionDays)
	}
	return r
}

// retire disables k (unless it is already), then schedules its deletion.
func (m *Manager) retire(ctx context.Context, k *Key) (time.Time, error) {
	if k.State != types.KeyStateDisabled {
		if _, err := call(ctx, m, "DisableKey", k.ARN, func(ctx context.Context) (*kms.DisableKeyOutput, error) {
			return m.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k.ARN)})
		}); err != nil {
			return time.Time{}, err
		}
	}
	out, err := call(ctx, m, "ScheduleKeyDeletion", k.ARN, func(ctx context.Context) (*kms.ScheduleKeyDeletionOutput, error) {
		return m.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k.ARN), PendingWindowInDays: aws.Int32(int32(m.opts.DeletionDays))})
	})
	if err != nil {
		return time.Time{}, err
	}
	return aws.ToTime(out.DeletionDate), nil
}

// retireQuietly retires a key no version can name (a duplicate or an
// orphan), logging the outcome: a failure leaves a disabled or enabled key
// that nothing uses, which the log names.
func (m *Manager) retireQuietly(ctx context.Context, k *Key, why string) {
	when, err := m.retire(ctx, k)
	if err != nil {
		m.opts.Logger.Error("custody: an unused key could not be retired; retire it by hand with `aws kms schedule-key-deletion`",
			"key_arn", k.ARN, "reason", why, "error", err.Error())
		return
	}
	m.opts.Logger.Info("custody key retired", "key_arn", k.ARN, "reason", why, "deletion_date", when.UTC().Format(time.RFC3339))
}
