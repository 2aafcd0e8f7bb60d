package stack_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/keypair"
	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// The two reproductions end to end, through the RIE: in both an
// operator followed flowkey's own advice and stranded a key. Now rotate
// resumes the rotation, never clears AWSPENDING from a version with a key,
// status is never healthy meanwhile, and once the cause is fixed the same
// pending key completes.

// lastSeq is the sequence number of the emulator's last event.
func (e *env) lastSeq() int64 {
	evs := e.Secrets.Events("")
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// waitRun waits for the end of a run of rotation token recorded after seq:
// a resumed rotation has the token of the runs before it.
func (e *env) waitRun(t *testing.T, token string, seq int64) secretsemu.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ev, err := e.Secrets.WaitEvent(ctx, func(ev secretsemu.Event) bool {
		return ev.Seq > seq && ev.Token == token &&
			(ev.Type == secretsemu.RotationSucceeded || ev.Type == secretsemu.RotationFailed && ev.Final || ev.Type == secretsemu.RotationAbandoned)
	})
	if err != nil {
		t.Fatalf("waiting for the run of %s after event %d: %v", token, seq, err)
	}
	return ev
}

// pendingKey is the fingerprint of the key the version token stores.
func (e *env) pendingKey(t *testing.T, token string) string {
	t.Helper()
	out, err := e.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.arn), VersionId: aws.String(token)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString)))
	if err != nil || d.Key == nil {
		t.Fatalf("version %s: %v, key %v", token, err, d)
	}
	return d.Key.FingerprintSHA256
}

func (e *env) labels(t *testing.T, version string) []string {
	t.Helper()
	d, err := e.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(slices.Values(d.VersionIdsToStages[version]))
}

// resume sends rotate during an incomplete rotation and checks that it
// resumed it without ever advising to remove AWSPENDING.
func (e *env) resume(t *testing.T, token string) operator.RotateReport {
	t.Helper()
	var r operator.RotateReport
	if msg := e.invoke(t, `{"command":"rotate"}`, &r); msg != "" {
		t.Fatalf("rotate: %s", msg)
	}
	if !r.OK || r.Outcome != operator.OutcomeResumed || r.VersionID != token || r.PendingVersionID != token {
		t.Fatalf("rotate during the incomplete rotation: %+v", r)
	}
	if all := r.Message + strings.Join(r.Advice, " "); strings.Contains(all, "--remove-from-version-id") {
		t.Errorf("rotate advises removing AWSPENDING from a version with a key:\n%s", all)
	}
	return r
}

// fixedAndCompleted: once the cause is gone, rotate resumes the rotation
// again and the same pending key becomes AWSCURRENT on every number.
func (e *env) fixedAndCompleted(t *testing.T, token, pendingFP string) {
	t.Helper()
	seq := e.lastSeq()
	e.resume(t, token)
	if ev := e.waitRun(t, token, seq); ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("the resumed rotation after the fix: %+v", ev)
	}
	if got := e.doc(t, "AWSCURRENT").Key.FingerprintSHA256; got != pendingFP {
		t.Errorf("AWSCURRENT holds %.16s, want the pending key %.16s", got, pendingFP)
	}
	e.assertAllHold(t, pendingFP)
	if got, want := e.labels(t, token), []string{"AWSCURRENT", "FLOWKEY_VERIFIED"}; !slices.Equal(got, want) {
		t.Errorf("version %s labels %v, want %v", token, got, want)
	}
	if s := e.status(t); !s.OK || s.Overall != operator.Healthy {
		t.Errorf("status after the completed rotation: %s %q", s.Overall, s.Reasons)
	}
	e.checkInvariants(t, "")
}

// Reproduction 1: the first rotation runs with MISMATCH forced on every
// number and fails at testSecret. Every number holds the pending key, but
// reads MISMATCH with a blank key.
func TestRecoveryFromAFirstRotationThatFailedUnderMismatch(t *testing.T) {
	e := start(t, setup{fnEnv: map[string]string{"VERIFY_TIMEOUT": "2s"}})
	if err := e.Graph.SetMismatch("", true); err != nil {
		t.Fatal(err)
	}
	token, _ := e.rotateFails(t, "testSecret", "MISMATCH")
	pendingFP := e.pendingKey(t, token)
	e.assertAllHold(t, pendingFP)

	s := e.status(t)
	if s.OK || s.Overall != operator.RotationIncomplete || s.Unknown != len(e.PhoneNumberIDs()) {
		t.Errorf("status: ok %v overall %s unknown %d", s.OK, s.Overall, s.Unknown)
	}
	// A new configuration would make Secrets Manager abandon the rotation.
	var sc operator.SetConfigReport
	if msg := e.invoke(t, `{"command":"set-config","config":{"phone_number_ids":["`+e.PhoneNumberIDs()[0]+`"]}}`, &sc); msg != "" || sc.OK || sc.Outcome != operator.OutcomeRefused {
		t.Errorf("set-config during the incomplete rotation: %s %+v", msg, sc)
	}

	seq := e.lastSeq()
	r := e.resume(t, token)
	if len(r.Unknown) != len(e.PhoneNumberIDs()) {
		t.Errorf("numbers_unknown %v, want every number", r.Unknown)
	}
	// MISMATCH is still forced: the resumed rotation fails the same way.
	if ev := e.waitRun(t, token, seq); ev.Type != secretsemu.RotationFailed {
		t.Fatalf("the resumed rotation with MISMATCH still on: %+v", ev)
	}
	e.checkInvariants(t, token)

	if err := e.Graph.SetMismatch("", false); err != nil {
		t.Fatal(err)
	}
	e.fixedAndCompleted(t, token, pendingFP)
}

