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
	// The fleet's commands (Syntax.Fleet).
	CommandEnroll   = "enroll"
	CommandUnenroll = "unenroll"
)

// Shapes describes every accepted command, for error messages.
const Shapes = `{"command":"rotate"} | {"command":"status"} | {"command":"resync","dry_run":true|false} | ` +
	`{"command":"set-config","config":{"phone_number_ids":["<id>",...]} or {"waba_id":"<id>",...},"dry_run":true|false} ` +
	`(each may add "secret_id":"<secret ARN or name>"; "dry_run" only with resync and set-config)`

// FleetShapes describes every command a fleet accepts.
const FleetShapes = `{"command":"rotate"} | {"command":"status"} | {"command":"resync","dry_run":true|false} | ` +
	`{"command":"set-config","config":{"phone_number_ids":["<id>",...]} or {"waba_id":"<id>",...},"dry_run":true|false} | ` +
	`{"command":"enroll","tenant":"<id>","config":{...},"dry_run":true|false} | {"command":"unenroll","tenant":"<id>","dry_run":true|false} ` +
	`(rotate, status, resync and set-config may add "secret_id":"<secret ARN or name>" or "tenant":"<id>"; a fleet status, without either, ` +
	`may add "next_token":"<token>"; "dry_run" only with resync, set-config, enroll and unenroll)`

// Command is one validated operator command.
type Command struct {
	Name string
	// SecretID is the secret named in the event; "" for the default.
	SecretID string
	// Tenant names a fleet tenant instead of SecretID (Syntax.Fleet).
	Tenant string
	DryRun bool
	// Config is set-config's and enroll's configuration: the JSON object
	// as sent (compacted), already validated as the secret document's
	// "config". A string keeps Command comparable.
	Config string
	// NextToken pages a fleet status by hand; FleetCursor is the same
	// position sent by the fleet status itself to continue in a later
	// invocation (which continues again where one is not enough).
	NextToken, FleetCursor string
}

// commandFields are the only members a command may have. Matching is
// exact: the standard decoder's case-insensitive matching would run
// {"Dry_Run":true} as a real resync.
var commandFields = []string{"command", "secret_id", "dry_run", "config"}

// fleetFields are the members only a fleet accepts.
var fleetFields = []string{"tenant", "next_token", "fleet_cursor"}

// Syntax is the set of commands a function accepts: today's, or with
// Fleet the fleet's too (FleetShapes). Without Fleet it parses exactly as
// it always has.
type Syntax struct{ Fleet bool }

// Shapes describes every command the syntax accepts, for error messages.
func (s Syntax) Shapes() string {
	if s.Fleet {
		return FleetShapes
	}
	return Shapes
}

func (s Syntax) fields() []string {
	if s.Fleet {
		return append(slices.Clone(commandFields), fleetFields...)
	}
	return commandFields
}

func (s Syntax) fixCommand() string {
	if s.Fleet {
		return fixCommandFleet
	}
	return fixCommand
}

func (s Syntax) fixFields() string {
	if s.Fleet {
		return fixFieldsFleet
	}
	return fixFields
}

const (
	fixCommand      = `send "command" as one of "rotate", "status", "resync", "set-config"`
	fixFields       = `send only "command", "secret_id", "dry_run" (with resync and set-config) and "config" (with set-config)`
	fixConfig       = `send the new "config" object of the secret document, e.g. "config":{"phone_number_ids":["106540352242922"]}`
	fixCommandFleet = `send "command" as one of "rotate", "status", "resync", "set-config", "enroll", "unenroll"`
	fixFieldsFleet  = `send only "command", "secret_id" or "tenant", "dry_run" (with resync, set-config, enroll and unenroll), "config" (with set-config and enroll) ` +
		`and "next_token" (with a fleet status)`
	fixFleetOff = "turn the fleet on (infra/'s flowkey:fleet setting sets FLEET_NAME), or send a command of this function"
)

// quotable is input that is safe and useful to repeat in an error. Other
// input is described, not quoted: it could be anything pasted by mistake.
var quotable = regexp.MustCompile(`^[A-Za-z0-9_.:/+=@-]{1,64}$`)

const maxSecretIDLen = 2048

// ParseCommand decodes a command strictly, as a function without the fleet
// does (Syntax{}.Parse).
func ParseCommand(raw []byte) (Command, error) { return Syntax{}.Parse(raw) }

