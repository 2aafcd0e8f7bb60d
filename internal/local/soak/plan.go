package soak

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/local/graphsim"
)

// Kind is what a planned fault does.
type Kind string

// Fault kinds: every Graph fault the simulator scripts, its lag, MISMATCH,
// re-registration, call budget and latency, a revoked token, the
// bootstrap killed mid-step and local-kms stopped.
const (
	KindGraph      Kind = "graph"      // a graphsim.Fault
	KindLag        Kind = "lag"        // GET shows the key held before an upload, for Dur
	KindMismatch   Kind = "mismatch"   // GET answers MISMATCH with a blank key
	KindReregister Kind = "reregister" // stored signatures go stale until the next upload
	KindBudget     Kind = "budget"     // the WABA's call budget
	KindLatency    Kind = "latency"    // every Graph call answered Dur later
	KindToken      Kind = "token"      // the token secret holds a revoked token
	KindKill       Kind = "kill"       // the bootstrap is killed during step When
	KindKMS        Kind = "kms"        // local-kms is stopped
)

// When a fault starts, for the kinds that do not start before the rotation.
const (
	WhenBefore   = "before the rotation"
	WhenAfterSet = "after setSecret"
	// WhenAfter starts the fault once the rotation has ended, before
	// recovery: drift behind a rotation that succeeded, for resync.
	WhenAfter = "after the rotation"
	// WhenCreate stops local-kms when createSecret starts.
	WhenCreate = "at createSecret"
)

// When local-kms comes back.
const (
	RestartBetweenRuns = "between the rotation's runs"
	RestartInRecovery  = "in recovery"
)

// Fault is one planned fault.
type Fault struct {
	Kind  Kind
	Graph graphsim.Fault // KindGraph
	// Numbers are the phone numbers a lag, MISMATCH or re-registration
	// applies to.
	Numbers []string
	Dur     time.Duration   // lag, latency
	When    string          // mismatch and reregister: WhenBefore, WhenAfterSet or WhenAfter; kms: WhenBefore or WhenCreate; kill: the step
	MidCall bool            // kill: hold the step's first Graph call and kill while it is in flight
	Jitter  time.Duration   // kill: how long after the step starts (without MidCall)
	Restart string          // kms
	Budget  graphsim.Budget // budget
	// Keep is how many recovery rounds the fault stays on (0: it ends with
	// the rotation). Lag and MISMATCH often stay on while recovery runs.
	Keep int
	// Cause names the fault's family, a row of the table.
	Cause string
	// Recipe names the scenario the fault belongs to, if any.
	Recipe string
}

// Plan is what one attempt does: rotate one secret, by the schedule's
// RotateSecret or by the rotate command, against Faults.
type Plan struct {
	Seed    uint64
	Attempt int
	Secret  int // index into the run's secrets
	// ByCommand starts the rotation with {"command":"rotate"} instead of
	// RotateSecret (a secret's first rotation always uses RotateSecret,
	// which configures rotation on it).
	ByCommand bool
	Faults    []Fault
}

// target is what a plan needs to know about a secret.
type target struct {
	name    string
	numbers []string
	waba    string // the WABA its numbers belong to
	byWABA  bool   // configured by waba_id: its steps list the WABA
}

// NewPlan derives attempt's plan from seed alone, so that SOAK_SEED replays
// every plan whatever happened in the attempts before it.
func NewPlan(seed uint64, attempt int, targets []target) Plan {
	r := rand.New(rand.NewPCG(seed, uint64(attempt)))
	p := Plan{Seed: seed, Attempt: attempt, Secret: r.IntN(len(targets)), ByCommand: r.IntN(2) == 0}
	t := targets[p.Secret]
	switch x := r.Float64(); {
	case x < 0.22:
		// No fault: the attempts that measure Graph calls against 2N.
	case x < 0.27:
		p.Faults = recipeMismatch(r, t)
	case x < 0.32:
		p.Faults = recipeRefusedRollback(r, t)
	default:
		seen := map[Kind]bool{}
		for range 1 + r.IntN(3) {
			f := randomFault(r, t)
			if f.Kind != KindGraph && f.Kind != KindLag && f.Kind != KindMismatch && seen[f.Kind] {
				continue // one of each switch a plan flips for the whole stack
			}
			seen[f.Kind] = true
			p.Faults = append(p.Faults, f)
		}
	}
	return p
}

