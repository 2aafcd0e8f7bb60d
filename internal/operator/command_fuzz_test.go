package operator

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseCommand: any bytes give a valid command or an error that says
// how to fix it (dispatch adds the accepted shapes); never a panic.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		`{"command":"status"}`, `{"command":"resync","dry_run":true}`, `{"command":"rotate","secret_id":"flowkey/key"}`,
		`{"command":"restart"}`, `{"command":"status","SecretId":"x"}`, `{"command":1}`, `[]`, `{`, `null`, "",
		`{"command":"status","command":"rotate"}`, `{"command":"resync","dry_run":"yes"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cmd, err := ParseCommand(raw)
		if err != nil {
			if !strings.Contains(err.Error(), "fix:") {
				t.Fatalf("error without a fix: %v", err)
			}
			return
		}
		switch cmd.Name {
		case CommandStatus, CommandRotate, CommandResync:
		default:
			t.Fatalf("accepted unknown command %q from %q", cmd.Name, raw)
		}
		if cmd.DryRun && cmd.Name != CommandResync {
			t.Fatalf("dry_run accepted with %q", cmd.Name)
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
	})
}
