package secretdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
)

func TestNewKey(t *testing.T) {
	f := testFixtures()
	local := time.Date(2026, 11, 25, 11, 30, 15, 987654321, time.FixedZone("CET", 3600))
	k := NewKey(&keypair.Generated{Pair: f.a, Method: keypair.MethodKMS, KMSKeyID: testKMSKeyARN}, local)
	want := Key{
		PrivateKeyPEM:     f.a.PrivatePEM(),
		PublicKeyPEM:      f.a.PublicPEM(),
		FingerprintSHA256: f.a.Fingerprint().String(),
		CreatedAt:         time.Date(2026, 11, 25, 10, 30, 15, 0, time.UTC),
		GeneratedBy:       keypair.MethodKMS,
		KMSKeyID:          testKMSKeyARN,
	}
	if k.PrivateKeyPEM != want.PrivateKeyPEM || k.PublicKeyPEM != want.PublicKeyPEM || k.FingerprintSHA256 != want.FingerprintSHA256 ||
		!k.CreatedAt.Equal(want.CreatedAt) || k.CreatedAt.Location() != time.UTC || k.GeneratedBy != want.GeneratedBy || k.KMSKeyID != want.KMSKeyID {
		t.Fatalf("NewKey = %s, fields differ from the pair", k)
	}
	if k.Pair() != f.a {
		t.Fatal("Pair() is not the generated pair")
	}
}