// The two reproductions, where an operator who followed flowkey's
// advice stranded a key, as recipes the soak plays often.
const (
	RecipeMismatch        = "MISMATCH on every number"
	RecipeRefusedRollback = "rollback refused behind a lagging GET"
)

func recipeMismatch(r *rand.Rand, t target) []Fault {
	return []Fault{{Kind: KindMismatch, Numbers: t.numbers, When: WhenBefore, Keep: 1 + r.IntN(2), Cause: "mismatch", Recipe: RecipeMismatch}}
}

func recipeRefusedRollback(r *rand.Rand, t target) []Fault {
	out := []Fault{{Kind: KindLag, Numbers: t.numbers, Dur: time.Duration(2+r.IntN(4)) * time.Second, Keep: 1 + r.IntN(2), Cause: "lag (long)", Recipe: RecipeRefusedRollback}}
	for _, n := range t.numbers {
		out = append(out, Fault{Kind: KindGraph, Graph: graphsim.Fault{Op: graphsim.OpUpload, Object: n, Kind: graphsim.FaultGraphError, Code: 80007,
			RegainAccess: 30 * time.Minute, Times: graphsim.Forever, After: 1}, Keep: r.IntN(3), Cause: "graph_error 80007", Recipe: RecipeRefusedRollback})
	}
	return out
}

// randomFault draws one fault, weighted towards the Graph's own faults.
func randomFault(r *rand.Rand, t target) Fault {
	gens := []struct {
		weight int
		gen    func(*rand.Rand, target) Fault
	}{
		{14, graphErrorFault}, {4, httpStatusFault}, {5, delayFault}, {4, malformedFault}, {3, dropFault},
		{2, errorBodyFault}, {6, lagFault}, {5, mismatchFault}, {4, reregisterFault}, {2, budgetFault},
		{2, latencyFault}, {2, tokenFault}, {6, killFault}, {4, kmsFault},
	}
	total := 0
	for _, g := range gens {
		total += g.weight
	}
	n := r.IntN(total)
	for _, g := range gens {
		if n < g.weight {
			return g.gen(r, t)
		}
		n -= g.weight
	}
	panic("unreachable")
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// scope draws which calls a Graph fault answers.
func scope(r *rand.Rand, t target) graphsim.Fault {
	ops := []graphsim.Op{graphsim.OpUpload, graphsim.OpUpload, graphsim.OpGet, graphsim.OpGet, graphsim.OpAny}
	if t.byWABA {
		ops = append(ops, graphsim.OpList)
	}
	f := graphsim.Fault{Op: pick(r, ops...), Times: pick(r, 1, 1, 1, 2, 2, 3, graphsim.Forever), After: pick(r, 0, 0, 0, 1, 2)}
	switch {
	case f.Op == graphsim.OpList:
		f.Object = pick(r, "", t.waba)
	case r.IntN(2) == 0:
		f.Object = pick(r, t.numbers...)
	}
	return f
}

// graphKeep is how long a Graph fault stays on into recovery.
func graphKeep(r *rand.Rand) int { return pick(r, 0, 0, 0, 1, 1, 2) }

// keepOn is how long lag and MISMATCH stay on into recovery: mostly on
// for a round or two, the cases that broke the invariant before.
func keepOn(r *rand.Rand) int { return pick(r, 0, 1, 1, 2) }

// Graph codes the faults answer with, by what they mean to a client.
var (
	transientCodes = []int{1, 2, 131000, 131016}
	throttleCodes  = []int{4, 17, 613, 80007, 130429, 131056}
	permanentCodes = []int{10, 100, 190, 200}
)

func graphErrorFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind = graphsim.FaultGraphError
	switch r.IntN(4) {
	case 0, 1:
		f.Code = pick(r, transientCodes...)
	case 2:
		f.Code = pick(r, throttleCodes...)
		f.RegainAccess = pick(r, 0, time.Minute, 30*time.Minute)
	default:
		f.Code = pick(r, permanentCodes...)
		if f.Code == 100 && r.IntN(2) == 0 {
			f.Subcode = 33 // the object is gone
		}
	}
	cause := fmt.Sprintf("graph_error %d", f.Code)
	if f.Subcode != 0 {
		cause += fmt.Sprintf("/%d", f.Subcode)
	}
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: cause}
}

func httpStatusFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind, f.Status = graphsim.FaultHTTPStatus, pick(r, 500, 502, 503, 504)
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: "http 5xx"}
}

// delayFault holds calls: under GRAPH_REQUEST_TIMEOUT (slow), or past it
// (the client times out). A held upload lands late, as one at Meta may.
func delayFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind = graphsim.FaultDelay
	if r.IntN(2) == 0 {
		f.Delay = time.Duration(50+r.IntN(600)) * time.Millisecond
		return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: "delay (slow)"}
	}
	f.Delay = graphRequestTimeout + time.Duration(200+r.IntN(1300))*time.Millisecond
	if f.Times == graphsim.Forever {
		f.Times = 3
	}
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: "delay (timeout)"}
}

func malformedFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind = graphsim.FaultMalformed
	f.Malformed = pick(r, graphsim.MalformedTruncated, graphsim.MalformedHTML, graphsim.MalformedEmpty)
	if r.IntN(3) == 0 {
		f.Status = 502
	}
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: "malformed " + f.Malformed}
}

func dropFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind = graphsim.FaultDrop
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: "drop"}
}

// errorBodyFault is a Graph error in a body the simulator does not send
// on its own: on HTTP 200, or with is_transient.
func errorBodyFault(r *rand.Rand, t target) Fault {
	f := scope(r, t)
	f.Kind = graphsim.FaultMalformed
	code, transient := pick(r, 131000, 100, 80007), r.IntN(2) == 0
	f.Body = fmt.Sprintf(`{"error":{"message":"(#%d) Simulated by the soak","type":"OAuthException","code":%d,"is_transient":%t,"fbtrace_id":"AsoakTrace"}}`, code, code, transient)
	cause := "error on HTTP 200"
	if transient {
		f.Status, cause = 500, "is_transient error"
	}
	return Fault{Kind: KindGraph, Graph: f, Keep: graphKeep(r), Cause: cause}
}

func someNumbers(r *rand.Rand, t target) []string {
	if r.IntN(2) == 0 {
		return t.numbers
	}
	return []string{pick(r, t.numbers...)}
}

func lagFault(r *rand.Rand, t target) Fault {
	f := Fault{Kind: KindLag, Numbers: someNumbers(r, t), Keep: keepOn(r)}
	if r.IntN(2) == 0 {
		f.Dur, f.Cause = time.Duration(100+r.IntN(600))*time.Millisecond, "lag (short)"
	} else {
		f.Dur, f.Cause = time.Duration(2+r.IntN(4))*time.Second, "lag (long)"
	}
	return f
}

func mismatchFault(r *rand.Rand, t target) Fault {
	return Fault{Kind: KindMismatch, Numbers: someNumbers(r, t), When: pick(r, WhenBefore, WhenAfterSet, WhenAfter), Keep: keepOn(r), Cause: "mismatch"}
}

func reregisterFault(r *rand.Rand, t target) Fault {
	return Fault{Kind: KindReregister, Numbers: someNumbers(r, t), When: pick(r, WhenBefore, WhenAfterSet, WhenAfter, WhenAfter), Cause: "reregister"}
}

func budgetFault(r *rand.Rand, t target) Fault {
	n := len(t.numbers)
	b := graphsim.Budget{WABA: t.waba, Limit: n - 1 + r.IntN(n+2), Window: pick(r, 2*time.Second, time.Hour)}
	return Fault{Kind: KindBudget, Budget: b, Keep: graphKeep(r), Cause: "budget"}
}

func latencyFault(r *rand.Rand, _ target) Fault {
	return Fault{Kind: KindLatency, Dur: time.Duration(20+r.IntN(180)) * time.Millisecond, Keep: graphKeep(r), Cause: "latency"}
}

func tokenFault(r *rand.Rand, _ target) Fault {
	return Fault{Kind: KindToken, Keep: graphKeep(r), Cause: "revoked token"}
}

func killFault(r *rand.Rand, _ target) Fault {
	f := Fault{Kind: KindKill, When: pick(r, "createSecret", "setSecret", "setSecret", "testSecret", "testSecret", "finishSecret")}
	if (f.When == "setSecret" || f.When == "testSecret") && r.IntN(2) == 0 {
		f.MidCall = true
	} else {
		f.Jitter = time.Duration(r.IntN(8)) * time.Millisecond
	}
	f.Cause = "kill in " + f.When
	return f
}

