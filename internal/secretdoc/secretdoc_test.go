package secretdoc

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/keypair"
)

func TestErrorRendering(t *testing.T) {
	if got := (&Error{Field: "config.waba_id", Problem: "is bad", Fix: "do x"}).Error(); got != "config.waba_id: is bad; fix: do x" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Field: "f", Problem: "is bad"}).Error(); got != "f: is bad" {
		t.Errorf("got %q", got)
	}
}

func TestParseAccepts(t *testing.T) {
	f := testFixtures()
	tests := []struct {
		name   string
		mutate func(m map[string]any)
		check  func(t *testing.T, d *Document)
	}{
		{"kms key", func(map[string]any) {}, func(t *testing.T, d *Document) {
			if d.Key.GeneratedBy != keypair.MethodKMS || d.Key.KMSKeyID != testKMSKeyARN {
				t.Errorf("generated_by, kms_key_id = %q, %q", d.Key.GeneratedBy, d.Key.KMSKeyID)
			}
		}},
		{"crypto/rsa key", func(m map[string]any) {
			key(m)["generated_by"] = keypair.MethodCrypto
			delete(key(m), "kms_key_id")
		}, nil},
		{"imported key", func(m map[string]any) {
			key(m)["generated_by"] = MethodImported
			delete(key(m), "kms_key_id")
		}, nil},
		{"config only", func(m map[string]any) { delete(m, "key") }, func(t *testing.T, d *Document) {
			if d.Key != nil {
				t.Error("Key is set")
			}
		}},
		{"waba with include and exclude", func(m map[string]any) {
			m["config"] = map[string]any{"waba_id": "102290129340398", "include_phone_number_ids": []string{"1", "2"}, "exclude_phone_number_ids": []string{"3"}}
		}, func(t *testing.T, d *Document) {
			if d.Config.WABAID != "102290129340398" || len(d.Config.IncludePhoneNumberIDs) != 2 || len(d.Config.ExcludePhoneNumberIDs) != 1 {
				t.Errorf("config = %+v", d.Config)
			}
		}},
		{"empty lists and strings count as absent", func(m map[string]any) {
			m["config"] = map[string]any{"phone_number_ids": []string{}, "waba_id": "102290129340398", "include_phone_number_ids": []string{},
				"exclude_phone_number_ids": nil, "access_token_secret_id": "", "graph_api_version": nil}
		}, nil},
		{"secret ARN as token secret", func(m map[string]any) {
			cfg(m)["access_token_secret_id"] = "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token-AbCdEf"
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := docMap(t)
			tt.mutate(m)
			d, err := Parse(encode(t, m))
			if err != nil {
				t.Fatal(err)
			}
			if d.SchemaVersion != SchemaVersion {
				t.Errorf("schema_version = %d", d.SchemaVersion)
			}
			if d.Key != nil && (d.Key.Pair() == nil || d.Key.Pair().Fingerprint() != f.a.Fingerprint()) {
				t.Error("Key.Pair is not the document's pair")
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// TestPackageExampleParses keeps the format in the package comment honest.
func TestPackageExampleParses(t *testing.T) {
	doc := `{
	  "schema_version": 1,
	  "config": {
	    "phone_number_ids": ["106540352242922"],
	    "waba_id": "",
	    "include_phone_number_ids": [],
	    "exclude_phone_number_ids": [],
	    "access_token_secret_id": "flowkey/graph-token",
	    "graph_api_version": "v24.0"
	  }
	}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Config.PhoneNumberIDs, []string{"106540352242922"}) || d.Config.GraphAPIVersion != "v24.0" || d.Key != nil {
		t.Fatalf("parsed %v", d)
	}
}

func key(m map[string]any) map[string]any { return m["key"].(map[string]any) }
func cfg(m map[string]any) map[string]any { return m["config"].(map[string]any) }

func pkcs1PEM(t *testing.T, p *keypair.Pair) string {
	t.Helper()
	// keypair normalises to PKCS#8; rebuild the PKCS#1 form an operator might paste.
	return pkcs1FromPKCS8(t, p.PrivatePEM())
}

type errCase struct {
	name   string
	in     []byte
	fields []string // every one must be named
	want   string   // substring of the error text
}

func mutated(t *testing.T, mutate func(m map[string]any)) []byte {
	m := docMap(t)
	mutate(m)
	return encode(t, m)
}

func runErrCases(t *testing.T, tests []errCase) {
	t.Helper()
	f := testFixtures()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.in)
			if d != nil {
				t.Fatal("returned a document with the error")
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !isSecretdocOrKeypairError(err) {
				t.Fatalf("%v is neither *secretdoc.Error nor *keypair.Error", err)
			}
			got := errorFields(err)
			for _, want := range tt.fields {
				if !slices.Contains(got, want) {
					t.Errorf("fields %q lack %q; error: %v", got, want, err)
				}
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, ": ") || !strings.Contains(line, "; fix: ") {
					t.Errorf("line %q is not <field>: <problem>; fix: <fix>", line)
				}
			}
			assertNoFragment(t, err.Error(), append(secretMaterial(f.a), secretMaterial(f.b)...)...)
		})
	}
}

func TestParseRejectsDocument(t *testing.T) {
	valid := encode(t, docMap(t))
	runErrCases(t, []errCase{
		{"empty", nil, []string{"document"}, "document: is empty"},
		{"whitespace", []byte(" \n"), []string{"document"}, "is empty"},
		{"list", []byte("[]"), []string{"document"}, "document: is a list, must be a JSON object"},
		{"null", []byte("null"), []string{"document"}, "is null, must be a JSON object"},
		{"string", []byte(`"x"`), []string{"document"}, "is a string, must be a JSON object"},
		{"truncated", valid[:len(valid)/2], []string{"document"}, "is not valid JSON"},
		{"trailing object", append(bytes.Clone(valid), []byte(" {}")...), []string{"document"}, "has data after the JSON object"},
		{"trailing garbage", append(bytes.Clone(valid), 'x'), []string{"document"}, "has data after the JSON object"},
		{"raw newline in PEM string", []byte("{\"schema_version\":1,\"config\":{},\"key\":{\"private_key_pem\":\"-----BEGIN PRIVATE KEY-----\nMIIE\"}}"),
			[]string{"document"}, `escape the line breaks inside PEM strings as \n`},
		{"schema_version missing", mutated(t, func(m map[string]any) { delete(m, "schema_version") }), []string{"schema_version"},
			`schema_version: is missing; fix: add "schema_version": 1`},
		{"schema_version null", mutated(t, func(m map[string]any) { m["schema_version"] = nil }), []string{"schema_version"}, "is missing"},
		{"schema_version 2", mutated(t, func(m map[string]any) { m["schema_version"] = 2; m["new_thing"] = true }), []string{"schema_version"},
			"schema_version: 2 is not supported by this build (supports 1); fix: "},
		{"schema_version 0", mutated(t, func(m map[string]any) { m["schema_version"] = 0 }), []string{"schema_version"}, "0 is not supported"},
		{"schema_version string", mutated(t, func(m map[string]any) { m["schema_version"] = "1" }), []string{"schema_version"}, "is a string, must be a whole number"},
		{"schema_version fraction", mutated(t, func(m map[string]any) { m["schema_version"] = 1.5 }), []string{"schema_version"}, "is not a whole number"},
		{"schema_version huge", []byte(`{"schema_version":99999999999999999999999,"config":{}}`), []string{"schema_version"}, "is not a whole number"},
		{"unknown top-level field", mutated(t, func(m map[string]any) { m["comment"] = "x" }), []string{"comment"}, "comment: is not a known field"},
		{"field name in other case", mutated(t, func(m map[string]any) { m["Config"] = m["config"]; delete(m, "config") }), []string{"document", "config"},
			"not lowercase snake_case"},
		{"duplicate field", []byte(`{"schema_version":1,"schema_version":1,"config":{"phone_number_ids":["1"]}}`), []string{"schema_version"},
			"schema_version: appears more than once"},
		{"config missing", mutated(t, func(m map[string]any) { delete(m, "config") }), []string{"config"}, "config: is missing"},
		{"config not an object", mutated(t, func(m map[string]any) { m["config"] = "x" }), []string{"config"}, "config: is a string, must be a JSON object"},
		{"key not an object", mutated(t, func(m map[string]any) { m["key"] = []int{1} }), []string{"key"}, "key: is a list, must be a JSON object"},
	})
}

func TestParseRejectsConfig(t *testing.T) {
	withConfig := func(c map[string]any) []byte {
		return mutated(t, func(m map[string]any) { m["config"] = c })
	}
	token := "EAAG" + strings.Repeat("ZxQ7", 40)
	runErrCases(t, []errCase{
		{"unknown field", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "phone_numbers": []string{"1"}}),
			[]string{"config.phone_numbers"}, "config.phone_numbers: is not a known field"},
		{"duplicate field", []byte(`{"schema_version":1,"config":{"waba_id":"1","waba_id":"2"}}`), []string{"config.waba_id"}, "config.waba_id: appears more than once"},
		{"neither IDs nor WABA", withConfig(map[string]any{}), []string{"config.phone_number_ids"}, "has no phone number IDs and config.waba_id is not set"},
		{"empty ID list", withConfig(map[string]any{"phone_number_ids": []string{}}), []string{"config.phone_number_ids"}, "list at least one phone number ID"},
		{"IDs and WABA", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "waba_id": "2"}), []string{"config.waba_id"},
			"is set together with config.phone_number_ids"},
		{"ID list is a string", withConfig(map[string]any{"phone_number_ids": "106540352242922"}), []string{"config.phone_number_ids"},
			"config.phone_number_ids: is a string, must be a list of strings"},
		{"ID is a number", withConfig(map[string]any{"phone_number_ids": []any{"1", 106540352242922}}), []string{"config.phone_number_ids[1]"},
			"config.phone_number_ids[1]: is a number, must be a string"},
		{"ID with a letter", withConfig(map[string]any{"phone_number_ids": []string{"1", "10654o352242922"}}), []string{"config.phone_number_ids[1]"},
			`config.phone_number_ids[1]: "10654o..." is not decimal digits only (character 6 is not a digit)`},
		{"ID with a space", withConfig(map[string]any{"phone_number_ids": []string{" 1"}}), []string{"config.phone_number_ids[0]"}, `" ..." is not decimal digits only (character 1 is not a digit)`},
		{"empty ID", withConfig(map[string]any{"phone_number_ids": []string{"1", ""}}), []string{"config.phone_number_ids[1]"}, "config.phone_number_ids[1]: is empty"},
		{"duplicate ID", withConfig(map[string]any{"phone_number_ids": []string{"1", "2", "1"}}), []string{"config.phone_number_ids[2]"},
			`config.phone_number_ids[2]: "1" duplicates config.phone_number_ids[0]`},
		{"too long ID", withConfig(map[string]any{"phone_number_ids": []string{strings.Repeat("1", 33)}}), []string{"config.phone_number_ids[0]"}, "has 33 digits"},
		{"WABA not digits", withConfig(map[string]any{"waba_id": "abc"}), []string{"config.waba_id"}, `config.waba_id: "a..." is not decimal digits only`},
		{"WABA is a number", withConfig(map[string]any{"waba_id": 102290129340398}), []string{"config.waba_id"}, "config.waba_id: is a number, must be a string"},
		{"include without WABA", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "include_phone_number_ids": []string{"1"}}),
			[]string{"config.include_phone_number_ids"}, "config.include_phone_number_ids: is only allowed with config.waba_id"},
		{"exclude without WABA", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "exclude_phone_number_ids": []string{"2"}}),
			[]string{"config.exclude_phone_number_ids"}, "config.exclude_phone_number_ids: is only allowed with config.waba_id"},
		{"include ID not digits", withConfig(map[string]any{"waba_id": "9", "include_phone_number_ids": []string{"1", "x"}}),
			[]string{"config.include_phone_number_ids[1]"}, "config.include_phone_number_ids[1]: "},
		{"exclude ID not digits", withConfig(map[string]any{"waba_id": "9", "exclude_phone_number_ids": []string{"1-2"}}),
			[]string{"config.exclude_phone_number_ids[0]"}, `"1-..." is not decimal digits only (character 2 is not a digit)`},
		{"ID in include and exclude", withConfig(map[string]any{"waba_id": "9", "include_phone_number_ids": []string{"1", "2"}, "exclude_phone_number_ids": []string{"3", "2"}}),
			[]string{"config.exclude_phone_number_ids[1]"}, `config.exclude_phone_number_ids[1]: "2" is also in config.include_phone_number_ids[1]`},
		{"graph version without minor", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "graph_api_version": "v24"}),
			[]string{"config.graph_api_version"}, "is not a Graph API version of the form v<major>.<minor>"},
		{"graph version is a number", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "graph_api_version": 24.0}),
			[]string{"config.graph_api_version"}, "is a number, must be a string"},
		{"access token instead of secret ID", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "access_token_secret_id": token}),
			[]string{"config.access_token_secret_id"}, "looks like a Graph access token"},
		{"secret ID with spaces", withConfig(map[string]any{"phone_number_ids": []string{"1"}, "access_token_secret_id": "my token secret"}),
			[]string{"config.access_token_secret_id"}, "is not a Secrets Manager secret name or ARN"},
		{"more numbers than one secret may cover", withConfig(map[string]any{"phone_number_ids": numberIDs(MaxPhoneNumbers + 1)}),
			[]string{"config.phone_number_ids"}, "config.phone_number_ids: lists 101 phone numbers, more than the 100 one secret may cover; fix: split the numbers across secrets, at most 100 each"},
		{"several problems at once", withConfig(map[string]any{"phone_number_ids": []string{"x", "1", "1"}, "graph_api_version": "latest"}),
			[]string{"config.phone_number_ids[0]", "config.phone_number_ids[2]", "config.graph_api_version"}, "\n"},
	})
}

// TestConfigErrorsDoNotQuoteFreeText: a token pasted into the wrong field
// must not be copied into logs by the error that reports it.
func TestConfigErrorsDoNotQuoteFreeText(t *testing.T) {
	token := "EAAG" + strings.Repeat("ZxQ7", 40)
	for _, c := range []Config{
		{PhoneNumberIDs: []string{"1"}, AccessTokenSecretID: token},
		{PhoneNumberIDs: []string{"1"}, AccessTokenSecretID: token + " "},
		{PhoneNumberIDs: []string{"1"}, GraphAPIVersion: token},
		{PhoneNumberIDs: []string{"1", "1" + token}},
		{WABAID: "9" + token},
	} {
		err := c.Validate()
		if err == nil {
			t.Fatalf("%+v: no error", c)
		}
		assertNoFragment(t, err.Error(), token[1:])
	}
}

func pkcs1FromPKCS8(t *testing.T, pkcs8PEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(pkcs8PEM))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}))
}

func TestParseRejectsKey(t *testing.T) {
	f := testFixtures()
	withKey := func(mutate func(k map[string]any)) []byte {
		return mutated(t, func(m map[string]any) { mutate(key(m)) })
	}
	privA := f.a.PrivatePEM()
	runErrCases(t, []errCase{
		{"unknown field", withKey(func(k map[string]any) { k["private_key"] = "x" }), []string{"key.private_key"}, "key.private_key: is not a known field"},
		{"empty key object", mutated(t, func(m map[string]any) { m["key"] = map[string]any{} }),
			[]string{"key.private_key_pem", "key.public_key_pem", "key.fingerprint_sha256", "key.created_at", "key.generated_by"}, "is missing"},
		{"private_key_pem missing", withKey(func(k map[string]any) { delete(k, "private_key_pem") }), []string{"key.private_key_pem"}, "key.private_key_pem: is missing"},
		{"public_key_pem missing", withKey(func(k map[string]any) { delete(k, "public_key_pem") }), []string{"key.public_key_pem"}, "key.public_key_pem: is missing"},
		{"fingerprint missing", withKey(func(k map[string]any) { k["fingerprint_sha256"] = "" }), []string{"key.fingerprint_sha256"}, "key.fingerprint_sha256: is missing"},
		{"created_at missing", withKey(func(k map[string]any) { delete(k, "created_at") }), []string{"key.created_at"}, "key.created_at: is missing"},
		{"generated_by missing", withKey(func(k map[string]any) { delete(k, "generated_by"); delete(k, "kms_key_id") }), []string{"key.generated_by"},
			"key.generated_by: is missing"},
		{"private_key_pem is a number", withKey(func(k map[string]any) { k["private_key_pem"] = 5 }), []string{"key.private_key_pem"},
			"key.private_key_pem: is a number, must be a string"},
		{"created_at not RFC 3339", withKey(func(k map[string]any) { k["created_at"] = "25/11/2026" }), []string{"key.created_at"}, "key.created_at: is not an RFC 3339 time"},
		{"created_at is a number", withKey(func(k map[string]any) { k["created_at"] = 1764064800 }), []string{"key.created_at"}, "is a number, must be a string"},
		{"private key truncated", withKey(func(k map[string]any) { k["private_key_pem"] = privA[:len(privA)/2] }), []string{"key.private_key_pem"},
			"key.private_key_pem: is not a well-formed PEM block"},
		{"private key encrypted", withKey(func(k map[string]any) {
			k["private_key_pem"] = strings.ReplaceAll(privA, "PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
		}), []string{"key.private_key_pem"}, "export it unencrypted with `openssl pkcs8 -topk8 -nocrypt`"},
		{"private key twice", withKey(func(k map[string]any) { k["private_key_pem"] = privA + privA }), []string{"key.private_key_pem"}, "holds 2 PEM blocks"},
		// The document's format is PKCS#8 (README, Meta's Node example).
		{"PKCS#1 private key", withKey(func(k map[string]any) { k["private_key_pem"] = pkcs1PEM(t, f.a) }), []string{"key.private_key_pem"},
			"key.private_key_pem: is a PKCS#1 RSA private key (\"RSA PRIVATE KEY\"); the document holds PKCS#8 (\"PRIVATE KEY\"); fix: convert it with `openssl pkcs8 -topk8 -nocrypt -in rsa.pem -out private.pem`"},
		// A version has a key object or no "key" member; null is neither.
		{"null key", mutated(t, func(m map[string]any) { m["key"] = nil }), []string{"key"},
			`key: is null; fix: remove "key" for a configuration-only version, or give the key object`},
		{"public key in private field", withKey(func(k map[string]any) { k["private_key_pem"] = f.a.PublicPEM() }), []string{"key.private_key_pem"},
			`is a PEM block of type "PUBLIC KEY", expected "PRIVATE KEY"`},
		{"private key in public field", withKey(func(k map[string]any) { k["public_key_pem"] = privA }), []string{"key.public_key_pem"},
			"this is a private key in the public key field"},
		{"RSA-1024 pair", withKey(func(k map[string]any) {
			k["private_key_pem"], k["public_key_pem"], k["fingerprint_sha256"] = f.smallPrivPEM, f.smallPubPEM, f.smallFP
		}), []string{"key.private_key_pem", "key.public_key_pem"}, "is RSA-1024, must be RSA-2048"},
		{"public key of another pair", withKey(func(k map[string]any) {
			k["public_key_pem"], k["fingerprint_sha256"] = f.b.PublicPEM(), f.b.Fingerprint().String()
		}), []string{"key.public_key_pem"}, "key.public_key_pem: does not match key.private_key_pem; fix: store the public key of the same pair (fingerprint " +
			f.a.Fingerprint().Short() + ", not " + f.b.Fingerprint().Short() + ")"},
		{"private key of another pair", withKey(func(k map[string]any) { k["private_key_pem"] = f.b.PrivatePEM() }), []string{"key.public_key_pem"},
			"does not match key.private_key_pem"},
		{"fingerprint of another key", withKey(func(k map[string]any) { k["fingerprint_sha256"] = f.b.Fingerprint().String() }), []string{"key.fingerprint_sha256"},
			"but the SHA-256 of key.public_key_pem is " + f.a.Fingerprint().String() + "; fix: set it to " + f.a.Fingerprint().String()},
		{"fingerprint in upper case", withKey(func(k map[string]any) { k["fingerprint_sha256"] = strings.ToUpper(f.a.Fingerprint().String()) }),
			[]string{"key.fingerprint_sha256"}, "is not 64 lowercase hex characters (64 characters)"},
		{"fingerprint short", withKey(func(k map[string]any) { k["fingerprint_sha256"] = f.a.Fingerprint().Short() }), []string{"key.fingerprint_sha256"},
			"(16 characters)"},
		{"PEM pasted as fingerprint", withKey(func(k map[string]any) { k["fingerprint_sha256"] = privA }), []string{"key.fingerprint_sha256"},
			"is not 64 lowercase hex characters"},
		{"unknown generated_by", withKey(func(k map[string]any) { k["generated_by"] = "openssl"; delete(k, "kms_key_id") }), []string{"key.generated_by"},
			`key.generated_by: is not one of "kms:GenerateDataKeyPair", "crypto/rsa", "imported"`},
		{"kms without kms_key_id", withKey(func(k map[string]any) { delete(k, "kms_key_id") }), []string{"key.kms_key_id"},
			`key.kms_key_id: is missing; key.generated_by is "kms:GenerateDataKeyPair"`},
		{"kms_key_id without kms", withKey(func(k map[string]any) { k["generated_by"] = keypair.MethodCrypto }), []string{"key.kms_key_id"},
			"key.kms_key_id: is set, but only a key with key.generated_by"},
		{"several problems at once", withKey(func(k map[string]any) {
			k["public_key_pem"] = f.b.PublicPEM()
			k["generated_by"] = "me"
		}), []string{"key.public_key_pem", "key.fingerprint_sha256", "key.generated_by", "key.kms_key_id"}, "\n"},
	})
}

// A value that is not this document, such as the Graph token secret read
// by mistake, must not come back in the error: encoding/json's message
// quotes the offending character ("invalid character 'l' in literal
// false" for a token that starts "fl").
func TestParseErrorsNeverQuoteTheValue(t *testing.T) {
	for _, v := range []string{
		"flowkey-local-token", "EAAGm0PX4ZCpsBAKZC9TZBZA", "true-ish", "nullable-token", "-secret", "12345abcde",
		`{"schema_version":1,"config":{"phone_number_ids":["1"]},"key":{"private_key_pem":tru3}}`,
		`{"schema_version":1,"config":{"waba_id":"1"} flowkey-local-token}`,
		`{"schema_version":1,"config":{"waba_id":"1"},"x":nulL}`,
	} {
		_, err := Parse([]byte(v))
		if err == nil {
			t.Errorf("%q parsed", v)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "invalid character") || strings.Contains(msg, "'") {
			t.Errorf("the error about %q quotes a character of it: %s", v, msg)
		}
		for _, w := range []string{"flowkey-local", "EAAG", "tru3", "nulL", "true-ish", "nullable", "abcde"} {
			if strings.Contains(v, w) && strings.Contains(msg, w) {
				t.Errorf("the error about %q repeats %q: %s", v, w, msg)
			}
		}
	}
	_, err := Parse([]byte("flowkey-local-token"))
	var e *Error
	if !errors.As(err, &e) || e.Field != "document" || !strings.Contains(e.Problem, "does not start with {") || !strings.Contains(e.Fix, "Graph token secret") {
		t.Errorf("a value that is not JSON: %v, want a document error that asks whether this is the token secret", err)
	}
}

// numberIDs returns n distinct phone number IDs.
func numberIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("1065403522%05d", i)
	}
	return ids
}

func TestTheMaximumOfPhoneNumbersIsAccepted(t *testing.T) {
	c := Config{PhoneNumberIDs: numberIDs(MaxPhoneNumbers)}
	if err := c.Validate(); err != nil {
		t.Fatalf("%d numbers: %v", MaxPhoneNumbers, err)
	}
	// 3,000 IDs fit in a secret's 64 KiB: the count, not the size, bounds them.
	c.PhoneNumberIDs = numberIDs(3000)
	err := c.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "lists 3000 phone numbers") {
		t.Errorf("3000 numbers: %v, want one error giving the count", err)
	}
}
