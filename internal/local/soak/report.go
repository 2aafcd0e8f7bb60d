package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/flowkey/flowkey/internal/local/graphsim"
)

// Outcomes of an attempt.
const (
	// OutcomeRotated: the rotation succeeded (the emulator's reattempts
	// included) and status was healthy at once.
	OutcomeRotated = "rotated"
	// OutcomeRecovered: flowkey's commands, followed as they advised,
	// brought the secret back to healthy.
	OutcomeRecovered = "recovered"
	// OutcomeStuck: still not healthy after every recovery round, the last
	// ones with every fault off.
	OutcomeStuck = "stuck"
)

// Result is what a run found.
type Result struct {
	Seed    uint64
	Planned int
	// Attempts ran, in order.
	Attempts []*Attempt
	// TimedOut: the run stopped on its time budget before its last attempt.
	TimedOut bool
	Elapsed  time.Duration
	// Checks counts invariant checks (one per secret each time).
	Checks int
	// Places counts where AWSPENDING sat, over all checks.
	Places     map[string]int
	Violations []Violation
	// Problems are failures that are not the invariant's: an attempt left
	// stuck, output that was not copied.
	Problems []string
	// Final is each secret's last rotation, with every fault off.
	Final []Final
}

// Attempt is one attempt's account.
type Attempt struct {
	Plan    Plan
	Secret  string
	Outcome string
	// Rounds counts the recovery rounds that ran rotate or resync.
	Rounds int
	// Beyond2N is, for an attempt whose rotation succeeded, its upload and
	// read calls beyond one of each per number; -1 otherwise.
	Beyond2N int
	// Lists counts its list calls (a waba_id secret lists the WABA).
	Lists      int
	Violations int
	Duration   time.Duration

	mu    sync.Mutex
	notes []string
}

func (a *Attempt) note(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notes = append(a.notes, fmt.Sprintf(format, args...))
}

func (a *Attempt) trace() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.notes)
}

// line is the attempt's progress line.
func (a *Attempt) line(of int) string {
	calls := ""
	if a.Beyond2N >= 0 {
		calls = fmt.Sprintf(" +%d calls", a.Beyond2N)
	}
	v := ""
	if a.Violations > 0 {
		v = fmt.Sprintf(" VIOLATIONS %d", a.Violations)
	}
	return fmt.Sprintf("%4d/%d %-17s %-9s %d rounds %6s%s%s  %s", a.Plan.Attempt, of, a.Secret, a.Outcome, a.Rounds,
		a.Duration.Round(100*time.Millisecond), calls, v, a.Plan)
}

// Violation is one break of the invariant, or of a rule that protects it
// (status healthy during an incomplete rotation, advice to remove
// AWSPENDING from a version with a key), with what it takes to replay it.
type Violation struct {
	Seed    uint64
	Attempt int // 0: the final rotations
	Secret  string
	When    string
	Plan    string
	Problem string
	// Meta is what Meta held per number, Labels the labelled versions.
	Meta, Labels []string
	// Trace is what the attempt had done until then.
	Trace []string
}

// Final is a secret's last rotation, with every fault off.
type Final struct {
	Secret string
	OK     bool
	Calls  graphsim.OpCounts
	Detail string // why it is not OK
}

// Failed reports a run that does not meet the bar: a violation, an
// attempt left stuck, or a final rotation that was not clean.
//
// A run that checked nothing fails too: no attempt ran or no check was
// made, so zero violations would prove nothing.
func (r *Result) Failed() bool {
	if len(r.Attempts) == 0 || r.Checks == 0 || len(r.Violations) > 0 || len(r.Problems) > 0 || len(r.Final) == 0 {
		return true
	}
	for _, f := range r.Final {
		if !f.OK {
			return true
		}
	}
	return false
}

// row is one line of the table.
type row struct {
	attempts, rotated, recovered, stuck, violations int
	beyond, measured                                int // calls beyond 2N over the rotated attempts measured
}

func (w *row) add(a *Attempt) {
	w.attempts++
	switch a.Outcome {
	case OutcomeRotated:
		w.rotated++
	case OutcomeRecovered:
		w.recovered++
	case OutcomeStuck:
		w.stuck++
	}
	w.violations += a.Violations
	if a.Beyond2N >= 0 {
		w.beyond += a.Beyond2N
		w.measured++
	}
}

