package rotation

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowkey/flowkey/internal/graph"
)

// listedInFull is how many numbers a StepError describes one by one; the
// rest are counted by cause. Five full lines are about 3 KB, far below
// CloudWatch's 256 KB per log event whatever the number of numbers.
const listedInFull = 5

// What a number is left holding, as the report words it. Each is also the
// start of its line in the counts by cause.
const (
	holdsCurrent    = "back on the AWSCURRENT key"
	holdsNew        = "holds the new key"
	holdsUnverified = "holds the new key, unverified"
	holdsUnchanged  = "not changed by this attempt"
	mayHoldNew      = "may hold the new key"
	holdsUnknown    = "holds a key flowkey could not confirm"
)

// outcome is one number's line in the report.
type outcome struct {
	text  string // the whole account, for the first numbers
	group string // what it holds and why, for counting the rest
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d phone numbers failed: ", len(e.Failed), e.Total)
	outcomes := e.outcomes()
	for i, o := range outcomes[:min(len(outcomes), listedInFull)] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(o.text)
	}
	if rest := outcomes[min(len(outcomes), listedInFull):]; len(rest) > 0 {
		fmt.Fprintf(&b, "; and %d more: %s", len(rest), countByGroup(rest))
	}
	if n := len(e.RolledBack); n > 0 {
		fmt.Fprintf(&b, ". Put the AWSCURRENT key back on %d numbers", n)
		if n <= listedInFull {
			fmt.Fprintf(&b, " (%s)", strings.Join(e.RolledBack, ", "))
		}
	}
	if n := len(e.RollbackFailed); n > 0 {
		fmt.Fprintf(&b, ". Could not put the AWSCURRENT key back on %d numbers", n)
	}
	if e.Note != "" {
		b.WriteString(". " + e.Note)
	}
	return b.String()
}

// outcomes describes every number the report is about: each that failed,
// then each that did not but whose rollback failed, in the step's order.
func (e *StepError) outcomes() []outcome {
	rollbackErr := make(map[string]NumberResult, len(e.RollbackFailed))
	for _, f := range e.RollbackFailed {
		rollbackErr[f.PhoneNumberID] = f
	}
	failed := make(map[string]bool, len(e.Failed))
	out := make([]outcome, 0, len(e.Failed)+len(e.RollbackFailed))
	for _, f := range e.Failed {
		failed[f.PhoneNumberID] = true
		rb, rbFailed := rollbackErr[f.PhoneNumberID]
		out = append(out, e.describe(f, rb, rbFailed))
	}
	for _, rb := range e.RollbackFailed {
		if !failed[rb.PhoneNumberID] {
			out = append(out, e.describe(NumberResult{PhoneNumberID: rb.PhoneNumberID}, rb, true))
		}
	}
	return out
}

// describe words what res (the step's result for one number) and rb (its
// rollback's, when rbFailed) leave the number holding.
func (e *StepError) describe(res, rb NumberResult, rbFailed bool) outcome {
	holding, why := e.holding(res)
	after, rollback, rollbackGroup := "", "", ""
	switch {
	case e.mode != rolledBack || (res.Err != nil && res.definite):
		// Nothing was put back, or nothing needed to be.
	case !rbFailed:
		holding, why = holdsCurrent, ""
		if res.Err != nil {
			after = "; verification failed"
			if e.Step == StepSet {
				after = "; the upload may have landed"
			}
		}
	case rb.definite:
		rollback = "; the rollback was refused: " + rb.Err.Error()
		rollbackGroup = ", rollback refused after " + cause(rb.Err)
	default:
		rollback = "; the rollback may have landed: " + rb.Err.Error()
		rollbackGroup = ", rollback may have landed after " + cause(rb.Err)
		holding, why = holdsUnknown, "the AWSCURRENT key or the new key"
	}
	text := res.PhoneNumberID + graphTag(res.Err) + ": " + holding
	if why != "" {
		text += " (" + why + ")"
	}
	text += after
	group := holding
	if res.Err != nil {
		text += ": " + res.Err.Error()
		group += " after " + cause(res.Err)
	}
	return outcome{text: text + rollback, group: group + rollbackGroup}
}

// holding is what res alone leaves a number holding, before any rollback,
// with why, when that needs saying.
func (e *StepError) holding(res NumberResult) (holding, why string) {
	switch {
	case e.Step == StepTest && e.mode == nothingSwitched:
		return "not changed", "verification only"
	case res.Err == nil && e.Step == StepSet:
		return holdsNew, "uploaded"
	case res.Err == nil:
		return holdsNew, "verified"
	case e.Step == StepSet && res.definite && e.mode == noCurrentKey:
		return holdsUnchanged, "it holds what it held before, or the new key if an earlier attempt of this rotation uploaded it"
	case e.Step == StepSet && res.definite:
		return holdsUnchanged, "it holds the AWSCURRENT key, or the new key if an earlier attempt of this rotation uploaded it"
	case e.Step == StepSet:
		return mayHoldNew, ""
	}
	// testSecret read what Meta holds, after setSecret uploaded the new key.
	var me *MismatchError
	if errors.As(res.Err, &me) && me.Held != "" && me.Held == me.Want {
		return holdsUnverified, ""
	}
	return holdsUnknown, "setSecret uploaded the new key"
}

// graphTag is the short cause in parentheses after a number: "(graph code
// 100, HTTP 400)" or "(transport: connection reset)"; "" for other errors.
func graphTag(err error) string {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return ""
	}
	if _, ok := ge.GraphCode(); ok && ge.HTTPStatus != 0 {
		return fmt.Sprintf(" (%s, HTTP %d)", cause(err), ge.HTTPStatus)
	}
	return " (" + cause(err) + ")"
}

// cause names the kind of a failure, for counting numbers by cause.
func cause(err error) string {
	var (
		ge *graph.Error
		me *MismatchError
	)
	switch {
	case errors.As(err, &me):
		return me.cause()
	case errors.As(err, &ge):
		if code, ok := ge.GraphCode(); ok {
			if ge.Subcode != 0 {
				return fmt.Sprintf("graph code %d subcode %d", code, ge.Subcode)
			}
			return fmt.Sprintf("graph code %d", code)
		}
		switch ge.Failure {
		case graph.FailureTransport:
			return "transport: " + ge.Transport
		case graph.FailureMalformed:
			return "a malformed answer"
		}
		if ge.HTTPStatus != 0 {
			return fmt.Sprintf("HTTP %d", ge.HTTPStatus)
		}
		return "no response"
	case errors.Is(err, graph.ErrInvalidInput):
		return "invalid input"
	}
	return "another error"
}

// countByGroup is "998 back on the AWSCURRENT key after graph code 131000;
// 997 not changed by this attempt after graph code 80007", largest first.
func countByGroup(outcomes []outcome) string {
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o.group]++
	}
	groups := make([]string, 0, len(counts))
	for g := range counts {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%d %s", counts[g], g)
	}
	return strings.Join(parts, "; ")
}
