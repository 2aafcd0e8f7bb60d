package keystate

import (
	"context"
	"fmt"
	"slices"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Numbers is the set of phone numbers a configuration covers.
type Numbers struct {
	// IDs are the numbers a rotation writes to.
	IDs []string
	// Gone are include_phone_number_ids entries that the WABA no longer
	// lists: nothing may be written to them.
	Gone []string
	// Listed counts the WABA's numbers before include and exclude; 0
	// without waba_id.
	Listed int
}

// ResolveNumbers returns the numbers cfg covers: phone_number_ids as they
// stand, or the WABA's numbers (all pages, listed now) narrowed by the
// include and exclude lists. It lists the WABA on every call, so a number
// added to it gets the key at the next rotation and one that left is never
// written to. It does not fail when nothing is left: a rotation step
// refuses that, a status reports it.
//
// More than secretdoc.MaxPhoneNumbers numbers is an *InputError, and no IDs
// come with it: nothing may be uploaded to, or read from, that many
// numbers for one secret. Every step and command resolves the numbers
// before it calls Meta for them, so nothing is uploaded first.
func (r *Reader) ResolveNumbers(ctx context.Context, auth graph.Auth, cfg secretdoc.Config) (Numbers, error) {
	if cfg.WABAID == "" {
		if n := len(cfg.PhoneNumberIDs); n > secretdoc.MaxPhoneNumbers {
			// Parse refuses such a document; a Config built in code is checked too.
			return Numbers{}, &InputError{Field: "config.phone_number_ids",
				Problem: fmt.Sprintf("lists %d phone numbers, more than the %d one secret may cover", n, secretdoc.MaxPhoneNumbers),
				Fix:     secretdoc.FixTooManyNumbers}
		}
		return Numbers{IDs: slices.Clone(cfg.PhoneNumberIDs)}, nil
	}
	listed, err := r.graph.PhoneNumbers(ctx, auth, cfg.WABAID)
	if err != nil {
		return Numbers{}, fmt.Errorf("list phone numbers of WABA %s: %w", cfg.WABAID, err)
	}
	n := Numbers{IDs: make([]string, 0, len(listed)), Listed: len(listed)}
	inWABA := make(map[string]bool, len(listed))
	for _, p := range listed {
		inWABA[p.ID] = true
		if len(cfg.IncludePhoneNumberIDs) > 0 && !slices.Contains(cfg.IncludePhoneNumberIDs, p.ID) {
			continue
		}
		if slices.Contains(cfg.ExcludePhoneNumberIDs, p.ID) {
			continue
		}
		n.IDs = append(n.IDs, p.ID)
	}
	for _, id := range cfg.IncludePhoneNumberIDs {
		if !inWABA[id] {
			n.Gone = append(n.Gone, id)
		}
	}
	if len(n.IDs) > secretdoc.MaxPhoneNumbers {
		return Numbers{Listed: n.Listed}, &InputError{Field: "config.waba_id",
			Problem: fmt.Sprintf("WABA %s has %d phone numbers after the include and exclude lists, more than the %d one secret may cover", cfg.WABAID, len(n.IDs), secretdoc.MaxPhoneNumbers),
			Fix:     secretdoc.FixTooManyNumbers}
	}
	return n, nil
}
