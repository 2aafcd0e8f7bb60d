package secretdoc

import (
	"strings"
	"testing"
)

// A fleet tenant may name its own Meta app secret; the field is checked
// like the token secret's and never quotes what it holds.
func TestAppSecretID(t *testing.T) {
	d, err := Parse([]byte(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"],"app_secret_id":"flowkey/app-secrets/acme"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Config.AppSecretID != "flowkey/app-secrets/acme" {
		t.Errorf("app_secret_id = %q", d.Config.AppSecretID)
	}
	out, err := d.Marshal()
	if err != nil || !strings.Contains(string(out), `"app_secret_id":"flowkey/app-secrets/acme"`) {
		t.Errorf("marshal: %s, %v", out, err)
	}
	for raw, want := range map[string]string{
		`"0123456789abcdef0123456789abcdef"`: "config.app_secret_id: looks like a Meta app secret, not the ID of the secret that holds one",
		`"a b"`:                              "config.app_secret_id: is not a Secrets Manager secret name or ARN (3 characters",
		`7`:                                  "config.app_secret_id",
	} {
		_, err := Parse([]byte(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"],"app_secret_id":` + raw + `}}`))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: got %v, want %q", raw, err, want)
		}
	}
	// Without it a document marshals as before.
	d, _ = Parse([]byte(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`))
	if out, _ := d.Marshal(); strings.Contains(string(out), "app_secret_id") {
		t.Errorf("marshal without it: %s", out)
	}
}
