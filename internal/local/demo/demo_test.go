package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// binaries are built once by TestMain and only read afterwards.
var binaries stack.Binaries

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if mode := os.Getenv(helperEnv); mode != "" {
		return helper(mode)
	}
	b, remove, err := stack.BuildTemp(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "the demo tests need the bootstrap, local-kms and the RIE:", err)
		return 1
	}
	defer remove()
	binaries = b
	return m.Run()
}

// leftovers lists the live processes that are this test process's
// children or run one of the built binaries (the RIE's bootstrap is a
// grandchild).
func leftovers(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// A zombie is already dead; only its parent's wait is missing.
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if f[1] == strconv.Itoa(os.Getpid()) || strings.HasPrefix(exe, filepath.Dir(binaries.Bootstrap)+"/") {
			out = append(out, e.Name()+" "+exe)
		}
	}
	return out
}

// checkStopped asserts that Run left no process and no listener behind.
func checkStopped(t *testing.T, lst *stack.Stack) {
	t.Helper()
	if kids := leftovers(t); len(kids) > 0 {
		t.Errorf("processes still running after Run returned: %v", kids)
	}
	for name, u := range map[string]string{"local-kms": lst.KMSURL, "KMS proxy": lst.KMSProxyURL, "Graph simulator": lst.GraphURL, "Secrets Manager": lst.SecretsURL,
		"Flows endpoint": lst.EndpointURL, "sample backend": lst.BackendURL, "endpoint RIE": lst.EndpointInvoker.BaseURL} {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s at %s still accepts connections after Run returned", name, u)
		}
	}
}

func checkNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, leak := range []string{"flowkey-local-token", "PRIVATE KEY"} {
		if strings.Contains(text, leak) {
			t.Errorf("%s contains %q", where, leak)
		}
	}
}

func TestRunRotatesTwiceAndReportsWhoHoldsWhichKey(t *testing.T) {
	var out bytes.Buffer
	logs := &logbuf.Buffer{}
	var lst, custodyStack *stack.Stack
	// What Meta holds when the tables are printed, before the traffic's
	// rotations.
	var keys map[string][]byte
	err := Run(context.Background(), Options{
		Binaries: binaries, Dir: t.TempDir(), Out: &out, Logs: logs,
		Prepare:       func(_ context.Context, s *stack.Stack) error { lst = s; return nil },
		BeforeTraffic: func(_ context.Context, s *stack.Stack) error { keys = s.Graph.Keys(); return nil },
		BeforeCustody: func(_ context.Context, s *stack.Stack) error { custodyStack = s; return nil },
	})
	report := out.String()
	if err != nil {
		t.Fatalf("Run: %v\nreport:\n%s", err, report)
	}
	checkStopped(t, lst)
	checkStopped(t, custodyStack)
	checkNoSecrets(t, "the report", report)
	checkNoSecrets(t, "the logs", logs.String())
	if !strings.Contains(logs.String(), `"step":"createSecret"`) && !strings.Contains(logs.String(), `createSecret`) {
		t.Errorf("the logs do not hold the function's output:\n%s", logs.String())
	}

	for n := 1; n <= 2; n++ {
		if !strings.Contains(report, fmt.Sprintf("Rotation %d:", n)) {
			t.Errorf("the report has no timeline for rotation %d", n)
		}
	}
	okSteps := regexp.MustCompile(`(?m)^ +\+\d+ms +(createSecret|setSecret|testSecret|finishSecret) +ok +\d+ms`).FindAllString(report, -1)
	if len(okSteps) != 8 {
		t.Errorf("%d successful step lines, want 8 (4 steps, 2 rotations):\n%s", len(okSteps), report)
	}
	if got := strings.Count(report, "RotationSucceeded after"); got != 2 {
		t.Errorf("%d rotations reported as succeeded, want 2", got)
	}
	if got := len(regexp.MustCompile(`(?m) setSecret +ok .* Graph: 3 uploads$`).FindAllString(report, -1)); got != 2 {
		t.Errorf("%d setSecret lines show 3 uploads, want 2:\n%s", got, report)
	}
	if got := len(regexp.MustCompile(`(?m) testSecret +ok .* Graph: 3 reads$`).FindAllString(report, -1)); got != 2 {
		t.Errorf("%d testSecret lines show 3 reads, want 2:\n%s", got, report)
	}
	if got := strings.Count(report, "Graph calls: 3 uploads, 3 reads"); got != 2 {
		t.Errorf("%d rotations report 3 uploads and 3 reads, want 2:\n%s", got, report)
	}

	// Every number's row names the key Meta really holds, held by AWSCURRENT.
	if len(keys) != 3 {
		t.Fatalf("Meta holds keys for %d numbers, want 3", len(keys))
	}
	var fp string
	for phone, der := range keys {
		fp = keypair.FingerprintOf(der).String()[:16]
		row := regexp.MustCompile(`(?m)^  ` + phone + ` .*$`).FindString(report)
		if !strings.Contains(row, fp) || !strings.Contains(row, "VALID") || !strings.Contains(row, "AWSCURRENT") {
			t.Errorf("row for %s = %q, want key %s, VALID, AWSCURRENT", phone, row, fp)
		}
	}
	// The versions table shows the previous key on AWSPREVIOUS and the
	// configuration-only first version without a label. finishSecret
	// leaves AWSPENDING on no version.
	if !regexp.MustCompile(`(?m)^  \S+ +AWSCURRENT\+FLOWKEY_VERIFIED +` + fp).MatchString(report) {
		t.Errorf("the versions table does not show %s as AWSCURRENT+FLOWKEY_VERIFIED:\n%s", fp, report)
	}
	if strings.Contains(report, "AWSCURRENT+AWSPENDING") {
		t.Errorf("AWSPENDING stays on the current version:\n%s", report)
	}
	if !regexp.MustCompile(`(?m)^  \S+ +AWSPREVIOUS +[0-9a-f]{16} `).MatchString(report) {
		t.Errorf("the versions table shows no AWSPREVIOUS key:\n%s", report)
	}
	if !regexp.MustCompile(`(?m)^  \S+ +AWSCURRENT\S* +[0-9a-f]{16} .*\n  \S+ +AWSPREVIOUS +[0-9a-f]{16} .*\n  \S+ +no label +\(configuration only\)`).MatchString(report) {
		t.Errorf("the versions table does not list AWSCURRENT, AWSPREVIOUS, then the configuration-only first version:\n%s", report)
	}
	checkTrafficPart(t, report)
	checkCustodyPart(t, report)
	if strings.Contains(logs.String(), lst.AppSecret) || strings.Contains(logs.String(), custodyStack.AppSecret) {
		t.Error("the logs contain the app secret")
	}
}

