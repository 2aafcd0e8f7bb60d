package demo

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(typ secretsemu.EventType, attempt int, step string, ms, durMS int, errText string) secretsemu.Event {
		return secretsemu.Event{Type: typ, Attempt: attempt, Step: step, Time: at(ms), Duration: time.Duration(durMS) * time.Millisecond, Error: errText}
	}
	req := func(op graphsim.Op, ms int) graphsim.Request { return graphsim.Request{Op: op, At: at(ms)} }
	tests := []struct {
		name   string
		events []secretsemu.Event
		reqs   []graphsim.Request
		want   []step
	}{
		{
			name: "clean rotation, Graph calls counted in the step that made them",
			events: []secretsemu.Event{
				ev(secretsemu.RotationStarted, 1, "", 0, 0, ""),
				ev(secretsemu.StepStarted, 1, "createSecret", 1, 0, ""),
				ev(secretsemu.StepSucceeded, 1, "createSecret", 21, 20, ""),
				ev(secretsemu.StepStarted, 1, "setSecret", 22, 0, ""),
				ev(secretsemu.StepSucceeded, 1, "setSecret", 30, 8, ""),
				ev(secretsemu.StepStarted, 1, "testSecret", 31, 0, ""),
				ev(secretsemu.StepSucceeded, 1, "testSecret", 40, 9, ""),
				ev(secretsemu.RotationSucceeded, 1, "", 41, 0, ""),
			},
			reqs: []graphsim.Request{req(graphsim.OpGet, -5), req(graphsim.OpUpload, 23), req(graphsim.OpUpload, 25), req(graphsim.OpGet, 35), req(graphsim.OpList, 36)},
			want: []step{
				{Attempt: 1, Name: "createSecret", Offset: 1 * time.Millisecond, Duration: 20 * time.Millisecond, OK: true},
				{Attempt: 1, Name: "setSecret", Offset: 22 * time.Millisecond, Duration: 8 * time.Millisecond, OK: true, Graph: graphsim.OpCounts{Upload: 2}},
				{Attempt: 1, Name: "testSecret", Offset: 31 * time.Millisecond, Duration: 9 * time.Millisecond, OK: true, Graph: graphsim.OpCounts{Get: 1, List: 1}},
			},
		},
		{
			name: "a failed step, then a reattempt of the whole rotation",
			events: []secretsemu.Event{
				ev(secretsemu.RotationStarted, 1, "", 0, 0, ""),
				ev(secretsemu.StepStarted, 1, "createSecret", 0, 0, ""),
				ev(secretsemu.StepFailed, 1, "createSecret", 5, 5, "function error: kms unreachable"),
				ev(secretsemu.RotationFailed, 1, "", 6, 0, "function error: kms unreachable"),
				ev(secretsemu.RotationStarted, 2, "", 100, 0, ""),
				ev(secretsemu.StepStarted, 2, "createSecret", 100, 0, ""),
				ev(secretsemu.StepSucceeded, 2, "createSecret", 110, 10, ""),
			},
			want: []step{
				{Attempt: 1, Name: "createSecret", Duration: 5 * time.Millisecond, Error: "function error: kms unreachable"},
				{Attempt: 2, Name: "createSecret", Offset: 100 * time.Millisecond, Duration: 10 * time.Millisecond, OK: true},
			},
		},
		{
			name: "a step end without its start is placed by its duration",
			events: []secretsemu.Event{
				ev(secretsemu.RotationStarted, 1, "", 0, 0, ""),
				ev(secretsemu.StepSucceeded, 1, "finishSecret", 50, 4, ""),
			},
			want: []step{{Attempt: 1, Name: "finishSecret", Offset: 46 * time.Millisecond, Duration: 4 * time.Millisecond, OK: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := timeline(tt.events, tt.reqs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("timeline =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestWriteTimeline(t *testing.T) {
	var b bytes.Buffer
	writeTimeline(&b, []step{
		{Attempt: 1, Name: "setSecret", Offset: 22 * time.Millisecond, Duration: 8 * time.Millisecond, OK: true, Graph: graphsim.OpCounts{Upload: 3}},
		{Attempt: 2, Name: "testSecret", Offset: 1500 * time.Millisecond, Duration: 12 * time.Second, Error: "Meta reports MISMATCH for 106540352242922"},
	})
	want := []string{
		"     +22ms  setSecret      ok         8ms  public key uploaded to every number          Graph: 3 uploads",
		"   +1500ms  testSecret (attempt 2) FAILED     12s  Meta reads back the new key, VALID",
		"            Meta reports MISMATCH for 106540352242922",
	}
	if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("writeTimeline =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckRows(t *testing.T) {
	current := &version{ID: "v2", Labels: []string{"AWSCURRENT", "FLOWKEY_VERIFIED"}}
	previous := &version{ID: "v1", Labels: []string{"AWSPREVIOUS"}}
	tests := []struct {
		name string
		rows []metaRow
		want string // "" for no error
	}{
		{"all on AWSCURRENT and VALID", []metaRow{{ID: "1", Fingerprint: "aa", Status: "VALID", Holder: current}, {ID: "2", Fingerprint: "aa", Status: "VALID", Holder: current}}, ""},
		{"a key no version holds", []metaRow{{ID: "1", Fingerprint: "bb00112233445566ff", Status: "VALID"}}, "1 holds key bb00112233445566, which no version of the secret holds"},
		{"a number without a key", []metaRow{{ID: "7"}}, "7 holds key -, which no version"},
		{"a number still on AWSPREVIOUS", []metaRow{{ID: "3", Fingerprint: "cc", Status: "VALID", Holder: previous}}, "3 holds the key of version v1 (AWSPREVIOUS), not AWSCURRENT"},
		{"MISMATCH at Meta", []metaRow{{ID: "4", Fingerprint: "aa", Status: "MISMATCH", Holder: current}}, "4: Meta reports MISMATCH, want VALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRows(tt.rows)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("checkRows = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMetaRowsMatchesFingerprintsToVersions(t *testing.T) {
	versions := []version{
		{ID: "v3", Labels: []string{"AWSCURRENT"}, Fingerprint: "f3"},
		{ID: "v2", Labels: []string{"AWSPREVIOUS"}, Fingerprint: "f2"},
		{ID: "v1"},
	}
	st := graphsim.State{Numbers: []graphsim.NumberState{
		{ID: "1", Key: &graphsim.KeyState{Fingerprint: "f3"}, Served: graphsim.ServedState{Status: "VALID"}},
		{ID: "2", Key: &graphsim.KeyState{Fingerprint: "f2"}, Served: graphsim.ServedState{Status: "VALID"}},
		{ID: "3", Key: &graphsim.KeyState{Fingerprint: "f9"}, Served: graphsim.ServedState{Status: "VALID"}},
		{ID: "4"},
	}}
	rows := metaRows(st, versions)
	want := map[string]string{"1": "AWSCURRENT (v3)", "2": "AWSPREVIOUS (v2)", "3": "none", "4": "none"}
	for _, r := range rows {
		if got := holder(r.Holder); got != want[r.ID] {
			t.Errorf("number %s held by %q, want %q", r.ID, got, want[r.ID])
		}
	}
	if len(rows) != 4 {
		t.Errorf("%d rows, want 4", len(rows))
	}
}
