package soak

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/local/stack"
)

// binaries are built once by TestMain and only read afterwards.
var binaries stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	b, remove, err := stack.BuildTemp(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "the soak needs the bootstrap, local-kms and the RIE:", err)
		return 1
	}
	defer remove()
	binaries = b
	return m.Run()
}

// Short run sizes: `make test` runs shortAttempts of the default seed's
// plans, which must all complete within shortTimeout.
const (
	shortAttempts = 40
	shortTimeout  = 4 * time.Minute
)

// TestShortSoak is the short run `make test` includes: the default seed's
// first attempts, every one completed, with zero violations, no attempt
// left stuck, a clean final rotation of both secrets, and checks that saw
// something (attempts that rotated and attempts that needed recovery).
func TestShortSoak(t *testing.T) {
	logs := &logbuf.Buffer{}
	var progress bytes.Buffer
	began := time.Now()
	res, err := Run(context.Background(), Options{
		Binaries: binaries, Dir: t.TempDir(), Attempts: shortAttempts, Timeout: shortTimeout, Progress: &progress, Logs: logs, Trace: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	res.WriteTable(&table)
	t.Logf("short soak in %s:\n%s", time.Since(began).Round(time.Millisecond), table.String())
	if res.TimedOut || len(res.Attempts) != shortAttempts {
		t.Errorf("ran %d of %d attempts (timed out: %v); the short run must complete them all", len(res.Attempts), shortAttempts, res.TimedOut)
	}
	if res.Failed() {
		t.Errorf("the short soak failed the bar; attempts:\n%s", progress.String())
	}
	var rotated, recovered int
	for _, a := range res.Attempts {
		switch a.Outcome {
		case OutcomeRotated:
			rotated++
		case OutcomeRecovered:
			recovered++
		}
	}
	if rotated == 0 || recovered == 0 || res.Checks < 2*shortAttempts {
		t.Errorf("the run saw too little: %d rotated, %d recovered, %d checks", rotated, recovered, res.Checks)
	}
	for _, leak := range []string{soakToken, revokedToken, "PRIVATE KEY"} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the stack's output contains %q", leak)
		}
	}
}

// TestReplayIsTheSamePlan: a seed gives the same plans, attempt by
// attempt, whatever ran before.
func TestReplayIsTheSamePlan(t *testing.T) {
	targets := testTargets()
	differ := 0
	for i := 1; i <= 200; i++ {
		a, b := NewPlan(7, i, targets), NewPlan(7, i, targets)
		if a.String() != b.String() {
			t.Fatalf("attempt %d: %s, then %s", i, a, b)
		}
		if NewPlan(8, i, targets).String() != a.String() {
			differ++
		}
	}
	if differ < 150 {
		t.Errorf("only %d of 200 plans change with the seed", differ)
	}
}

// TestPlansCoverEveryFault: over the default seed's first thousand
// attempts, every kind of fault is planned, every Graph fault the
// simulator has, every step a kill lands in, both ways local-kms comes
// back, both recipes, and attempts with no fault at all.
func TestPlansCoverEveryFault(t *testing.T) {
	seen := map[string]bool{}
	for i := 1; i <= 1000; i++ {
		p := NewPlan(DefaultSeed, i, testTargets())
		if len(p.Faults) == 0 {
			seen["no fault"] = true
		}
		for _, f := range p.Faults {
			seen[string(f.Kind)] = true
			seen[f.Recipe] = true
			switch f.Kind {
			case KindGraph:
				seen["graph "+string(f.Graph.Kind)] = true
				seen["op "+string(f.Graph.Op)] = true
				if f.Graph.Malformed != "" {
					seen["malformed "+f.Graph.Malformed] = true
				}
			case KindKill:
				seen["kill "+f.When] = true
				seen[fmt.Sprintf("kill mid-call %v", f.MidCall)] = true
			case KindKMS:
				seen["kms "+f.Restart] = true
			case KindLag, KindMismatch:
				seen[fmt.Sprintf("%s kept %v", f.Kind, f.Keep > 0)] = true
				seen[string(f.Kind)+" "+f.When] = true
			case KindReregister:
				seen[string(f.Kind)+" "+f.When] = true
			}
		}
	}
	want := []string{"no fault", RecipeMismatch, RecipeRefusedRollback,
		"graph graph_error", "graph http_status", "graph delay", "graph malformed", "graph drop",
		"op upload", "op get", "op list", "op any", "malformed truncated", "malformed html", "malformed empty",
		"lag", "mismatch", "reregister", "budget", "latency", "token", "kill", "kms",
		"kill createSecret", "kill setSecret", "kill testSecret", "kill finishSecret", "kill mid-call true", "kill mid-call false",
		"kms " + RestartBetweenRuns, "kms " + RestartInRecovery, "lag kept true", "mismatch kept true",
		"mismatch " + WhenBefore, "mismatch " + WhenAfterSet, "mismatch " + WhenAfter,
		"reregister " + WhenBefore, "reregister " + WhenAfterSet, "reregister " + WhenAfter}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no plan has %q", w)
		}
	}
}

