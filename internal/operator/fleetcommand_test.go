package operator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/rotation"
)

var fleetSyntax = Syntax{Fleet: true}

func TestFleetSyntaxAcceptsTheDocumentedShapes(t *testing.T) {
	tok := cursor{V: cursorVersion, Run: fleetBase, Page: "p", Index: 3}.encode()
	tests := []struct {
		raw  string
		want Command
	}{
		{`{"command":"status"}`, Command{Name: "status"}},
		{`{"command":"status","tenant":"acme"}`, Command{Name: "status", Tenant: "acme"}},
		{`{"command":"rotate","tenant":"acme-2"}`, Command{Name: "rotate", Tenant: "acme-2"}},
		{`{"command":"resync","tenant":"acme","dry_run":true}`, Command{Name: "resync", Tenant: "acme", DryRun: true}},
		{`{"command":"set-config","tenant":"acme","config":{"waba_id":"102290129340398"}}`, Command{Name: "set-config", Tenant: "acme", Config: `{"waba_id":"102290129340398"}`}},
		{`{"command":"enroll","tenant":"acme","config":{"waba_id":"102290129340398"}}`, Command{Name: "enroll", Tenant: "acme", Config: `{"waba_id":"102290129340398"}`}},
		{`{"command":"enroll","tenant":"0","dry_run":true,"config":{"phone_number_ids":["1"]}}`, Command{Name: "enroll", Tenant: "0", DryRun: true, Config: `{"phone_number_ids":["1"]}`}},
		{`{"command":"unenroll","tenant":"acme","dry_run":false}`, Command{Name: "unenroll", Tenant: "acme"}},
		{`{"command":"status","next_token":"` + tok + `"}`, Command{Name: "status", NextToken: tok}},
		{`{"command":"status","fleet_cursor":"` + tok + `"}`, Command{Name: "status", FleetCursor: tok}},
		{`{"command":"rotate","secret_id":"flowkey/key"}`, Command{Name: "rotate", SecretID: "flowkey/key"}},
	}
	for _, tc := range tests {
		got, err := fleetSyntax.Parse([]byte(tc.raw))
		if err != nil || got != tc.want {
			t.Errorf("Parse(%s) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}

func TestFleetSyntaxErrorsNameTheFieldAndTheFix(t *testing.T) {
	const fixFields = `send only "command", "secret_id" or "tenant", "dry_run" (with resync, set-config, enroll and unenroll), "config" (with set-config and enroll) and "next_token" (with a fleet status)`
	const fixTenant = `send "tenant" as the tenant's ID: 1 to 63 lower-case letters, digits and hyphens, starting with a letter or a digit`
	const fixToken = `send the "next_token" of the last fleet status as it is, or leave it out to start at the first tenant`
	tests := []struct{ name, raw, want string }{
		{"unknown command lists the fleet's", `{"command":"join"}`,
			`command "join" is not a command; fix: send "command" as one of "rotate", "status", "resync", "set-config", "enroll", "unenroll"`},
		{"unknown field", `{"command":"status","tenants":"a"}`, `field "tenants" is not accepted in a command; fix: ` + fixFields},
		{"enroll without a tenant", `{"command":"enroll","config":{"waba_id":"1"}}`, `tenant is missing; fix: ` + fixTenant},
		{"enroll without a config", `{"command":"enroll","tenant":"acme"}`,
			`config is missing; fix: send the new "config" object of the secret document, e.g. "config":{"phone_number_ids":["106540352242922"]}`},
		{"enroll with a secret_id", `{"command":"enroll","secret_id":"x","tenant":"acme","config":{"waba_id":"1"}}`,
			`secret_id is not accepted with enroll; fix: send "tenant":"<id>" instead: enroll names the tenant's secret itself (<fleet secret prefix><tenant>)`},
		{"unenroll with a config", `{"command":"unenroll","tenant":"acme","config":{"waba_id":"1"}}`,
			`config is only accepted with set-config and enroll; fix: remove it, or send it with "command":"set-config" to change the configuration`},
		{"both secret_id and tenant", `{"command":"rotate","secret_id":"x","tenant":"acme"}`,
			`tenant and "secret_id" are both set; fix: send one of them: "tenant" for a tenant of the fleet, "secret_id" for any other secret`},
		{"upper-case tenant", `{"command":"rotate","tenant":"Acme"}`, `tenant "Acme" is not a tenant ID; fix: ` + fixTenant},
		{"tenant with a slash", `{"command":"rotate","tenant":"a/b"}`, `tenant "a/b" is not a tenant ID; fix: ` + fixTenant},
		{"tenant not a string", `{"command":"rotate","tenant":7}`, `tenant must be a string, not a number; fix: ` + fixTenant},
		{"dry_run with status", `{"command":"status","dry_run":true}`,
			`dry_run is only accepted with resync, set-config, enroll and unenroll; fix: remove it: "status" never writes anything it could rehearse`},
		{"dry_run not a boolean with enroll", `{"command":"enroll","tenant":"a","dry_run":"no","config":{"waba_id":"1"}}`,
			`dry_run must be true or false, not a string; fix: send "dry_run":true to see what enroll would do, or "dry_run":false to do it`},
		{"next_token with rotate", `{"command":"rotate","next_token":"x"}`,
			`next_token is only accepted with status; fix: remove it: only a fleet status pages`},
		{"next_token with a tenant", `{"command":"status","tenant":"a","next_token":"x"}`,
			`next_token is only accepted in a fleet status, without "secret_id" or "tenant"; fix: remove it, or remove the secret or tenant to page through the fleet`},
		{"forged next_token", `{"command":"status","next_token":"bm90IGEgY3Vyc29y"}`, `next_token is not a fleet status token (not a cursor object); fix: ` + fixToken},
		{"next_token not base64", `{"command":"status","next_token":"***"}`, `next_token is not a fleet status token (not base64url); fix: ` + fixToken},
		{"duplicate tenant", `{"command":"rotate","tenant":"a","tenant":"b"}`, `tenant appears more than once; fix: send it once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fleetSyntax.Parse([]byte(tc.raw))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got\n%v\nwant\n%s", err, tc.want)
			}
			var ie *rotation.InputError
			if !errors.As(err, &ie) {
				t.Errorf("want a *rotation.InputError in the chain, got %T", err)
			}
		})
	}
}

// Without the fleet, the fleet's commands and fields are refused, saying
// why; every other input parses as it always has.
func TestWithoutTheFleetItsCommandsAreRefused(t *testing.T) {
	for raw, want := range map[string]string{
		`{"command":"enroll","tenant":"acme","config":{"waba_id":"1"}}`: `command "enroll" is a fleet command, and this function's fleet is off (FLEET_NAME is empty)`,
		`{"command":"unenroll"}`:                    `command "unenroll" is a fleet command, and this function's fleet is off`,
		`{"command":"rotate","tenant":"acme"}`:      `field "tenant" is only accepted by a fleet, and this function's fleet is off (FLEET_NAME is empty); fix: turn the fleet on`,
		`{"command":"status","next_token":"abc"}`:   `field "next_token" is only accepted by a fleet`,
		`{"command":"status","fleet_cursor":"abc"}`: `field "fleet_cursor" is only accepted by a fleet`,
		`{"command":"set-config","config":{"waba_id":"1","app_secret_id":"0123456789abcdef0123456789abcdef"}}`: `config.app_secret_id: looks like a Meta app secret`,
	} {
		_, err := ParseCommand([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s:\ngot  %v\nwant %q", raw, err, want)
		}
	}
}

// events/enroll.json and events/unenroll.json stay valid fleet commands.
func TestFleetEventFilesAreValidCommands(t *testing.T) {
	want := map[string]Command{
		"enroll.json":   {Name: CommandEnroll, Tenant: "acme", DryRun: true, Config: `{"waba_id":"102290129340398","access_token_secret_id":"flowkey/tokens/acme"}`},
		"unenroll.json": {Name: CommandUnenroll, Tenant: "acme", DryRun: true},
	}
	for file, w := range want {
		b, err := os.ReadFile(filepath.Join("..", "..", "events", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fleetSyntax.Parse(b)
		if err != nil || got != w {
			t.Errorf("events/%s: %+v, %v; want %+v", file, got, err, w)
		}
	}
}

// The cursor only decodes what a fleet status made.
func TestCursorsRoundTripAndRefuseForgeries(t *testing.T) {
	d := 3.5
	c := cursor{V: cursorVersion, Page: "page-after-7", Index: 2, Run: fleetBase, Hops: 4, Totals: FleetCounts{Tenants: 9, Healthy: 8, Unhealthy: 1, Drifted: 1, MaxDaysSinceLastRotation: &d}}
	got, err := decodeCursor(c.encode())
	if err != nil || got.Page != c.Page || got.Index != 2 || !got.Run.Equal(fleetBase) || got.Hops != 4 || got.Totals.Tenants != 9 || *got.Totals.MaxDaysSinceLastRotation != 3.5 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, forged := range map[string]cursor{
		"version":  {V: 2, Run: fleetBase},
		"index":    {V: 1, Run: fleetBase, Index: 101},
		"no run":   {V: 1},
		"negative": {V: 1, Run: fleetBase, Totals: FleetCounts{Healthy: -1}},
	} {
		if _, err := decodeCursor(forged.encode()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeCursor(strings.Repeat("A", maxCursorLen+1)); err == nil {
		t.Error("an oversized token is accepted")
	}
}

// FuzzFleetParse: with the fleet's syntax any bytes give a valid command
// or an error with a fix; never a panic, never a command the shapes do
// not allow.
func FuzzFleetParse(f *testing.F) {
	for _, seed := range []string{
		`{"command":"enroll","tenant":"acme","config":{"waba_id":"1"}}`, `{"command":"unenroll","tenant":"acme","dry_run":true}`,
		`{"command":"status","next_token":"x"}`, `{"command":"rotate","tenant":"a","secret_id":"b"}`, `{"command":"status","tenant":"A"}`,
		`{"command":"enroll","tenant":"acme"}`, `{"command":"status","fleet_cursor":"eyJ2IjoxfQ"}`, `{}`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cmd, err := fleetSyntax.Parse(raw)
		if err != nil {
			if !strings.Contains(err.Error(), "fix:") {
				t.Fatalf("error without a fix: %v", err)
			}
			return
		}
		switch {
		case (cmd.Name == CommandEnroll || cmd.Name == CommandUnenroll) && (cmd.Tenant == "" || cmd.SecretID != ""):
			t.Fatalf("%s without its tenant: %+v", cmd.Name, cmd)
		case cmd.Tenant != "" && cmd.SecretID != "":
			t.Fatalf("both a tenant and a secret: %+v", cmd)
		case (cmd.Config != "") != (cmd.Name == CommandSetConfig || cmd.Name == CommandEnroll):
			t.Fatalf("config %q with %q", cmd.Config, cmd.Name)
		case (cmd.NextToken != "" || cmd.FleetCursor != "") && (cmd.Name != CommandStatus || cmd.Tenant != "" || cmd.SecretID != ""):
			t.Fatalf("a page token outside a fleet status: %+v", cmd)
		}
	})
}
