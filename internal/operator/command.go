package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
	"github.com/flowkey/flowkey/internal/strictjson"
)

// The commands.
const (
	CommandRotate    = "rotate"
	CommandStatus    = "status"
	CommandResync    = "resync"
	CommandSetConfig = "set-config"
)

// Shapes describes every accepted command, for error messages.
const Shapes = `{"command":"rotate"} | {"command":"status"} | {"command":"resync","dry_run":true|false} | ` +
	`{"command":"set-config","config":{"phone_number_ids":["<id>",...]} or {"waba_id":"<id>",...},"dry_run":true|false} ` +
	`(each may add "secret_id":"<secret ARN or name>"; "dry_run" only with resync and set-config)`

// Command is one validated operator command.
type Command struct {
	Name string
	// SecretID is the secret named in the event; "" for the default.
	SecretID string
	DryRun   bool
	// Config is set-config's new configuration: the JSON object as sent
	// (compacted), already validated as the secret document's "config". A
	// string keeps Command comparable.
	Config string
}

// commandFields are the only members a command may have. Matching is
// exact: the standard decoder's case-insensitive matching would run
// {"Dry_Run":true} as a real resync.
var commandFields = []string{"command", "secret_id", "dry_run", "config"}

const (
	fixCommand = `send "command" as one of "rotate", "status", "resync", "set-config"`
	fixFields  = `send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config)`
	fixConfig  = `send the new "config" object of the secret document, e.g. "config":{"phone_number_ids":["106540352242922"]}`
)

// quotable is input that is safe and useful to repeat in an error. Other
// input is described, not quoted: it could be anything pasted by mistake.
var quotable = regexp.MustCompile(`^[A-Za-z0-9_.:/+=@-]{1,64}$`)

const maxSecretIDLen = 2048

// ParseCommand decodes a command strictly: a JSON object with a "command"
// string, an optional non-empty "secret_id" string, for resync and
// set-config an optional "dry_run" boolean, and for set-config (only) a
// "config" object, which is validated exactly as the secret document's
// parser validates the document's "config" (secretdoc.Parse). Anything
// else is an error that names the field; all problems are reported at
// once.
func ParseCommand(raw []byte) (Command, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return Command{}, err
	}
	var (
		cmd  Command
		errs []error
		bad  = func(field, problem, fix string) {
			errs = append(errs, &rotation.InputError{Field: field, Problem: problem, Fix: fix})
		}
	)
	for _, m := range members {
		if !slices.Contains(commandFields, m.Name) {
			bad("field "+describe(m.Name), "is not accepted in a command", fixFields)
		}
	}
	for _, i := range strictjson.Duplicates(members) {
		if n := members[i].Name; slices.Contains(commandFields, n) {
			bad(n, "appears more than once", "send it once")
		}
	}
	get := func(name string) (json.RawMessage, bool) {
		for _, m := range members {
			if m.Name == name {
				return m.Value, true
			}
		}
		return nil, false
	}

	switch v, ok := get("command"); {
	case !ok:
		bad("command", "is missing", fixCommand)
	default:
		var s string
		if k := strictjson.KindOf(v); k != strictjson.String || json.Unmarshal(v, &s) != nil {
			bad("command", "must be a string, not "+k.String(), fixCommand)
			break
		}
		switch s {
		case CommandRotate, CommandStatus, CommandResync, CommandSetConfig:
			cmd.Name = s
		default:
			bad("command", describe(s)+" is not a command", fixCommand)
		}
	}
	if v, ok := get("secret_id"); ok {
		var s string
		fix := `send the secret's ARN or name as a string, or leave "secret_id" out to use the function's SECRET_ID`
		switch {
		case strictjson.KindOf(v) != strictjson.String || json.Unmarshal(v, &s) != nil:
			bad("secret_id", "must be a string, not "+strictjson.KindOf(v).String(), fix)
		case strings.TrimSpace(s) == "":
			bad("secret_id", "is empty", fix)
		case len(s) > maxSecretIDLen || strings.ContainsAny(s, " \t\r\n"):
			bad("secret_id", fmt.Sprintf("is not a secret ARN or name (%d characters, or contains white space)", len(s)), fix)
		default:
			cmd.SecretID = s
		}
	}
	errs = append(errs, parseOptions(get, &cmd)...)
	if err := errors.Join(errs...); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// parseOptions reads the members that depend on the command: "dry_run"
