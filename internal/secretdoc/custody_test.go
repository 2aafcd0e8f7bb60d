package secretdoc

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/keypair"
)

const (
	testCustodyKeyARN = "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	testSecretARN     = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/whatsapp-flows-key-AbCdEf"
)

// kmsDocMap is a valid document whose key (pair a's public half) is held
// in KMS, as generic JSON for mutation.
func kmsDocMap(t testing.TB) map[string]any {
	t.Helper()
	k, err := NewKMSKey(testCustodyKeyARN, testFixtures().a.PublicDER(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	d := &Document{SchemaVersion: SchemaVersion, Config: Config{PhoneNumberIDs: []string{"106540352242922"}, KeyCustody: CustodyKMS}, Key: k}
	data, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTodaysDocumentsAreUnchanged: a document written before key custody
// existed parses, and marshals back byte for byte, whatever its key's
// method; its configuration reads as PEM custody.
func TestTodaysDocumentsAreUnchanged(t *testing.T) {
	f := testFixtures()
	pub := func(p *keypair.Pair) string { return strings.ReplaceAll(p.PublicPEM(), "\n", `\n`) }
	priv := func(p *keypair.Pair) string { return strings.ReplaceAll(p.PrivatePEM(), "\n", `\n`) }
	// Written out by hand in the field order of the schema before issue 12.
	docs := map[string]string{
		"kms:GenerateDataKeyPair": `{"schema_version":1,"config":{"phone_number_ids":["106540352242922"],"access_token_secret_id":"flowkey/graph-token","graph_api_version":"v24.0"},` +
			`"key":{"private_key_pem":"` + priv(f.a) + `","public_key_pem":"` + pub(f.a) + `","fingerprint_sha256":"` + f.a.Fingerprint().String() +
			`","created_at":"2026-11-25T10:00:00Z","generated_by":"kms:GenerateDataKeyPair","kms_key_id":"` + testKMSKeyARN + `"}}`,
		"crypto/rsa": `{"schema_version":1,"config":{"waba_id":"102290129340398","exclude_phone_number_ids":["3"]},` +
			`"key":{"private_key_pem":"` + priv(f.b) + `","public_key_pem":"` + pub(f.b) + `","fingerprint_sha256":"` + f.b.Fingerprint().String() +
			`","created_at":"2026-11-25T10:00:00Z","generated_by":"crypto/rsa"}}`,
		"config only": `{"schema_version":1,"config":{"phone_number_ids":["106540352242922","106540352242923"]}}`,
	}
	for name, in := range docs {
		t.Run(name, func(t *testing.T) {
			d, err := Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if d.Config.KeyCustody != "" || d.Config.Custody() != CustodySecretsManager {
				t.Errorf("custody = %q (%q), want PEM custody", d.Config.KeyCustody, d.Config.Custody())
			}
			if d.Key != nil && (d.Key.InKMS() || d.Key.Pair() == nil || d.Key.PublicKey() == nil) {
				t.Errorf("key custody: InKMS %v, Pair %v", d.Key.InKMS(), d.Key.Pair())
			}
			if d.Key != nil && d.Key.CheckHome(testSecretARN) != nil {
				t.Error("CheckHome refuses a PEM-custody key")
			}
			out, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, []byte(in)) {
				t.Errorf("Marshal changed the document:\n got %s\nwant %s", out, in)
			}
		})
	}
}

func TestKMSCustodyKeyRoundTrip(t *testing.T) {
	f := testFixtures()
	d, err := Parse(encode(t, kmsDocMap(t)))
	if err != nil {
		t.Fatal(err)
	}
	k := d.Key
	if !k.InKMS() || k.KMSKeyARN != testCustodyKeyARN || k.GeneratedBy != MethodKMSCustody || k.Pair() != nil {
		t.Fatalf("key = %s, custody %q, arn %q, pair %v", k, k.Custody, k.KMSKeyARN, k.Pair())
	}
	if !bytes.Equal(k.PublicDER(), f.a.PublicDER()) || !k.PublicKey().Equal(f.a.Public()) || k.FingerprintSHA256 != f.a.Fingerprint().String() {
		t.Error("public key is not the KMS key's")
	}
	if d.Config.Custody() != CustodyKMS {
		t.Errorf("config custody = %q", d.Config.Custody())
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var top struct{ Config, Key map[string]any }
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range top.Key {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"created_at", "custody", "fingerprint_sha256", "generated_by", "kms_key_arn", "public_key_pem"}; !slices.Equal(names, want) {
		t.Errorf("key fields = %q, want %q (no private_key_pem)", names, want)
	}
	if top.Config["key_custody"] != CustodyKMS {
		t.Errorf("config = %v", top.Config)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "doc", d)
	if text := fmt.Sprint(d, k) + logs.String(); !strings.Contains(text, f.a.Fingerprint().Short()) || !strings.Contains(text, MethodKMSCustody) ||
		!strings.Contains(text, "key_custody:kms") || strings.Contains(text, "BEGIN") {
		t.Errorf("printed %s", text)
	}
}

func TestNewKMSKeyRefuses(t *testing.T) {
	f := testFixtures()
	for name, tc := range map[string]struct {
		arn   string
		der   []byte
		field string
	}{
		"RSA-1024":         {testCustodyKeyARN, derOf(t, f.smallPubPEM), "kms GetPublicKey PublicKey"},
		"no public key":    {testCustodyKeyARN, nil, "kms GetPublicKey PublicKey"},
		"alias, not a key": {"arn:aws:kms:us-east-1:111122223333:alias/flowkey/x", f.a.PublicDER(), "key.kms_key_arn"},
		"key ID, not ARN":  {"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", f.a.PublicDER(), "key.kms_key_arn"},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := NewKMSKey(tc.arn, tc.der, testNow)
			if k != nil || !slices.Contains(errorFields(err), tc.field) {
				t.Fatalf("NewKMSKey = %v, %v; want an error for %s", k, err, tc.field)
			}
		})
	}
}

// derOf is the DER of a PEM block, unchecked (ParsePublicPEM refuses RSA-1024).
func derOf(t *testing.T, pemText string) []byte {
	t.Helper()
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		t.Fatal("not PEM")
	}
	return block.Bytes
}

