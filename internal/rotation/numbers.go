package rotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/fanout"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// NumberResult is what one step did to one phone number.
type NumberResult struct {
	PhoneNumberID string
	Err           error
	// Held and Status are what Meta last reported (testSecret only).
	Held   string // fingerprint, short form; "" when blank or unreadable
	Status string
	// definite means the failure certainly changed nothing at Meta.
	definite bool
}

func (n NumberResult) describe() string {
	var ge *graph.Error
	if errors.As(n.Err, &ge) {
		s := fmt.Sprintf("%s (graph code %d", n.PhoneNumberID, ge.Code)
		if ge.Subcode != 0 {
			s += fmt.Sprintf(" subcode %d", ge.Subcode)
		}
		if ge.HTTPStatus != 0 {
			s += fmt.Sprintf(", HTTP %d", ge.HTTPStatus)
		}
		return s + "): " + n.Err.Error()
	}
	return n.PhoneNumberID + ": " + n.Err.Error()
}

// StepError reports, per phone number, why setSecret or testSecret failed
// and what the rollback did.
type StepError struct {
	Step, Secret, Token string
	Total               int
	Failed              []NumberResult
	RolledBack          []string
	RollbackFailed      []NumberResult
	Note                string
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d phone numbers failed: ", len(e.Failed), e.Total)
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.describe())
	}
	if len(e.RolledBack) > 0 {
		fmt.Fprintf(&b, ". Put the AWSCURRENT key back on %d numbers (%s)", len(e.RolledBack), strings.Join(e.RolledBack, ", "))
	}
	if len(e.RollbackFailed) > 0 {
		fmt.Fprintf(&b, ". Could not put the AWSCURRENT key back on %d numbers: ", len(e.RollbackFailed))
		for i, f := range e.RollbackFailed {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(f.describe())
		}
	}
	if e.Note != "" {
		b.WriteString(". " + e.Note)
	}
	return b.String()
}

// phoneNumbers resolves the numbers a rotation covers: the configured list,
// or the WABA's numbers narrowed by the include and exclude lists.
func (r *Rotator) phoneNumbers(ctx context.Context, inv *invocation, auth graph.Auth, cfg secretdoc.Config) ([]string, error) {
	n, err := r.resolveNumbers(ctx, auth, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.WABAID == "" {
		return n.IDs, nil
	}
	inv.log.Info("phone numbers discovered", "waba_id", cfg.WABAID, "listed", n.Listed, "selected", len(n.IDs), "gone", len(n.Gone))
	if len(n.IDs) == 0 {
		return nil, &InputError{Field: "config.waba_id", Problem: fmt.Sprintf("WABA %s has no phone numbers left after the include and exclude lists", cfg.WABAID),
			Fix: "check the WABA ID and the include_phone_number_ids/exclude_phone_number_ids lists"}
	}
	return n.IDs, nil
}

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

// resolveNumbers lists the WABA every time, so a number added to it gets
// the key at the next rotation and one that left is never written to.
func (r *Rotator) resolveNumbers(ctx context.Context, auth graph.Auth, cfg secretdoc.Config) (Numbers, error) {
	if cfg.WABAID == "" {
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
	return n, nil
}

// forEach runs fn for every number, at most Concurrency at once, and
// returns the results in the order of numbers.
func (r *Rotator) forEach(ctx context.Context, numbers []string, fn func(context.Context, string) NumberResult) []NumberResult {
	return fanout.Each(ctx, r.opts.Concurrency, numbers, fn)
}

func failures(results []NumberResult) []NumberResult {
	var out []NumberResult
	for _, r := range results {
		if r.Err != nil {
			out = append(out, r)
		}
	}
	return out
}

// switchedOrUnknown lists the numbers an upload attempt may have switched:
// those that succeeded, and those whose failure leaves Meta's state unknown
// (a timeout or a 5xx may have landed).
func switchedOrUnknown(results []NumberResult) []string {
	var ids []string
	for _, r := range results {
		if r.Err == nil || !r.definite {
			ids = append(ids, r.PhoneNumberID)
		}
	}
	return ids
}

// definiteFailure reports whether err is Graph refusing the call, which
// changes nothing at Meta. Only a refusal of the one and only attempt is
// definite: when an earlier attempt timed out or got a 5xx, it may have
// landed even though the last one was refused.
func definiteFailure(err error) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && ge.HTTPStatus >= 400 && ge.HTTPStatus < 500 && ge.Attempts <= 1
}

func (r *Rotator) upload(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string, pem, action string) []NumberResult {
	return r.forEach(ctx, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		err := r.graph.UploadPublicKey(ctx, auth, id, pem)
		r.logNumber(inv, action, id, start, err)
		return NumberResult{PhoneNumberID: id, Err: err, definite: err != nil && definiteFailure(err)}
	})
}

