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
	"github.com/flowkey/flowkey/internal/strictjson"
)

// The commands.
const (
	CommandRotate = "rotate"
	CommandStatus = "status"
	CommandResync = "resync"
)

// Shapes describes every accepted command, for error messages.
const Shapes = `{"command":"rotate"} | {"command":"status"} | {"command":"resync","dry_run":true|false} ` +
	`(each may add "secret_id":"<secret ARN or name>"; "dry_run" only with resync)`

// Command is one validated operator command.
type Command struct {
	Name string
	// SecretID is the secret named in the event; "" for the default.
	SecretID string
	DryRun   bool
}

// commandFields are the only members a command may have. Matching is
// exact: the standard decoder's case-insensitive matching would run
// {"Dry_Run":true} as a real resync.
var commandFields = []string{"command", "secret_id", "dry_run"}

// quotable is input that is safe and useful to repeat in an error. Other
// input is described, not quoted: it could be anything pasted by mistake.
var quotable = regexp.MustCompile(`^[A-Za-z0-9_.:/+=@-]{1,64}$`)

const maxSecretIDLen = 2048

// ParseCommand decodes a command strictly: a JSON object with a "command"
// string, an optional non-empty "secret_id" string and, for resync only,
// an optional "dry_run" boolean. Anything else is an error that names the
// field; all problems are reported at once.
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
			bad("field "+describe(m.Name), "is not accepted in a command", `send only "command", "secret_id" and (with resync) "dry_run"`)
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

	fixCommand := `send "command" as one of "rotate", "status", "resync"`
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
		case CommandRotate, CommandStatus, CommandResync:
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
	if v, ok := get("dry_run"); ok {
		var b bool
		switch {
		case strictjson.KindOf(v) != strictjson.Bool || json.Unmarshal(v, &b) != nil:
			bad("dry_run", "must be true or false, not "+strictjson.KindOf(v).String(), `send "dry_run":true to see what resync would do, or "dry_run":false to do it`)
		case cmd.Name != "" && cmd.Name != CommandResync:
			bad("dry_run", "is only accepted with resync", fmt.Sprintf("remove it: %s never writes anything it could rehearse", describe(cmd.Name)))
		default:
			cmd.DryRun = b
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Command{}, err
	}
	return cmd, nil
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