func TestParseRejectsKMSCustodyKey(t *testing.T) {
	f := testFixtures()
	withKey := func(mutate func(k map[string]any)) []byte {
		m := kmsDocMap(t)
		mutate(key(m))
		return encode(t, m)
	}
	runErrCases(t, []errCase{
		{"private key in a KMS-held key", withKey(func(k map[string]any) { k["private_key_pem"] = f.a.PrivatePEM() }), []string{"key.private_key_pem"},
			`key.private_key_pem: is set, but a key with key.custody "kms" keeps its private key in KMS; fix: remove it; if this is a real private key, treat it as exposed`},
		{"no key ARN", withKey(func(k map[string]any) { delete(k, "kms_key_arn") }), []string{"key.kms_key_arn"}, "key.kms_key_arn: is missing"},
		{"alias ARN", withKey(func(k map[string]any) { k["kms_key_arn"] = "arn:aws:kms:us-east-1:111122223333:alias/flowkey/x" }), []string{"key.kms_key_arn"},
			"key.kms_key_arn: is an alias ARN, not a key ARN"},
		{"another service's ARN", withKey(func(k map[string]any) { k["kms_key_arn"] = testSecretARN }), []string{"key.kms_key_arn"},
			`key.kms_key_arn: "arn:aws:secretsmanager:`},
		{"PEM pasted as ARN", withKey(func(k map[string]any) { k["kms_key_arn"] = f.a.PrivatePEM() }), []string{"key.kms_key_arn"},
			"is not a KMS key ARN ("},
		{"wrong method", withKey(func(k map[string]any) { k["generated_by"] = keypair.MethodKMS }), []string{"key.generated_by"},
			`key.generated_by: is not "kms:CreateKey", the one method of a key with key.custody "kms"`},
		{"data key pair ID on a KMS-held key", withKey(func(k map[string]any) { k["kms_key_id"] = testKMSKeyARN }), []string{"key.kms_key_id"},
			"key.kms_key_id: is set, but only a key with key.generated_by"},
		{"unknown custody", withKey(func(k map[string]any) { k["custody"] = "hsm" }), []string{"key.custody"}, `key.custody: is not "kms" (3 characters)`},
		{"RSA-1024 public key", withKey(func(k map[string]any) { k["public_key_pem"], k["fingerprint_sha256"] = f.smallPubPEM, f.smallFP }),
			[]string{"key.public_key_pem"}, "is RSA-1024, must be RSA-2048"},
		{"no public key", withKey(func(k map[string]any) { delete(k, "public_key_pem") }), []string{"key.public_key_pem"}, "aws kms get-public-key"},
		{"kms_key_arn on a PEM-held key", mutated(t, func(m map[string]any) { key(m)["kms_key_arn"] = testCustodyKeyARN }), []string{"key.kms_key_arn"},
			`key.kms_key_arn: is set, but key.custody is not "kms"`},
		{"kms:CreateKey on a PEM-held key", mutated(t, func(m map[string]any) {
			key(m)["generated_by"] = MethodKMSCustody
			delete(key(m), "kms_key_id")
		}), []string{"key.generated_by"}, `key.generated_by: is "kms:CreateKey", but key.custody is not "kms"`},
		{"custody kms without anything else", mutated(t, func(m map[string]any) { m["key"] = map[string]any{"custody": "kms"} }),
			[]string{"key.kms_key_arn", "key.public_key_pem", "key.fingerprint_sha256", "key.created_at", "key.generated_by"}, "is missing"},
	})
}