// (resync and set-config) and "config" (set-config only).
func parseOptions(get func(string) (json.RawMessage, bool), cmd *Command) []error {
	var errs []error
	bad := func(field, problem, fix string) {
		errs = append(errs, &rotation.InputError{Field: field, Problem: problem, Fix: fix})
	}
	if v, ok := get("dry_run"); ok {
		var b bool
		switch {
		case strictjson.KindOf(v) != strictjson.Bool || json.Unmarshal(v, &b) != nil:
			what := "resync"
			if cmd.Name == CommandSetConfig {
				what = "set-config"
			}
			bad("dry_run", "must be true or false, not "+strictjson.KindOf(v).String(), `send "dry_run":true to see what `+what+` would do, or "dry_run":false to do it`)
		case cmd.Name != "" && cmd.Name != CommandResync && cmd.Name != CommandSetConfig:
			bad("dry_run", "is only accepted with resync and set-config", fmt.Sprintf("remove it: %s never writes anything it could rehearse", describe(cmd.Name)))
		default:
			cmd.DryRun = b
		}
	}
	v, ok := get("config")
	switch {
	case ok && cmd.Name != "" && cmd.Name != CommandSetConfig:
		bad("config", "is only accepted with set-config", `remove it, or send it with "command":"set-config" to change the configuration`)
	case ok:
		var compact bytes.Buffer
		if err := checkConfig(v); err != nil {
			errs = append(errs, err)
		} else if err := json.Compact(&compact, v); err == nil {
			cmd.Config = compact.String()
		}
	case cmd.Name == CommandSetConfig:
		bad("config", "is missing", fixConfig)
	}
	return errs
}

// checkConfig validates set-config's "config" member with the secret
// document's own parser: it is the document's "config", so the errors name
// the same paths ("config.phone_number_ids[2]") and nothing is checked
// twice or differently.
func checkConfig(v json.RawMessage) error {
	if k := strictjson.KindOf(v); k != strictjson.Object {
		return &rotation.InputError{Field: "config", Problem: "must be a JSON object, not " + k.String(), Fix: fixConfig}
	}
	// The parser's own errors (*secretdoc.Error), each naming its field and
	// its fix; they never quote key material or token text.
	_, err := parseConfig(string(v))
	return err
}

// parseConfig is the configuration-only document holding raw as "config",
// parsed and validated by secretdoc.Parse.
func parseConfig(raw string) (secretdoc.Config, error) {
	doc, err := secretdoc.Parse([]byte(fmt.Sprintf(`{"schema_version":%d,"config":%s}`, secretdoc.SchemaVersion, raw)))
	if err != nil {
		return secretdoc.Config{}, err
	}
	return doc.Config, nil
}

// objectMembers returns the top-level members of a JSON object in order,
// duplicates included (a map would keep only the last).
func objectMembers(raw []byte) ([]strictjson.Member, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &rotation.InputError{Field: "command event", Problem: "is not a JSON object", Fix: "send a JSON object"}
	}
	members, err := strictjson.Members(trimmed)
	switch {
	case errors.Is(err, strictjson.ErrTrailingData):
		return nil, &rotation.InputError{Field: "command event", Problem: "has data after the JSON object", Fix: "send exactly one JSON object"}
	case err != nil:
		// The decoder's message gives the offset, never the input itself.
		return nil, &rotation.InputError{Field: "command event", Problem: fmt.Sprintf("is not valid JSON (%v)", err), Fix: "send a JSON object"}
	}
	return members, nil
}

func describe(s string) string {
	if quotable.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(a %d-character value, not repeated here)", len(s))
}