// WriteTable prints the run's account: attempts, outcomes by cause,
// calls beyond 2N, where AWSPENDING sat, the final rotations, and every
// violation with its seed and plan.
func (r *Result) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "flowkey soak, seed %d: %d of %d attempts in %s", r.Seed, len(r.Attempts), r.Planned, r.Elapsed.Round(time.Second))
	if r.TimedOut {
		fmt.Fprintf(out, " (stopped on the time budget)")
	}
	fmt.Fprintf(out, "\n\n")
	rows, all := map[string]*row{}, &row{}
	for _, a := range r.Attempts {
		all.add(a)
		for _, c := range a.Plan.Causes() {
			if rows[c] == nil {
				rows[c] = &row{}
			}
			rows[c].add(a)
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cause\tattempts\trotated\trecovered\tstuck\tviolations\tcalls beyond 2N\t")
	for _, c := range slices.Sorted(maps.Keys(rows)) {
		writeRow(tw, c, rows[c])
	}
	writeRow(tw, "all attempts", all)
	tw.Flush()
	fmt.Fprintf(out, "\n(an attempt counts once in each of its causes; calls beyond 2N: upload and read calls beyond one of each per number, over the attempts whose rotation succeeded)\n")
	if n := rows["none"]; n != nil {
		fmt.Fprintf(out, "fault-free attempts: %d, %d calls beyond 2N\n", n.measured, n.beyond)
	}
	fmt.Fprintf(out, "invariant checks: %d (both secrets, after every rotation, command and advice followed)\n", r.Checks)
	fmt.Fprintf(out, "AWSPENDING at the checks:")
	for _, p := range []string{PendingAbsent, PendingOnCurrent, PendingKey, PendingNoValue, PendingNoKey, PendingCurrentKey, PendingUnreadable, PendingElsewhere} {
		if n := r.Places[p]; n > 0 {
			fmt.Fprintf(out, " %s %d;", p, n)
		}
	}
	fmt.Fprintln(out)
	for _, f := range r.Final {
		if f.OK {
			fmt.Fprintf(out, "final rotation, every fault off: %s clean (%d uploads, %d reads, %d lists)\n", f.Secret, f.Calls.Upload, f.Calls.Get, f.Calls.List)
		} else {
			fmt.Fprintf(out, "final rotation, every fault off: %s FAILED: %s\n", f.Secret, f.Detail)
		}
	}
	for _, p := range r.Problems {
		fmt.Fprintf(out, "problem: %s\n", p)
	}
	if len(r.Attempts) == 0 || r.Checks == 0 {
		fmt.Fprintf(out, "FAILED: the run checked nothing (%d attempts, %d checks)\n", len(r.Attempts), r.Checks)
	}
	fmt.Fprintf(out, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		writeViolation(out, r, v)
	}
}

func writeRow(tw io.Writer, name string, w *row) {
	beyond := "-"
	if w.measured > 0 {
		beyond = fmt.Sprintf("%d over %d", w.beyond, w.measured)
	}
	fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t\n", name, w.attempts, w.rotated, w.recovered, w.stuck, w.violations, beyond)
}

func writeViolation(out io.Writer, r *Result, v Violation) {
	at := fmt.Sprintf("attempt %d", v.Attempt)
	replay := fmt.Sprintf("SOAK_SEED=%d SOAK_ATTEMPTS=%d", v.Seed, v.Attempt)
	if v.Attempt == 0 {
		at, replay = "the final rotations", fmt.Sprintf("SOAK_SEED=%d SOAK_ATTEMPTS=%d", v.Seed, len(r.Attempts))
	}
	fmt.Fprintf(out, "\nVIOLATION in %s on %s, %s: %s\n  replay: make soak %s\n  plan: %s\n  Meta holds: %s\n  versions: %s\n",
		at, v.Secret, v.When, v.Problem, replay, v.Plan, strings.Join(v.Meta, ", "), strings.Join(v.Labels, "; "))
	for _, t := range v.Trace {
		fmt.Fprintf(out, "    %s\n", t)
	}
}