func TestConfigKeyCustody(t *testing.T) {
	for _, v := range []string{CustodySecretsManager, CustodyKMS} {
		c := Config{PhoneNumberIDs: []string{"1"}, KeyCustody: v}
		if err := c.Validate(); err != nil || c.Custody() != v {
			t.Errorf("%q: Validate = %v, Custody = %q", v, err, c.Custody())
		}
	}
	runErrCases(t, []errCase{
		{"unknown custody", mutated(t, func(m map[string]any) { cfg(m)["key_custody"] = "KMS" }), []string{"config.key_custody"},
			`config.key_custody: is not "secrets_manager" or "kms" (3 characters); fix: use "secrets_manager" to keep the private key in the secret (the default), or "kms"`},
		{"custody is a list", mutated(t, func(m map[string]any) { cfg(m)["key_custody"] = []string{"kms"} }), []string{"config.key_custody"}, "is a list, must be a string"},
	})
}

func TestCheckHome(t *testing.T) {
	d, err := Parse(encode(t, kmsDocMap(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Key.CheckHome(testSecretARN); err != nil {
		t.Fatalf("same account and region: %v", err)
	}
	for name, tc := range map[string]struct{ secret, want string }{
		"another account": {"arn:aws:secretsmanager:us-east-1:444455556666:secret:flowkey/k-AbCdEf",
			"names a KMS key in account 111122223333, region us-east-1, but the secret is in account 444455556666, region us-east-1"},
		"another region": {"arn:aws:secretsmanager:eu-west-1:111122223333:secret:flowkey/k-AbCdEf", "but the secret is in account 111122223333, region eu-west-1"},
		"secret name":    {"flowkey/whatsapp-flows-key", "secret ARN: is not a Secrets Manager secret ARN"},
	} {
		t.Run(name, func(t *testing.T) {
			err := d.Key.CheckHome(tc.secret)
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckHome = %v, want %q", err, tc.want)
			}
		})
	}
	var none *Key
	if none.CheckHome(testSecretARN) != nil {
		t.Error("nil key")
	}
	if home, ok := ParseKMSKeyARN(testCustodyKeyARN); !ok || home.KeyID != "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" || home.Account != "111122223333" {
		t.Errorf("ParseKMSKeyARN = %+v, %v", home, ok)
	}
}
