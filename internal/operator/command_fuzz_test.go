package operator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/secretdoc"
)

// FuzzParseCommand: any bytes give a valid command or an error that says
// how to fix it (dispatch adds the accepted shapes); never a panic.
func FuzzParseCommand(f *testing.F) {
	for _, seed := range []string{
		`{"command":"status"}`, `{"command":"resync","dry_run":true}`, `{"command":"rotate","secret_id":"flowkey/key"}`,
		`{"command":"restart"}`, `{"command":"status","SecretId":"x"}`, `{"command":1}`, `[]`, `{`, `null`, "",
		`{"command":"status","command":"rotate"}`, `{"command":"resync","dry_run":"yes"}`,
		`{"command":"set-config","config":{"phone_number_ids":["106540352242922"]},"dry_run":true}`, `{"command":"set-config","config":{"waba_id":1}}`,
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
		case CommandStatus, CommandRotate, CommandResync, CommandSetConfig:
		default:
			t.Fatalf("accepted unknown command %q from %q", cmd.Name, raw)
		}
		if cmd.DryRun && cmd.Name != CommandResync && cmd.Name != CommandSetConfig {
			t.Fatalf("dry_run accepted with %q", cmd.Name)
		}
		if (cmd.Config != "") != (cmd.Name == CommandSetConfig) {
			t.Fatalf("config %q with %q", cmd.Config, cmd.Name)
		}
		if cmd.Config != "" {
			if _, err := secretdoc.Parse([]byte(`{"schema_version":1,"config":` + cmd.Config + `}`)); err != nil {
				t.Fatalf("accepted a configuration the document parser rejects: %v", err)
			}
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
	})
}