func testTargets() []target {
	return []target{
		{name: "ids", numbers: []string{"106540352242922", "106540352250841", "106540352258760"}, waba: stack.DefaultWABAID},
		{name: "waba", numbers: []string{"106540352900001", "106540352900002"}, waba: secondWABA, byWABA: true},
	}
}

// TestParseAdvice reads the commands of the rotate report's advice, as
// internal/operator prints them, in order.
func TestParseAdvice(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/soak-ids-AbCdEf"
	invoke := func(step string) string {
		return `aws lambda invoke --function-name flowkey-rotator --cli-binary-format raw-in-base64-out --payload '{"Step":"` + step +
			`","SecretId":"` + arn + `","ClientRequestToken":"v-1"}' out.json`
	}
	text := "finish it by hand with its token once no step of it is running, one step after the other: " +
		invoke("setSecret") + " ; then " + invoke("testSecret") + " ; then " + invoke("finishSecret") +
		". If it went wrong: aws secretsmanager update-secret-version-stage --secret-id " + arn + " --version-stage AWSPENDING --move-to-version-id v-1" +
		"; never aws secretsmanager update-secret-version-stage --secret-id " + arn + " --version-stage AWSPENDING --remove-from-version-id v-2"
	got := parseAdvice(text)
	var names []string
	for _, a := range got {
		names = append(names, a.String())
	}
	want := "invoke setSecret|invoke testSecret|invoke finishSecret|move AWSPENDING to v-1|remove AWSPENDING from v-2"
	if strings.Join(names, "|") != want {
		t.Errorf("advice = %q, want %q", strings.Join(names, "|"), want)
	}
	if len(parseAdvice("Do NOT remove AWSPENDING from version v-1; run {\"command\":\"rotate\"} again")) != 0 {
		t.Error("prose that names no command was read as a command")
	}
}

// TestAResultThatCheckedNothingFails: zero attempts or zero checks is a
// failing run, whatever else it says.
func TestAResultThatCheckedNothingFails(t *testing.T) {
	ok := []Final{{Secret: "s", OK: true}}
	for _, r := range []*Result{
		{Final: ok},
		{Attempts: []*Attempt{{Outcome: OutcomeRotated, Beyond2N: 0}}, Final: ok},
	} {
		if !r.Failed() {
			t.Errorf("a result with %d attempts and %d checks passes", len(r.Attempts), r.Checks)
		}
		var out bytes.Buffer
		r.WriteTable(&out)
		if !strings.Contains(out.String(), "checked nothing") {
			t.Errorf("the table does not say the run checked nothing:\n%s", out.String())
		}
	}
	good := &Result{Attempts: []*Attempt{{Outcome: OutcomeRotated}}, Checks: 2, Final: ok}
	if good.Failed() {
		t.Error("a clean result fails")
	}
}

// TestTheTableReportsEachViolationForReplay: seed, attempt, plan, what
// Meta held and the labels, and a run stopped on its budget says so.
func TestTheTableReportsEachViolationForReplay(t *testing.T) {
	r := &Result{Seed: 42, Planned: 300, TimedOut: true, Checks: 4, Final: []Final{{Secret: "s", OK: true}},
		Attempts: []*Attempt{{Plan: NewPlan(42, 1, testTargets()), Outcome: OutcomeRecovered, Beyond2N: -1, Violations: 1}},
		Violations: []Violation{{Seed: 42, Attempt: 1, Secret: "flowkey/soak-ids", When: "round 2, after resync", Plan: "attempt 1: the plan",
			Problem: "Meta holds abc for 1, whose private key is in no labelled version", Meta: []string{"1: abc"}, Labels: []string{"v1 [AWSCURRENT] key def"}}},
	}
	var out bytes.Buffer
	r.WriteTable(&out)
	for _, want := range []string{"seed 42: 1 of 300 attempts", "stopped on the time budget", "violations: 1",
		"replay: make soak SOAK_SEED=42 SOAK_ATTEMPTS=1", "plan: attempt 1: the plan", "Meta holds: 1: abc", "versions: v1 [AWSCURRENT] key def", "all attempts"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	if !r.Failed() {
		t.Error("a result with a violation passes")
	}
}