func TestNewKeyWithoutPairCannotBeStored(t *testing.T) {
	for _, g := range []*keypair.Generated{nil, {Method: keypair.MethodCrypto}} {
		d := &Document{SchemaVersion: SchemaVersion, Config: Config{PhoneNumberIDs: []string{"1"}}, Key: NewKey(g, testNow)}
		if d.Key == nil {
			t.Fatal("NewKey returned nil: Marshal would silently store a document without a key")
		}
		_, err := d.Marshal()
		if !slices.Contains(errorFields(err), "key.private_key_pem") {
			t.Fatalf("Marshal error = %v, want key.private_key_pem missing", err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	f := testFixtures()
	for _, g := range []*keypair.Generated{
		{Pair: f.a, Method: keypair.MethodKMS, KMSKeyID: testKMSKeyARN},
		{Pair: f.b, Method: keypair.MethodCrypto},
	} {
		t.Run(g.Method, func(t *testing.T) {
			in := &Document{
				SchemaVersion: SchemaVersion,
				Config:        Config{WABAID: "102290129340398", ExcludePhoneNumberIDs: []string{"106540352242922"}, GraphAPIVersion: "v23.0"},
				Key:           NewKey(g, testNow),
			}
			data, err := in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			out, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if out.Key.FingerprintSHA256 != g.Pair.Fingerprint().String() || out.Key.Pair().Fingerprint() != g.Pair.Fingerprint() {
				t.Fatal("fingerprint changed across Marshal/Parse")
			}
			if !out.Key.CreatedAt.Equal(testNow) || out.Key.GeneratedBy != g.Method || out.Key.KMSKeyID != g.KMSKeyID {
				t.Errorf("key metadata changed: %s", out.Key)
			}
			if out.Config.WABAID != in.Config.WABAID || !slices.Equal(out.Config.ExcludePhoneNumberIDs, in.Config.ExcludePhoneNumberIDs) ||
				out.Config.GraphAPIVersion != in.Config.GraphAPIVersion {
				t.Errorf("config changed: %+v", out.Config)
			}
			if err := out.Key.Pair().ProveDecrypt(nil, g.Pair.Public()); err != nil {
				t.Fatal(err)
			}
			again, err := out.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Error("Marshal(Parse(x)) != x")
			}
		})
	}
}

func TestConfigOnlyDocument(t *testing.T) {
	d := &Document{SchemaVersion: SchemaVersion, Config: Config{PhoneNumberIDs: []string{"106540352242922"}}}
	data, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`; string(data) != want {
		t.Fatalf("Marshal = %s, want %s", data, want)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Key != nil {
		t.Fatal("config-only document grew a key")
	}
	// infra writes the first version with json.Marshal, not Marshal: both
	// must give what Parse reads.
	plain, err := json.Marshal(*d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, data) {
		t.Errorf("json.Marshal = %s, Marshal = %s", plain, data)
	}
}

func TestMarshalWritesOnlyTheFormat(t *testing.T) {
	data, err := (&Document{SchemaVersion: SchemaVersion, Config: Config{PhoneNumberIDs: []string{"1"}},
		Key: NewKey(&keypair.Generated{Pair: testFixtures().a, Method: keypair.MethodCrypto}, testNow)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	var keyObj map[string]any
	if err := json.Unmarshal(top["key"], &keyObj); err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range keyObj {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"created_at", "fingerprint_sha256", "generated_by", "private_key_pem", "public_key_pem"}; !slices.Equal(names, want) {
		t.Fatalf("key fields = %q, want %q", names, want)
	}
	if keyObj["created_at"] != "2026-11-25T10:00:00Z" {
		t.Errorf("created_at = %v", keyObj["created_at"])
	}
}

func TestMarshalValidates(t *testing.T) {
	f := testFixtures()
	good := func() *Document {
		return &Document{SchemaVersion: SchemaVersion, Config: Config{PhoneNumberIDs: []string{"1"}},
			Key: NewKey(&keypair.Generated{Pair: f.a, Method: keypair.MethodCrypto}, testNow)}
	}
	tests := []struct {
		name   string
		doc    func() *Document
		field  string
		wantIn string
	}{
		{"nil document", func() *Document { return nil }, "document", "is nil"},
		{"no schema_version", func() *Document { d := good(); d.SchemaVersion = 0; return d }, "schema_version", "is missing"},
		{"future schema_version", func() *Document { d := good(); d.SchemaVersion = 2; return d }, "schema_version", "2 is not supported"},
		{"bad config", func() *Document { d := good(); d.Config.WABAID = "2"; return d }, "config.waba_id", "is set together"},
		{"public key swapped after NewKey", func() *Document { d := good(); d.Key.PublicKeyPEM = f.b.PublicPEM(); return d }, "key.public_key_pem", "does not match"},
		{"fingerprint edited", func() *Document { d := good(); d.Key.FingerprintSHA256 = f.b.Fingerprint().String(); return d }, "key.fingerprint_sha256", "but the SHA-256"},
		{"kms id on a crypto/rsa key", func() *Document { d := good(); d.Key.KMSKeyID = testKMSKeyARN; return d }, "key.kms_key_id", "is set"},
		{"zero created_at", func() *Document { d := good(); d.Key.CreatedAt = time.Time{}; return d }, "key.created_at", "is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.doc().Marshal()
			if data != nil {
				t.Fatal("returned data with the error")
			}
			if !slices.Contains(errorFields(err), tt.field) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("error = %v, want field %q and %q", err, tt.field, tt.wantIn)
			}
			assertNoFragment(t, err.Error(), append(secretMaterial(f.a), secretMaterial(f.b)...)...)
		})
	}
}

// TestPrintingNeverShowsPEM covers every way a document or key reaches a
// log: fmt verbs on pointers and values, log.Printf and slog handlers.
func TestPrintingNeverShowsPEM(t *testing.T) {
	f := testFixtures()
	d, err := Parse(encode(t, docMap(t)))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", d)
		fmt.Fprintf(&out, verb+"\n", *d)
		fmt.Fprintf(&out, verb+"\n", d.Key)
		fmt.Fprintf(&out, verb+"\n", *d.Key)
		fmt.Fprintf(&out, verb+"\n", []any{d, d.Key})
	}
	log.New(&out, "", 0).Printf("doc %v key %+v", d, d.Key)
	for _, h := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		slog.New(h).Info("rotated", "doc", d, "key", d.Key, "nil_key", (*Key)(nil), "nil_doc", (*Document)(nil), slog.Group("g", "key", d.Key))
	}
	text := out.String()
	assertNoFragment(t, text, secretMaterial(f.a)...)
	if strings.Contains(text, "PRIVATE") {
		t.Fatal("PEM label printed")
	}
	for _, want := range []string{f.a.Fingerprint().Short(), "schema_version", "phone_number_ids:2", keypair.MethodKMS} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestStringOfUnvalidatedKey(t *testing.T) {
	// A Key built by hand, with PEM in the wrong fields, still prints nothing of it.
	priv := testFixtures().a.PrivatePEM()
	k := &Key{FingerprintSHA256: priv, GeneratedBy: priv, PrivateKeyPEM: priv}
	d := &Document{Config: Config{WABAID: priv}, Key: k}
	text := fmt.Sprint(k, d) + fmt.Sprintf("%+v", d)
	assertNoFragment(t, text, pemBody(priv))
	if !strings.Contains(text, "fingerprint:invalid") || !strings.Contains(text, "generated_by:invalid") || !strings.Contains(text, "waba_id:invalid") {
		t.Errorf("String = %s", text)
	}
	var nilKey *Key
	var nilDoc *Document
	if nilKey.String() != "secretdoc.Key(nil)" || nilDoc.String() != "secretdoc.Document(nil)" {
		t.Error("nil String")
	}
}

func TestErrorsAreMatchable(t *testing.T) {
	_, err := Parse([]byte(`{"schema_version":1,"config":{"waba_id":"x"}}`))
	var de *Error
	if !errors.As(err, &de) || de.Field != "config.waba_id" {
		t.Fatalf("errors.As(*Error) = %v", err)
	}
	m := docMap(t)
	key(m)["private_key_pem"] = "junk"
	_, err = Parse(encode(t, m))
	var ke *keypair.Error
	if !errors.As(err, &ke) || ke.Field != "key.private_key_pem" {
		t.Fatalf("errors.As(*keypair.Error) = %v", err)
	}
}