// rollback puts the AWSCURRENT key back on numbers and returns the step's
// error, which reports failed out of total numbers. Without a current key
// (the first rotation) there is nothing to put back; the numbers keep the
// pending key, which AWSPENDING still holds.
func (r *Rotator) rollback(ctx context.Context, inv *invocation, auth graph.Auth, p pair, step string, total int, failed []NumberResult, numbers []string) error {
	e := &StepError{Step: step, Secret: inv.secret.arn, Token: inv.ev.ClientRequestToken, Total: total, Failed: failed}
	switch {
	case p.current.Key == nil:
		e.Note = "there is no AWSCURRENT key to put back (first rotation); the numbers keep the new key, whose private key stays in AWSPENDING version " + inv.ev.ClientRequestToken + ": do not remove that label"
	case len(numbers) == 0:
		e.Note = "no number was switched, so nothing was put back"
	default:
		// The current PEM was read back from AWSCURRENT by loadPair.
		for _, res := range r.upload(ctx, inv, auth, numbers, p.current.Key.PublicKeyPEM, "rollback") {
			if res.Err != nil {
				e.RollbackFailed = append(e.RollbackFailed, res)
			} else {
				e.RolledBack = append(e.RolledBack, res.PhoneNumberID)
			}
		}
		e.Note = "AWSPENDING version " + inv.ev.ClientRequestToken + " keeps the new private key; Secrets Manager will retry the rotation"
	}
	return e
}

// verify checks every number against want, polling each one until it holds
// want with status VALID or the verification deadline passes.
func (r *Rotator) verify(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string, want *secretdoc.Key) []NumberResult {
	deadline := r.opts.Now().Add(r.opts.VerifyTimeout)
	if d, ok := ctx.Deadline(); ok {
		// Keep time back to roll back if verification fails.
		if limit := d.Add(-r.opts.RollbackReserve); limit.Before(deadline) {
			deadline = limit
		}
	}
	return r.forEach(ctx, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		res := r.verifyNumber(ctx, auth, id, want, deadline)
		r.logNumber(inv, "verify", id, start, res.Err, "held", res.Held, "status", res.Status)
		return res
	})
}

// checkAccess reads every number once and fails only on Graph errors.
func (r *Rotator) checkAccess(ctx context.Context, inv *invocation, auth graph.Auth, numbers []string) []NumberResult {
	return r.forEach(ctx, numbers, func(ctx context.Context, id string) NumberResult {
		start := r.opts.Now()
		_, err := r.graph.GetPublicKey(ctx, auth, id)
		r.logNumber(inv, "check_access", id, start, err)
		return NumberResult{PhoneNumberID: id, Err: err}
	})
}

// MismatchError is a number that does not hold the expected key with
// status VALID.
type MismatchError struct {
	Want, Held, Status string
}

func (e *MismatchError) Error() string {
	held := e.Held
	if held == "" {
		held = "no readable key"
	}
	return fmt.Sprintf("Meta holds %s with status %q, want %s with status VALID", held, e.Status, e.Want)
}

func (r *Rotator) verifyNumber(ctx context.Context, auth graph.Auth, id string, want *secretdoc.Key, deadline time.Time) NumberResult {
	wantPair := want.Pair()
	backoff := r.opts.VerifyBackoff
	res := NumberResult{PhoneNumberID: id}
	for {
		reg, err := r.graph.GetPublicKey(ctx, auth, id)
		switch {
		case err != nil:
			res.Err = err
			var ge *graph.Error
			if !errors.As(err, &ge) || !ge.Retryable {
				return res
			}
		default:
			res.Status = reg.Status
			res.Held = ""
			if reg.PublicKey != nil {
				res.Held = keypair.FingerprintOf(reg.PublicDER).Short()
			}
			if reg.PublicKey != nil && bytes.Equal(reg.PublicDER, wantPair.PublicDER()) && reg.Status == graph.StatusValid {
				// Encrypt with the key Meta returned, as a WhatsApp client
				// does, and decrypt with the stored private key.
				if err := wantPair.ProveDecrypt(r.opts.Random, reg.PublicKey); err != nil {
					res.Err = fmt.Errorf("the key Meta holds does not round-trip with the stored private key: %w", err)
					return res
				}
				res.Err = nil
				return res
			}
			res.Err = &MismatchError{Want: wantPair.Fingerprint().Short(), Held: res.Held, Status: reg.Status}
		}
		if r.opts.Now().Add(backoff).After(deadline) {
			return res
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		backoff = min(2*backoff, r.opts.VerifyMaxBackoff)
	}
}

func (r *Rotator) logNumber(inv *invocation, action, id string, start time.Time, err error, extra ...any) {
	attrs := append([]any{"action", action, "phone_number_id", id, "duration_ms", r.opts.Now().Sub(start).Milliseconds()}, extra...)
	if err == nil {
		inv.log.Info("phone number done", attrs...)
		return
	}
	var ge *graph.Error
	if errors.As(err, &ge) {
		attrs = append(attrs, "graph_code", ge.Code, "graph_subcode", ge.Subcode, "http_status", ge.HTTPStatus, "fbtrace_id", ge.FBTraceID)
	}
	inv.log.Warn("phone number failed", append(attrs, "error", err.Error())...)
}