// checkTrafficPart checks the third part: a row per phase, none with a
// user-visible failure, the 421s of the quick succession, one RSA
// operation per request in the steady state.
func checkTrafficPart(t *testing.T, report string) {
	t.Helper()
	part := report[max(strings.Index(report, "\nTraffic through the Flows endpoint"), 0):]
	if !strings.HasPrefix(part, "\nTraffic") || !regexp.MustCompile(`(?m)^  PHASE +REQUESTS +421s +RETRIES +USER-VISIBLE FAILURES`).MatchString(part) {
		t.Fatalf("the report has no traffic table:\n%s", report)
	}
	for _, name := range []string{"steady state", "clean rotation", "two rotations in quick succession", "rotation while Graph lags 1s", "rotation failing in testSecret, rolled back"} {
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+\.\d\d) +\S`).FindStringSubmatch(part)
		if m == nil {
			t.Errorf("no row for %q:\n%s", name, part)
			continue
		}
		if m[1] == "0" || m[4] != "0" {
			t.Errorf("%s: %s requests, %s user-visible failures; want some requests and no failure", name, m[1], m[4])
		}
		if name == "steady state" && m[7] != "1.00" {
			t.Errorf("steady state costs %s RSA operations per request, want 1.00", m[7])
		}
		if name == "two rotations in quick succession" && m[2] == "0" {
			t.Errorf("no 421 in the quick succession: no client was left on the key in no label")
		}
	}
	if !regexp.MustCompile(`(?m)^ok: \d+ requests through the endpoint across 5 more rotations, one of them failed and rolled back; 0 user-visible failures$`).MatchString(part) {
		t.Errorf("the traffic part does not end with its ok line:\n%s", part)
	}
}

// checkCustodyPart checks the fourth part: a row per phase with the KMS
// column, none with a user-visible failure, kms:Decrypt in the phases of
// KMS custody and none in PEM custody's, the secret's three KMS keys with
// the first one retired, and its ok line.
func checkCustodyPart(t *testing.T, report string) {
	t.Helper()
	i := strings.Index(report, "\nKMS custody: the private key never leaves KMS")
	if i < 0 {
		t.Fatalf("the report has no KMS custody part:\n%s", report)
	}
	part := report[i:]
	if !regexp.MustCompile(`(?m)^  PHASE +REQUESTS +421s .* RSA OPS/REQUEST +KMS DECRYPTS/REQUEST +DECRYPTED WITH$`).MatchString(part) {
		t.Fatalf("the KMS custody part has no table with KMS DECRYPTS/REQUEST:\n%s", part)
	}
	for name, kms := range map[string]string{
		"steady state, PEM custody": "0.00", "PEM custody to KMS custody, then a rotation": "", "KMS throttles 1 in 2 kms:Decrypt, 30 times": "",
		"steady state, KMS custody (24 new clients)": "", "clean rotation, retiring the first KMS key": "",
	} {
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + ` +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+\.\d\d) +(\d+\.\d\d) +\S`).FindStringSubmatch(part)
		switch {
		case m == nil:
			t.Errorf("no row for %q:\n%s", name, part)
		case m[1] == "0" || m[4] != "0":
			t.Errorf("%s: %s requests, %s user-visible failures; want some requests and no failure", name, m[1], m[4])
		case kms != "" && m[8] != kms, kms == "" && m[8] == "0.00":
			t.Errorf("%s: %s kms:Decrypt per request", name, m[8])
		}
	}
	if got := len(regexp.MustCompile(`(?m)^  [0-9a-f]{8} +[0-9a-f]{8} +Enabled +AWS`).FindAllString(part, -1)); got != 2 {
		t.Errorf("%d enabled, labelled KMS keys listed, want 2:\n%s", got, part)
	}
	if !regexp.MustCompile(`(?m)^  [0-9a-f]{8} +[0-9a-f]{8} +PendingDeletion, deleted on \d{4}-\d\d-\d\d +no label: retired$`).MatchString(part) {
		t.Errorf("no retired KMS key listed:\n%s", part)
	}
	if !regexp.MustCompile(`(?m)^ok: \d+ requests through the endpoint from PEM custody into KMS custody across 3 rotations and KMS throttling; 0 user-visible failures$`).MatchString(part) {
		t.Errorf("the KMS custody part does not end with its ok line:\n%s", part)
	}
}

// The simulator's request log holds the latest 512 calls: beyond that the
// timeline must not show per-step counts that miss calls. A secret covers
// at most 100 numbers, so a clean rotation (200 calls) fits the log; two
// failed attempts before the one that succeeds, each with its rollback,
// do not.
func TestRunOmitsPerStepCountsItCannotKnow(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Binaries: binaries, Dir: t.TempDir(), Out: &out, PhoneNumbers: secretdoc.MaxPhoneNumbers, Rotations: 2, NoTraffic: true,
		Prepare: func(_ context.Context, s *stack.Stack) error {
			// Rotation 1 goes through; Meta refuses the last number's upload
			// in the first two attempts of rotation 2.
			phones := s.PhoneNumberIDs()
			_, err := s.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: phones[len(phones)-1],
				Kind: graphsim.FaultGraphError, Code: 100, After: 1, Times: 2})
			return err
		},
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	report := out.String()
	i := strings.Index(report, "\nRotation 2:")
	if i < 0 {
		t.Fatalf("no rotation 2 in the report:\n%s", report)
	}
	second := report[i:]
	m := regexp.MustCompile(`RotationSucceeded after \S+; Graph calls: (\d+) uploads, (\d+) reads`).FindStringSubmatch(second)
	if m == nil || !strings.Contains(second, "too many Graph calls to split by step") {
		t.Fatalf("rotation 2 does not give its total and say why steps have no counts:\n%s", second)
	}
	t.Logf("rotation 2: %s uploads, %s reads", m[1], m[2])
	if up, reads := atoi(t, m[1]), atoi(t, m[2]); up+reads <= 512 || up < 3*secretdoc.MaxPhoneNumbers {
		t.Errorf("rotation 2 made %d uploads and %d reads; the test needs more than the log's 512 calls", up, reads)
	}
	if regexp.MustCompile(`(?m)^ +\+\d+ms .*Graph: `).MatchString(second) {
		t.Errorf("the timeline shows per-step counts from an incomplete log:\n%s", second)
	}
	if !strings.Contains(second, "(attempt 3)") {
		t.Errorf("rotation 2 did not succeed on its third attempt:\n%s", second)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A secret covers at most 100 numbers: the demo says so before it rotates.
func TestRunRefusesMoreNumbersThanOneSecretMayCover(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Binaries: binaries, Dir: t.TempDir(), Out: &out, PhoneNumbers: secretdoc.MaxPhoneNumbers + 1})
	if err == nil || !strings.Contains(err.Error(), "config.phone_number_ids: lists 101 phone numbers, more than the 100 one secret may cover") {
		t.Fatalf("Run = %v, want the limit of phone numbers per secret\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "Rotation 1:") {
		t.Errorf("Run rotated although the secret could not be created:\n%s", out.String())
	}
}

func TestRunFailsWhenMetaRefusesTheKey(t *testing.T) {
	var out bytes.Buffer
	var lst *stack.Stack
	err := Run(context.Background(), Options{
		Binaries: binaries, Dir: t.TempDir(), Out: &out,
		Prepare: func(_ context.Context, s *stack.Stack) error {
			lst = s
			_, err := s.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: s.PhoneNumberIDs()[1],
				Kind: graphsim.FaultGraphError, Code: 100, Times: graphsim.Forever})
			return err
		},
	})
	var rerr *RotationError
	if !errors.As(err, &rerr) {
		t.Fatalf("Run = %v, want a *RotationError\nreport:\n%s", err, out.String())
	}
	if rerr.N != 1 || rerr.Event.Type != secretsemu.RotationFailed {
		t.Errorf("RotationError = rotation %d, %s; want rotation 1, RotationFailed", rerr.N, rerr.Event.Type)
	}
	checkStopped(t, lst)
	checkNoSecrets(t, "the error", err.Error())
	checkNoSecrets(t, "the report", out.String())
	if !regexp.MustCompile(`(?m)^ +\+\d+ms +setSecret +FAILED `).MatchString(out.String()) {
		t.Errorf("the timeline does not show setSecret FAILED:\n%s", out.String())
	}
	// As AWS does, the local stack reattempts the whole rotation: 3 attempts.
	if !regexp.MustCompile(`(?m)^ +\+\d+ms +setSecret \(attempt 3\) +FAILED `).MatchString(out.String()) || strings.Contains(out.String(), "(attempt 4)") {
		t.Errorf("the timeline does not show exactly 3 attempts of the rotation:\n%s", out.String())
	}
	if rerr.Event.Attempt != 3 || !rerr.Event.Final {
		t.Errorf("the rotation ended after attempt %d (final %v), want the final failure of attempt 3", rerr.Event.Attempt, rerr.Event.Final)
	}
	// The tables still tell where each key is: the new key stays in
	// AWSPENDING, as the first rotation has no AWSCURRENT key to go back to.
	if !regexp.MustCompile(`(?m)^  ` + lst.PhoneNumberIDs()[0] + ` .* AWSPENDING \(`).MatchString(out.String()) {
		t.Errorf("the report does not show the first number's key held by AWSPENDING:\n%s", out.String())
	}
	if !strings.Contains(err.Error(), "not AWSCURRENT") {
		t.Errorf("the error %q does not also say the end state is wrong", err)
	}
	if strings.Contains(out.String(), "Rotation 2:") {
		t.Errorf("Run went on to a second rotation after the first failed:\n%s", out.String())
	}
}

func TestRunStopsEverythingWhenCancelledMidRotation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	var lst *stack.Stack
	err := Run(ctx, Options{
		Binaries: binaries, Dir: t.TempDir(), Out: &out,
		Prepare: func(ctx context.Context, s *stack.Stack) error {
			lst = s
			// The upload hangs, as if Meta did not answer; Ctrl-C comes
			// while setSecret waits for it.
			if _, err := s.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Kind: graphsim.FaultDelay, Delay: time.Hour, Times: graphsim.Forever}); err != nil {
				return err
			}
			go func() {
				defer cancel()
				// The simulator has no hook for "a call arrived": poll its
				// counters, bounded.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				deadline := time.After(30 * time.Second)
				for s.Graph.Calls().Upload == 0 {
					select {
					case <-tick.C:
					case <-deadline:
						t.Error("no upload reached the Graph simulator within 30s")
						return
					case <-ctx.Done():
						return
					}
				}
			}()
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled\nreport:\n%s", err, out.String())
	}
	if lst.Graph.Calls().Upload == 0 {
		t.Fatal("Run ended before setSecret reached Meta, so this test proved nothing")
	}
	checkStopped(t, lst)
}

func TestRunNeedsOutAndDir(t *testing.T) {
	for _, o := range []Options{{Binaries: binaries, Dir: t.TempDir()}, {Binaries: binaries, Out: &bytes.Buffer{}}} {
		if err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "Options.Out and Options.Dir") {
			t.Errorf("Run(%+v) = %v, want an error naming Options.Out and Options.Dir", o, err)
		}
	}
}
