package operator

import (
	"encoding/json"

	"github.com/flowkey/flowkey/internal/fleet"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/strictjson"
)

// parseFleetOptions reads the members only a fleet accepts: "tenant" (any
// command but a fleet status; enroll and unenroll need it), and a fleet
// status's "next_token" or "fleet_cursor".
func parseFleetOptions(get func(string) (json.RawMessage, bool), cmd *Command) []error {
	var errs []error
	bad := func(field, problem, fix string) {
		errs = append(errs, &rotation.InputError{Field: field, Problem: problem, Fix: fix})
	}
	str := func(name, fix string) (string, bool) {
		v, ok := get(name)
		if !ok {
			return "", false
		}
		var s string
		if k := strictjson.KindOf(v); k != strictjson.String || json.Unmarshal(v, &s) != nil {
			bad(name, "must be a string, not "+k.String(), fix)
			return "", false
		}
		return s, true
	}
	const fixTenant = `send "tenant" as the tenant's ID: ` + fleet.TenantIDRule
	if t, ok := str("tenant", fixTenant); ok {
		if fleet.ValidTenantID(t) {
			cmd.Tenant = t
		} else {
			bad("tenant", describe(t)+" is not a tenant ID", fixTenant)
		}
	}
	_, hasTenant := get("tenant")
	_, hasSecret := get("secret_id")
	switch {
	case (cmd.Name == CommandEnroll || cmd.Name == CommandUnenroll) && hasSecret:
		bad("secret_id", "is not accepted with "+cmd.Name, `send "tenant":"<id>" instead: `+cmd.Name+` names the tenant's secret itself (<fleet secret prefix><tenant>)`)
	case (cmd.Name == CommandEnroll || cmd.Name == CommandUnenroll) && !hasTenant:
		bad("tenant", "is missing", fixTenant)
	case hasTenant && hasSecret:
		bad("tenant", `and "secret_id" are both set`, `send one of them: "tenant" for a tenant of the fleet, "secret_id" for any other secret`)
	}

	const fixToken = `send the "next_token" of the last fleet status as it is, or leave it out to start at the first tenant`
	for _, name := range []string{"next_token", "fleet_cursor"} {
		tok, ok := str(name, fixToken)
		if !ok {
			continue
		}
		switch {
		case cmd.Name != "" && cmd.Name != CommandStatus:
			bad(name, "is only accepted with status", "remove it: only a fleet status pages")
		case hasTenant || hasSecret:
			bad(name, `is only accepted in a fleet status, without "secret_id" or "tenant"`, "remove it, or remove the secret or tenant to page through the fleet")
		default:
			if _, err := decodeCursor(tok); err != nil {
				bad(name, "is not a fleet status token ("+err.Error()+")", fixToken)
				continue
			}
			if name == "next_token" {
				cmd.NextToken = tok
			} else {
				cmd.FleetCursor = tok
			}
		}
	}
	if cmd.NextToken != "" && cmd.FleetCursor != "" {
		bad("next_token", `and "fleet_cursor" are both set`, `send "next_token" to page by hand; "fleet_cursor" is what a fleet status sends itself to continue`)
	}
	return errs
}