func kmsFault(r *rand.Rand, _ target) Fault {
	f := Fault{Kind: KindKMS, When: pick(r, WhenBefore, WhenBefore, WhenCreate), Restart: pick(r, RestartBetweenRuns, RestartInRecovery, RestartInRecovery), Cause: "local-kms down"}
	if f.Restart == RestartInRecovery {
		f.Keep = r.IntN(3)
	}
	return f
}

// String describes the fault so that it can be read back from a report.
func (f Fault) String() string {
	var s string
	switch f.Kind {
	case KindGraph:
		s = graphString(f.Graph)
	case KindLag:
		s = fmt.Sprintf("lag %s on %s", f.Dur, numbersString(f.Numbers))
	case KindMismatch:
		s = fmt.Sprintf("MISMATCH on %s %s", numbersString(f.Numbers), f.When)
	case KindReregister:
		s = fmt.Sprintf("re-registration of %s %s", numbersString(f.Numbers), f.When)
	case KindBudget:
		s = fmt.Sprintf("call budget of WABA %s: %d per %s", f.Budget.WABA, f.Budget.Limit, f.Budget.Window)
	case KindLatency:
		s = fmt.Sprintf("latency %s", f.Dur)
	case KindToken:
		s = "revoked token in the token secret"
	case KindKill:
		s = "bootstrap killed in " + f.When
		if f.MidCall {
			s += " during its first Graph call"
		} else {
			s += fmt.Sprintf(" %s after it starts", f.Jitter)
		}
	case KindKMS:
		s = fmt.Sprintf("local-kms stopped %s, back %s", f.When, f.Restart)
	}
	if f.Keep > 0 {
		s += fmt.Sprintf(" (on for %d recovery rounds)", f.Keep)
	}
	return s
}

func graphString(g graphsim.Fault) string {
	var what string
	switch g.Kind {
	case graphsim.FaultGraphError:
		what = fmt.Sprintf("graph_error %d", g.Code)
		if g.Subcode != 0 {
			what += fmt.Sprintf("/%d", g.Subcode)
		}
		if g.RegainAccess > 0 {
			what += fmt.Sprintf(" regain %s", g.RegainAccess)
		}
	case graphsim.FaultHTTPStatus:
		what = fmt.Sprintf("http %d", g.Status)
	case graphsim.FaultDelay:
		what = fmt.Sprintf("delay %s", g.Delay)
	case graphsim.FaultMalformed:
		what = "malformed " + g.Malformed
		if g.Body != "" {
			what = "body " + g.Body
		}
		if g.Status != 0 {
			what += fmt.Sprintf(" on HTTP %d", g.Status)
		}
	default:
		what = string(g.Kind)
	}
	obj := "every object"
	if g.Object != "" {
		obj = g.Object
	}
	times := fmt.Sprintf("%d calls", g.Times)
	if g.Times == graphsim.Forever {
		times = "every call"
	}
	return fmt.Sprintf("%s on %s of %s, %s after %d", what, g.Op, obj, times, g.After)
}

func numbersString(ns []string) string {
	if len(ns) == 1 {
		return ns[0]
	}
	return fmt.Sprintf("%d numbers", len(ns))
}

// String is the plan in one line, for reports and replays.
func (p Plan) String() string {
	how := "RotateSecret"
	if p.ByCommand {
		how = `{"command":"rotate"}`
	}
	if len(p.Faults) == 0 {
		return fmt.Sprintf("attempt %d: %s, no fault", p.Attempt, how)
	}
	parts := make([]string, len(p.Faults))
	for i, f := range p.Faults {
		parts[i] = f.String()
	}
	return fmt.Sprintf("attempt %d: %s; %s", p.Attempt, how, strings.Join(parts, "; "))
}

// Causes are the table rows the plan counts in: each fault's family once,
// or "none".
func (p Plan) Causes() []string {
	if len(p.Faults) == 0 {
		return []string{"none"}
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range p.Faults {
		c := f.Cause
		if f.Recipe != "" {
			c = "recipe: " + f.Recipe
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