// Parse decodes a command strictly: a JSON object with a "command" string,
// an optional non-empty "secret_id" string, for resync and set-config an
// optional "dry_run" boolean, and for set-config (only) a "config" object,
// which is validated exactly as the secret document's parser validates the
// document's "config" (secretdoc.Parse). With Fleet it also takes enroll
// and unenroll, "tenant" instead of "secret_id", and a fleet status's
// "next_token" and "fleet_cursor" (see FleetShapes). Anything else is an
// error that names the field; all problems are reported at once.
func (s Syntax) Parse(raw []byte) (Command, error) {
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
		switch {
		case slices.Contains(s.fields(), m.Name):
		case slices.Contains(fleetFields, m.Name):
			bad("field "+describe(m.Name), "is only accepted by a fleet, and this function's fleet is off (FLEET_NAME is empty)", fixFleetOff)
		default:
			bad("field "+describe(m.Name), "is not accepted in a command", s.fixFields())
		}
	}
	for _, i := range strictjson.Duplicates(members) {
		if n := members[i].Name; slices.Contains(s.fields(), n) {
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
		bad("command", "is missing", s.fixCommand())
	default:
		var name string
		if k := strictjson.KindOf(v); k != strictjson.String || json.Unmarshal(v, &name) != nil {
			bad("command", "must be a string, not "+k.String(), s.fixCommand())
			break
		}
		switch name {
		case CommandRotate, CommandStatus, CommandResync, CommandSetConfig:
			cmd.Name = name
		case CommandEnroll, CommandUnenroll:
			if s.Fleet {
				cmd.Name = name
				break
			}
			bad("command", describe(name)+" is a fleet command, and this function's fleet is off (FLEET_NAME is empty)", fixFleetOff)
		default:
			bad("command", describe(name)+" is not a command", s.fixCommand())
		}
	}
	if v, ok := get("secret_id"); ok {
		var id string
		fix := `send the secret's ARN or name as a string, or leave "secret_id" out to use the function's SECRET_ID`
		switch {
		case strictjson.KindOf(v) != strictjson.String || json.Unmarshal(v, &id) != nil:
			bad("secret_id", "must be a string, not "+strictjson.KindOf(v).String(), fix)
		case strings.TrimSpace(id) == "":
			bad("secret_id", "is empty", fix)
		case len(id) > maxSecretIDLen || strings.ContainsAny(id, " \t\r\n"):
			bad("secret_id", fmt.Sprintf("is not a secret ARN or name (%d characters, or contains white space)", len(id)), fix)
		default:
			cmd.SecretID = id
		}
	}
	errs = append(errs, s.parseOptions(get, &cmd)...)
	if s.Fleet {
		errs = append(errs, parseFleetOptions(get, &cmd)...)
	}
	if err := errors.Join(errs...); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// parseOptions reads the members that depend on the command: "dry_run"
// (resync and set-config, and with a fleet enroll and unenroll) and
// "config" (set-config, and enroll).
func (s Syntax) parseOptions(get func(string) (json.RawMessage, bool), cmd *Command) []error {
	var errs []error
	bad := func(field, problem, fix string) {
		errs = append(errs, &rotation.InputError{Field: field, Problem: problem, Fix: fix})
	}
	writes := cmd.Name == CommandResync || cmd.Name == CommandSetConfig || cmd.Name == CommandEnroll || cmd.Name == CommandUnenroll
	if v, ok := get("dry_run"); ok {
		var b bool
		switch {
		case strictjson.KindOf(v) != strictjson.Bool || json.Unmarshal(v, &b) != nil:
			what := "resync"
			if cmd.Name == CommandSetConfig || cmd.Name == CommandEnroll || cmd.Name == CommandUnenroll {
				what = cmd.Name
			}
			bad("dry_run", "must be true or false, not "+strictjson.KindOf(v).String(), `send "dry_run":true to see what `+what+` would do, or "dry_run":false to do it`)
		case cmd.Name != "" && !writes:
			only := "resync and set-config"
			if s.Fleet {
				only = "resync, set-config, enroll and unenroll"
			}
			bad("dry_run", "is only accepted with "+only, fmt.Sprintf("remove it: %s never writes anything it could rehearse", describe(cmd.Name)))
		default:
			cmd.DryRun = b
		}
	}
	takesConfig := cmd.Name == CommandSetConfig || cmd.Name == CommandEnroll
	v, ok := get("config")
	switch {
	case ok && cmd.Name != "" && !takesConfig:
		only := "set-config"
		if s.Fleet {
			only = "set-config and enroll"
		}
		bad("config", "is only accepted with "+only, `remove it, or send it with "command":"set-config" to change the configuration`)
	case ok:
		var compact bytes.Buffer
		if err := checkConfig(v); err != nil {
			errs = append(errs, err)
		} else if err := json.Compact(&compact, v); err == nil {
			cmd.Config = compact.String()
		}
	case takesConfig:
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