// Reproduction 2: after a first rotation, Meta's GET lags (it shows the
// key held before the upload) and every number's second upload gets 80007
// (access regained in 30 min), so testSecret fails and its rollback is
// refused. Every number holds the pending key and reads the AWSCURRENT one.
func TestRecoveryFromARefusedRollbackBehindALaggingGET(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	current := e.doc(t, "AWSCURRENT").Key
	// The lag, scripted as its answer so that it lasts exactly as long as
	// the test: what Meta held before the upload.
	pem, _ := json.Marshal(current.PublicKeyPEM)
	lagging := `{"data":[{"business_public_key":` + string(pem) + `,"business_public_key_signature_status":"VALID"}]}`
	if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpGet, Kind: graphsim.FaultMalformed, Body: lagging, Times: graphsim.Forever}); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.PhoneNumberIDs() {
		if _, err := e.Graph.AddFault(graphsim.Fault{Op: graphsim.OpUpload, Object: p, Kind: graphsim.FaultGraphError, Code: 80007,
			RegainAccess: 30 * time.Minute, Times: graphsim.Forever, After: 1}); err != nil {
			t.Fatal(err)
		}
	}
	token, _ := e.rotateFails(t, "testSecret", "80007", "Could not put the AWSCURRENT key back")
	pendingFP := e.pendingKey(t, token)
	e.assertAllHold(t, pendingFP)

	s := e.status(t)
	if s.OK || s.Overall != operator.RotationIncomplete {
		t.Errorf("status: ok %v overall %s, want rotation_incomplete", s.OK, s.Overall)
	}
	for _, n := range s.Numbers {
		if n.Matches != "AWSCURRENT" {
			t.Errorf("%s reads %s; the scripted lag shows AWSCURRENT", n.PhoneNumberID, n.Matches)
		}
	}

	seq := e.lastSeq()
	r := e.resume(t, token)
	if len(r.HoldingPending) != 0 || !strings.Contains(r.Message, "a read may lag behind an upload of the pending key") {
		t.Errorf("rotate report: holding %v, message %s", r.HoldingPending, r.Message)
	}
	if ev := e.waitRun(t, token, seq); ev.Type != secretsemu.RotationFailed {
		t.Fatalf("the resumed rotation with the faults still on: %+v", ev)
	}
	e.checkInvariants(t, token)

	e.Graph.ClearFaults()
	e.fixedAndCompleted(t, token, pendingFP)
}

// The cause is the token: the rotation fails at its first upload. Once the
// right token is back, rotate resumes it and its key completes.
func TestRecoveryAfterTheTokenIsFixed(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	putToken := func(v string) {
		t.Helper()
		if _, err := e.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(stack.TokenSecretName), SecretString: aws.String(v),
		}); err != nil {
			t.Fatal(err)
		}
	}
	putToken("EAAG-revoked-token")
	token, _ := e.rotateFails(t, "setSecret", "graph code 190")
	pendingFP := e.pendingKey(t, token)
	putToken("flowkey-local-token") // the stack's default GraphToken
	e.fixedAndCompleted(t, token, pendingFP)
}

