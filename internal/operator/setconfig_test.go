package operator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func setConfig(t *testing.T, h *harness, config string, dryRun bool) *SetConfigReport {
	t.Helper()
	out, err := h.run(t, Command{Name: CommandSetConfig, Config: config, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	return out.(*SetConfigReport)
}

// writable is the standard state after two clean rotations, as the
// rotation leaves it (AWSPENDING on the current version), with writes
// allowed.
func writable(t *testing.T) *harness {
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	h.standard(t, phones[:3]...)
	return h
}

func (h *harness) stagesOf(v string) []string {
	return slices.Sorted(slices.Values(h.s.Stages[v]))
}

func (h *harness) currentDoc(t *testing.T) *secretdoc.Document {
	t.Helper()
	d, err := secretdoc.Parse([]byte(*h.s.Values[h.s.Holder(rotation.StageCurrent)]))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const newNumbers = `{"phone_number_ids":["106540352242923","106540352242924","106540352242925"],"access_token_secret_id":"` + tokenSecret + `"}`

// The reproduction: writing a new version by hand after a
// rotation left AWSPENDING on what became AWSPREVIOUS, and every later
// RotateSecret failed. set-config keeps the key and the previous key and
// leaves AWSPENDING on no version.
func TestSetConfigWritesTheNewConfigurationAndTheNextRotationStarts(t *testing.T) {
	h := writable(t)
	h.g.Fault("get", phones[0], graphErr("get", phones[0], 503, 131000, 0, true))
	r := setConfig(t, h, newNumbers, false)
	v := configVersionID("v-cur", r.Config)
	if !r.OK || r.Outcome != OutcomeUpdated || r.VersionID != v || r.PreviousVersionID != "v-cur" || r.Fingerprint != keyCur.Fingerprint().String() {
		t.Fatalf("got %+v", r)
	}
	cur := h.currentDoc(t)
	if h.s.Holder(rotation.StageCurrent) != v || cur.Key.FingerprintSHA256 != keyCur.Fingerprint().String() || !slices.Equal(cur.Config.PhoneNumberIDs, []string{phones[1], phones[2], phones[3]}) {
		t.Errorf("AWSCURRENT is %s with key %s and numbers %v", h.s.Holder(rotation.StageCurrent), cur.Key, cur.Config.PhoneNumberIDs)
	}
	for version, want := range map[string][]string{v: {rotation.StageCurrent}, "v-cur": nil, "v-prev": {rotation.StagePrevious}} {
		if got := h.stagesOf(version); !slices.Equal(got, want) {
			t.Errorf("version %s labels %v, want %v", version, got, want)
		}
	}
	// The leaving number keeps what it holds: its read failed, and says so.
	if len(r.Leaving) != 1 || r.Leaving[0].PhoneNumberID != phones[0] || r.Leaving[0].State != StateUnknown || r.Leaving[0].GraphError == nil {
		t.Errorf("leaving %+v", r.Leaving)
	}
	if !slices.Equal(r.Joining, []string{phones[3]}) {
		t.Errorf("joining %v", r.Joining)
	}
	for _, s := range []string{"Leaving flowkey's management: " + phones[0], "Joining: " + phones[3], `{"command":"resync"}`, "the next rotation starts cleanly"} {
		if !strings.Contains(r.Message, s) {
			t.Errorf("message lacks %q:\n%s", s, r.Message)
		}
	}
	if up, gets := h.g.Counts(); len(up) != 0 || len(gets) != 1 || gets[phones[0]] != 1 {
		t.Errorf("Graph calls: uploads %v, gets %v; want one read of the leaving number", up, gets)
	}
	if _, err := h.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(h.arn), RotateImmediately: aws.Bool(true)}); err != nil {
		t.Errorf("the next rotation does not start: %v", err)
	}
}

func TestSetConfigIsIdempotentAndItsDryRunWritesNothing(t *testing.T) {
	h := writable(t)
	before := h.sm.Snapshot(h.arn)
	dry := setConfig(t, h, newNumbers, true)
	if !dry.OK || dry.Outcome != OutcomeDryRun || !dry.DryRun || dry.VersionID != configVersionID("v-cur", dry.Config) || !slices.Equal(dry.Joining, []string{phones[3]}) {
		t.Fatalf("dry run: %+v", dry)
	}
	if len(h.sm.Writes()) != 0 || h.sm.Snapshot(h.arn) != before {
		t.Fatalf("a dry run wrote: %v", h.sm.Writes())
	}
	r := setConfig(t, h, newNumbers, false)
	if r.VersionID != dry.VersionID {
		t.Errorf("wrote %s, the dry run said %s", r.VersionID, dry.VersionID)
	}
	after, writes := h.sm.Snapshot(h.arn), len(h.sm.Writes())
	again := setConfig(t, h, newNumbers, false)
	if !again.OK || again.Outcome != OutcomeUnchanged || again.VersionID != r.VersionID || h.sm.Snapshot(h.arn) != after || len(h.sm.Writes()) != writes {
		t.Errorf("a retried set-config: %+v; writes %v", again, h.sm.Writes()[writes:])
	}
}

// Every write is one step of a sequence that a set-config run again
// finishes, wherever the first stopped.
func TestSetConfigRunAgainFinishesAHalfDoneOne(t *testing.T) {
	for stop := 1; stop <= 4; stop++ {
		h := writable(t)
		for range stop - 1 {
			h.sm.FailNext("UpdateSecretVersionStage", nil)
		}
		if stop == 3 {
			// PutSecretValue is between the second and third label move;
			// fail it instead of the third move.
			h.sm.FailNext("PutSecretValue", errors.New("connection reset"))
		} else {
			h.sm.FailNext("UpdateSecretVersionStage", errors.New("connection reset"))
		}
		if _, err := h.run(t, Command{Name: CommandSetConfig, Config: newNumbers}); err == nil || !strings.Contains(err.Error(), "set-config again") {
			t.Fatalf("stop %d: want an error that says to send set-config again, got %v", stop, err)
		}
		r := setConfig(t, h, newNumbers, false)
		v := configVersionID("v-cur", r.Config)
		if !r.OK || h.s.Holder(rotation.StageCurrent) != v {
			t.Fatalf("stop %d: after the second run %+v, AWSCURRENT on %s", stop, r, h.s.Holder(rotation.StageCurrent))
		}
		for version, want := range map[string][]string{v: {rotation.StageCurrent}, "v-cur": nil, "v-prev": {rotation.StagePrevious}} {
			if got := h.stagesOf(version); !slices.Equal(got, want) {
				t.Errorf("stop %d: version %s labels %v, want %v", stop, version, got, want)
			}
		}
	}
}

// A mark left by a set-config that stopped before a rotation since is
// stale: AWSPREVIOUS then holds another key and stays.
func TestSetConfigDropsAStaleMarkWithoutMovingAWSPREVIOUS(t *testing.T) {
	h := writable(t)
	h.sm.Put(h.s, "v-old", h.doc(t, keyForeign), PreviousKeyStage)
	r := setConfig(t, h, `{"phone_number_ids":["106540352242922","106540352242923","106540352242924"],"access_token_secret_id":"`+tokenSecret+`"}`, false)
	if r.Outcome != OutcomeUnchanged {
		t.Fatalf("got %+v", r)
	}
	if got := h.stagesOf("v-old"); len(got) != 0 {
		t.Errorf("v-old labels %v, want the mark gone", got)
	}
	if h.s.Holder(rotation.StagePrevious) != "v-prev" {
		t.Errorf("AWSPREVIOUS on %s, want v-prev", h.s.Holder(rotation.StagePrevious))
	}
}

// Secrets Manager ignores a repeated PutSecretValue, labels included: if
// AWSCURRENT went back to the old version by hand, set-config moves it.
func TestSetConfigMovesAWSCURRENTWhenItsVersionAlreadyExists(t *testing.T) {
	h := writable(t)
	v := setConfig(t, h, newNumbers, false).VersionID
	h.sm.Put(h.s, "v-cur", h.s.Values["v-cur"], rotation.StageCurrent)
	r := setConfig(t, h, newNumbers, false)
	if r.VersionID != v || h.s.Holder(rotation.StageCurrent) != v || h.s.Holder(rotation.StagePrevious) != "v-prev" {
		t.Errorf("got %+v; AWSCURRENT on %s, AWSPREVIOUS on %s", r, h.s.Holder(rotation.StageCurrent), h.s.Holder(rotation.StagePrevious))
	}
}

// A version written during an incomplete rotation makes Secrets Manager
// abandon it, and its key may be at Meta: set-config refuses.
func TestSetConfigRefusesDuringAnIncompleteRotation(t *testing.T) {
	for _, dry := range []bool{false, true} {
		h := writable(t)
		h.pending(t, "v-pend", keyPend)
		r := setConfig(t, h, newNumbers, dry)
		if r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, "AWSPENDING is on version v-pend") || !strings.Contains(r.Message, `{"command":"rotate"}`) {
			t.Errorf("dry_run=%v: %+v", dry, r)
		}
		if w := h.sm.Writes(); len(w) != 0 {
			t.Errorf("dry_run=%v: writes %v", dry, w)
		}
	}
}

