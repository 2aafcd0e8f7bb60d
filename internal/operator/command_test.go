package operator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func TestParseCommandAcceptsTheDocumentedShapes(t *testing.T) {
	tests := []struct {
		raw  string
		want Command
	}{
		{`{"command":"status"}`, Command{Name: "status"}},
		{` {"command":"rotate","secret_id":"flowkey/key"} `, Command{Name: "rotate", SecretID: "flowkey/key"}},
		{`{"dry_run":true,"command":"resync"}`, Command{Name: "resync", DryRun: true}},
		{`{"command":"resync","dry_run":false,"secret_id":"arn:aws:secretsmanager:us-east-1:1:secret:k-AbCdEf"}`,
			Command{Name: "resync", SecretID: "arn:aws:secretsmanager:us-east-1:1:secret:k-AbCdEf"}},
		{`{"command":"set-config","config": {"phone_number_ids":["106540352242922"]} }`,
			Command{Name: "set-config", Config: `{"phone_number_ids":["106540352242922"]}`}},
		{`{"command":"set-config","dry_run":true,"secret_id":"flowkey/key","config":{"waba_id":"102290129340398","exclude_phone_number_ids":["1"]}}`,
			Command{Name: "set-config", DryRun: true, SecretID: "flowkey/key", Config: `{"waba_id":"102290129340398","exclude_phone_number_ids":["1"]}`}},
	}
	for _, tc := range tests {
		got, err := ParseCommand([]byte(tc.raw))
		if err != nil || got != tc.want {
			t.Errorf("ParseCommand(%s) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseCommandErrorsNameTheFieldAndTheFix(t *testing.T) {
	const pasted = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
	tests := []struct {
		name, raw string
		want      []string // the whole error, one line per joined problem
	}{
		{"unknown command", `{"command":"rotate-now"}`,
			[]string{`command "rotate-now" is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
		{"command is case-sensitive", `{"command":"Status"}`,
			[]string{`command "Status" is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
		{"command not a string", `{"command":3}`,
			[]string{`command must be a string, not a number; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
		{"command null", `{"command":null}`,
			[]string{`command must be a string, not null; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
		{"no command", `{"secret_id":"flowkey/key"}`,
			[]string{`command is missing; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
		{"extra field", `{"command":"status","verbose":true}`,
			[]string{`field "verbose" is not accepted in a command; fix: send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config)`}},
		{"field names are exact", `{"command":"resync","Dry_Run":true}`,
			[]string{`field "Dry_Run" is not accepted in a command; fix: send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config)`}},
		{"dry_run not a boolean", `{"command":"resync","dry_run":"yes"}`,
			[]string{`dry_run must be true or false, not a string; fix: send "dry_run":true to see what resync would do, or "dry_run":false to do it`}},
		{"dry_run with status", `{"command":"status","dry_run":true}`,
			[]string{`dry_run is only accepted with resync and set-config; fix: remove it: "status" never writes anything it could rehearse`}},
		{"dry_run with rotate", `{"command":"rotate","dry_run":false}`,
			[]string{`dry_run is only accepted with resync and set-config; fix: remove it: "rotate" never writes anything it could rehearse`}},
		{"secret_id not a string", `{"command":"status","secret_id":["a"]}`,
			[]string{`secret_id must be a string, not an array; fix: send the secret's ARN or name as a string, or leave "secret_id" out to use the function's SECRET_ID`}},
		{"secret_id null", `{"command":"status","secret_id":null}`,
			[]string{`secret_id must be a string, not null; fix: send the secret's ARN or name as a string, or leave "secret_id" out to use the function's SECRET_ID`}},
		{"dry_run null", `{"command":"resync","dry_run":null}`,
			[]string{`dry_run must be true or false, not null; fix: send "dry_run":true to see what resync would do, or "dry_run":false to do it`}},
		{"secret_id empty", `{"command":"status","secret_id":" "}`,
			[]string{`secret_id is empty; fix: send the secret's ARN or name as a string, or leave "secret_id" out to use the function's SECRET_ID`}},
		{"duplicate command", `{"command":"status","command":"rotate"}`,
			[]string{`command appears more than once; fix: send it once`}},
		{"several problems at once", `{"command":"nope","x":1,"dry_run":1}`,
			[]string{
				`field "x" is not accepted in a command; fix: send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config)`,
				`command "nope" is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config"`,
				`dry_run must be true or false, not a number; fix: send "dry_run":true to see what resync would do, or "dry_run":false to do it`,
			}},
		{"dry_run not a boolean with set-config", `{"command":"set-config","dry_run":1,"config":{"phone_number_ids":["1"]}}`,
			[]string{`dry_run must be true or false, not a number; fix: send "dry_run":true to see what set-config would do, or "dry_run":false to do it`}},
		{"set-config without config", `{"command":"set-config"}`,
			[]string{`config is missing; fix: send the new "config" object of the secret document, e.g. "config":{"phone_number_ids":["106540352242922"]}`}},
		{"config with another command", `{"command":"status","config":{"phone_number_ids":["1"]}}`,
			[]string{`config is only accepted with set-config; fix: remove it, or send it with "command":"set-config" to change the configuration`}},
		{"config not an object", `{"command":"set-config","config":["106540352242922"]}`,
			[]string{`config must be a JSON object, not an array; fix: send the new "config" object of the secret document, e.g. "config":{"phone_number_ids":["106540352242922"]}`}},
		{"trailing data", `{"command":"status"}{}`,
			[]string{`command event has data after the JSON object; fix: send exactly one JSON object`}},
		// A stray closing bracket is data too (encoding/json's More would
		// not see it).
		{"trailing bracket", `{"command":"status"}]`,
			[]string{`command event has data after the JSON object; fix: send exactly one JSON object`}},
		{"pasted key material is described, not repeated", `{"command":"` + pasted + `"}`,
			[]string{`command (a 59-character value, not repeated here) is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCommand([]byte(tc.raw))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			var ie *rotation.InputError
			if !errors.As(err, &ie) {
				t.Errorf("want a *rotation.InputError in the chain, got %T", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "MIIE") {
				t.Error("the error repeats pasted key material")
			}
		})
	}
}

// set-config's configuration is checked by the secret document's own
// parser: the same errors, with the same field paths, as a stored
// document gets.
func TestParseCommandValidatesSetConfigsConfigurationAsTheDocumentParserDoes(t *testing.T) {
	for _, cfg := range []string{
		`{"phone_number_ids":[106540352242922]}`,
		`{}`,
		`{"phone_number_ids":["106540352242922"],"waba_id":"102290129340398"}`,
		`{"phone_number_ids":["106540352242922"],"Waba_ID":"1"}`,
		`{"phone_number_ids":["106540352242922"],"graph_api_version":"latest"}`,
		`{"phone_number_ids":["106540352242922","106540352242922"]}`,
	} {
		_, want := secretdoc.Parse([]byte(`{"schema_version":1,"config":` + cfg + `}`))
		if want == nil {
			t.Fatalf("%s: the parser accepts it", cfg)
		}
		_, err := ParseCommand([]byte(`{"command":"set-config","config":` + cfg + `}`))
		var de *secretdoc.Error
		if err == nil || err.Error() != want.Error() || !errors.As(err, &de) {
			t.Errorf("%s:\ngot  %v\nwant %v", cfg, err, want)
		}
	}
}

func TestRunNeedsASecret(t *testing.T) {
	h := newHarness(t, nil)
	h.op.opts.SecretID = ""
	_, err := h.op.Run(context.Background(), Command{Name: CommandStatus})
	const want = `status: secret_id is not in the command and the function has no SECRET_ID; fix: add "secret_id":"<secret ARN or name>" to the command, or set SECRET_ID on the function`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if n := h.sm.Calls("DescribeSecret"); n != 0 {
		t.Errorf("%d calls to Secrets Manager without a secret", n)
	}
}

func TestSecretIDInTheCommandOverridesTheDefault(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.op.opts.SecretID = "flowkey/does-not-exist"
	out, err := h.run(t, Command{Name: CommandStatus, SecretID: "flowkey/key"})
	if err != nil {
		t.Fatal(err)
	}
	if r := out.(*StatusReport); r.SecretARN != h.arn {
		t.Errorf("status of %s, want %s", r.SecretARN, h.arn)
	}
	_, err = h.run(t, Command{Name: CommandStatus})
	if err == nil || !strings.Contains(err.Error(), "describe secret flowkey/does-not-exist") || !strings.Contains(err.Error(), "fix: check secret_id in the command or the function's SECRET_ID") {
		t.Errorf("want the missing default secret named with a fix, got %v", err)
	}
}

// The example events users send with `aws lambda invoke` and `sam local
// invoke` must stay valid commands.
func TestEventFilesAreValidCommands(t *testing.T) {
	want := map[string]Command{
		"rotate-now.json": {Name: CommandRotate},
		"status.json":     {Name: CommandStatus},
		"resync.json":     {Name: CommandResync, DryRun: true},
		"set-config.json": {Name: CommandSetConfig, DryRun: true, Config: `{"phone_number_ids":["106540352242922","106540352242923"]}`},
	}
	for file, w := range want {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCommand(b)
		if err != nil || got != w {
			t.Errorf("events/%s: %+v, %v; want %+v", file, got, err, w)
		}
	}
}