// A rotation whose createSecret never stored a key (local-kms down) left a
// pending version with no value: rotate clears it itself and starts anew.
func TestRotateClearsARotationThatNeverStoredAKey(t *testing.T) {
	e := start(t, setup{})
	e.rotateOK(t)
	e.StopKMS()
	stuck, _ := e.rotateFails(t, "createSecret")
	if err := e.StartKMS(context.Background()); err != nil {
		t.Fatal(err)
	}
	var r operator.RotateReport
	if msg := e.invoke(t, `{"command":"rotate"}`, &r); msg != "" {
		t.Fatalf("rotate: %s", msg)
	}
	if !r.OK || r.Outcome != operator.OutcomeStarted || r.ClearedVersionID != stuck || r.VersionID == stuck {
		t.Fatalf("rotate report %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ev, err := e.WaitRotation(ctx, e.arn, r.VersionID); err != nil || ev.Type != secretsemu.RotationSucceeded {
		t.Fatalf("the new rotation: %v %+v", err, ev)
	}
	if got := e.labels(t, stuck); len(got) != 0 {
		t.Errorf("the cleared version keeps %v", got)
	}
	e.assertAllHold(t, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, r.VersionID)
}

// set-config through the RIE: the key and the previous key stay, no
// version keeps AWSPENDING, and the next rotation starts cleanly.
func TestSetConfigThenTheNextRotationStarts(t *testing.T) {
	e := start(t, setup{phones: 4})
	e.rotateOK(t)
	e.rotateOK(t)
	prev, cur := e.doc(t, "AWSPREVIOUS").Key.FingerprintSHA256, e.doc(t, "AWSCURRENT").Key.FingerprintSHA256
	phones := e.PhoneNumberIDs()
	cfg, _ := json.Marshal(map[string]any{"command": "set-config", "config": map[string]any{"phone_number_ids": phones[1:]}})

	before := e.labelsAll(t)
	e.Graph.ResetCounters()
	var dry operator.SetConfigReport
	if msg := e.invoke(t, strings.Replace(string(cfg), `"command"`, `"dry_run":true,"command"`, 1), &dry); msg != "" || !dry.OK || dry.Outcome != operator.OutcomeDryRun {
		t.Fatalf("dry run: %s %+v", msg, dry)
	}
	if after := e.labelsAll(t); !equalLabels(before, after) {
		t.Errorf("a dry run changed the labels: %v -> %v", before, after)
	}
	var r operator.SetConfigReport
	if msg := e.invoke(t, string(cfg), &r); msg != "" || !r.OK || r.Outcome != operator.OutcomeUpdated || r.VersionID != dry.VersionID {
		t.Fatalf("set-config: %s %+v", msg, r)
	}
	if len(r.Leaving) != 1 || r.Leaving[0].PhoneNumberID != phones[0] || r.Leaving[0].Matches != "AWSCURRENT" || len(r.Joining) != 0 {
		t.Errorf("leaving %+v joining %v", r.Leaving, r.Joining)
	}
	if c := e.Graph.Calls(); c.Upload != 0 {
		t.Errorf("set-config uploaded %d keys", c.Upload)
	}
	if got := e.doc(t, "AWSCURRENT"); got.Key.FingerprintSHA256 != cur || !slices.Equal(got.Config.PhoneNumberIDs, phones[1:]) {
		t.Errorf("AWSCURRENT holds key %.16s and numbers %v", got.Key.FingerprintSHA256, got.Config.PhoneNumberIDs)
	}
	if got := e.doc(t, "AWSPREVIOUS").Key.FingerprintSHA256; got != prev {
		t.Errorf("AWSPREVIOUS holds %.16s, want the previous key %.16s", got, prev)
	}
	for v, l := range e.labelsAll(t) {
		if slices.Contains(l, "AWSPENDING") {
			t.Errorf("version %s keeps AWSPENDING (%v)", v, l)
		}
	}

	// The number that left is moved to another business; the next rotation
	// starts and covers the three that stay.
	if err := e.Graph.RemovePhoneNumber(phones[0]); err != nil {
		t.Fatal(err)
	}
	e.Graph.ResetCounters()
	token := e.rotateOK(t)
	if c := e.Graph.Calls(); c.Upload != 3 || c.Of(phones[0]).Total() != 0 {
		t.Errorf("the rotation after set-config: %+v", c.OpCounts)
	}
	e.assertHold(t, phones[1:], e.doc(t, "AWSCURRENT").Key.FingerprintSHA256)
	e.checkInvariants(t, token)
}

func (e *env) labelsAll(t *testing.T) map[string][]string {
	t.Helper()
	d, err := e.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(e.arn)})
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionIdsToStages
}

func equalLabels(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(slices.Sorted(slices.Values(v)), slices.Sorted(slices.Values(b[k]))) {
			return false
		}
	}
	return true
}

func (e *env) assertHold(t *testing.T, phones []string, fingerprint string) {
	t.Helper()
	keys := e.Graph.Keys()
	for _, p := range phones {
		if der := keys[p]; len(der) == 0 || keypairFingerprint(der) != fingerprint {
			t.Errorf("%s does not hold %.16s", p, fingerprint)
		}
	}
}

func keypairFingerprint(der []byte) string { return keypair.FingerprintOf(der).String() }