func TestSetConfigOnAConfigurationOnlySecret(t *testing.T) {
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	h.sm.Put(h.s, "v0", h.doc(t, nil), rotation.StageCurrent)
	h.g.Set(phones[0], " ", graph.StatusMismatch) // as Meta shows a number that never got a key
	r := setConfig(t, h, newNumbers, false)
	if !r.OK || r.Outcome != OutcomeUpdated || r.Fingerprint != "" || h.currentDoc(t).Key != nil {
		t.Fatalf("got %+v", r)
	}
	if n := r.Leaving; len(n) != 1 || n[0].State != StateUnknown {
		t.Errorf("leaving %+v, want the number that never got a key, unknown", n)
	}
}

func TestSetConfigInWABAModeReportsTheNumbersTheWABAAddsAndRefusesAnEmptySelection(t *testing.T) {
	h := writable(t)
	h.g.AddWABA(graph.PhoneNumber{ID: phones[1]}, graph.PhoneNumber{ID: phones[4]})
	r := setConfig(t, h, `{"waba_id":"`+wabaID+`","access_token_secret_id":"`+tokenSecret+`"}`, true)
	if !slices.Equal(r.Joining, []string{phones[4]}) || len(r.Leaving) != 2 {
		t.Errorf("joining %v leaving %+v", r.Joining, r.Leaving)
	}
	r = setConfig(t, h, `{"waba_id":"`+wabaID+`","include_phone_number_ids":["`+phones[3]+`"],"access_token_secret_id":"`+tokenSecret+`"}`, false)
	if r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, "no phone numbers left") || len(h.sm.Writes()) != 0 {
		t.Errorf("an empty selection: %+v, writes %v", r, h.sm.Writes())
	}
}
