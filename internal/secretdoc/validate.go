package secretdoc

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/flowkey/flowkey/internal/keypair"
)

// maxIDLen bounds Graph object IDs as internal/graph does; Meta's are 15-17 digits.
const maxIDLen = 32

// MaxPhoneNumbers is how many phone numbers one secret may cover, listed
// in phone_number_ids or resolved from waba_id. Meta limits management
// calls to about 200 an hour per WABA (and app), and a clean rotation of N
// numbers costs 2N of them, one upload and one read each: 100 numbers use
// that hour's budget, and leave nothing for a rollback or a retry. Larger
// fleets use one secret per WABA (or split a WABA with the include and
// exclude lists).
const MaxPhoneNumbers = 100

// FixTooManyNumbers is the advice for a secret that covers more numbers.
const FixTooManyNumbers = "split the numbers across secrets, at most 100 each (one secret per WABA; within a WABA, narrow each secret with config.include_phone_number_ids or config.exclude_phone_number_ids): a rotation of N numbers costs about 2N Graph calls, and Meta allows about 200 an hour per WABA"

// versionRE is the Graph API version form internal/graph accepts.
var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// fingerprintRE is the stored fingerprint form: keypair.Fingerprint.String.
var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks configuration rules: exactly one of phone_number_ids and
// waba_id; at most MaxPhoneNumbers phone_number_ids; IDs are non-empty
// decimal digits without duplicates; include and exclude lists only with
// waba_id; graph_api_version like "v24.0". The numbers a waba_id resolves
// to are bounded where they are listed (internal/keystate).
//
// An empty list counts as absent, as it does when the document is written
// (omitempty). The include and exclude lists must not share an ID.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, problem, fix string) {
		errs = append(errs, &Error{Field: field, Problem: problem, Fix: fix})
	}

	switch {
	case len(c.PhoneNumberIDs) == 0 && c.WABAID == "":
		bad("config.phone_number_ids", "has no phone number IDs and config.waba_id is not set",
			"list at least one phone number ID in config.phone_number_ids, or set config.waba_id to rotate every number of the WhatsApp Business Account")
	case len(c.PhoneNumberIDs) > 0 && c.WABAID != "":
		bad("config.waba_id", "is set together with config.phone_number_ids; exactly one of them may be set",
			"keep config.phone_number_ids for a fixed list of numbers, or config.waba_id to list the account's numbers at each rotation")
	}
	if n := len(c.PhoneNumberIDs); n > MaxPhoneNumbers {
		// The IDs of a list this long are not worth a report each.
		bad("config.phone_number_ids", fmt.Sprintf("lists %d phone numbers, more than the %d one secret may cover", n, MaxPhoneNumbers), FixTooManyNumbers)
	} else {
		errs = append(errs, checkIDList("config.phone_number_ids", c.PhoneNumberIDs)...)
	}
	if c.WABAID != "" {
		if err := checkID("config.waba_id", c.WABAID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.WABAID == "" {
		for _, l := range []struct {
			field string
			ids   []string
		}{{"config.include_phone_number_ids", c.IncludePhoneNumberIDs}, {"config.exclude_phone_number_ids", c.ExcludePhoneNumberIDs}} {
			if len(l.ids) > 0 {
				bad(l.field, "is only allowed with config.waba_id", "remove it and list the numbers in config.phone_number_ids, or set config.waba_id instead of config.phone_number_ids")
			}
		}
	}
	errs = append(errs, checkIDList("config.include_phone_number_ids", c.IncludePhoneNumberIDs)...)
	errs = append(errs, checkIDList("config.exclude_phone_number_ids", c.ExcludePhoneNumberIDs)...)
	for i, id := range c.ExcludePhoneNumberIDs {
		if j := slices.Index(c.IncludePhoneNumberIDs, id); j >= 0 && isDigits(id) {
			bad(fmt.Sprintf("config.exclude_phone_number_ids[%d]", i),
				fmt.Sprintf("%q is also in config.include_phone_number_ids[%d]", id, j),
				"remove it from one of the two lists")
		}
	}
	if c.AccessTokenSecretID != "" {
		if err := checkSecretID(c.AccessTokenSecretID); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AppSecretID != "" {
		if err := checkAppSecretID(c.AppSecretID); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.KeyCustody {
	case "", CustodySecretsManager, CustodyKMS:
	default:
		// Not quoted, like any free text.
		bad("config.key_custody", fmt.Sprintf("is not %q or %q (%d characters)", CustodySecretsManager, CustodyKMS, len(c.KeyCustody)),
			fmt.Sprintf("use %q to keep the private key in the secret (the default), or %q to keep it in AWS KMS", CustodySecretsManager, CustodyKMS))
	}
	if c.GraphAPIVersion != "" && !versionRE.MatchString(c.GraphAPIVersion) {
		// Not quoted: free text could be anything an operator pasted.
		bad("config.graph_api_version", fmt.Sprintf("is not a Graph API version of the form v<major>.<minor> (%d characters)", len(c.GraphAPIVersion)),
			`use a live version like "v24.0", or remove it to use the function's default`)
	}
	return errors.Join(errs...)
}

// validate is the whole-document check shared by Parse and Marshal.
func (d *Document) validate() error {
	if d.SchemaVersion != SchemaVersion {
		if d.SchemaVersion == 0 {
			return &Error{Field: "schema_version", Problem: "is missing", Fix: fmt.Sprintf("set it to %d", SchemaVersion)}
		}
		return unsupportedVersion(d.SchemaVersion)
	}
	var errs []error
	if err := d.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d.Key != nil {
		pair, pub, pubDER, err := d.Key.validate()
		if err != nil {
			errs = append(errs, err)
		} else {
			d.Key.pair, d.Key.public, d.Key.pubDER = pair, pub, pubDER
		}
	}
	return errors.Join(errs...)
}

// validate checks the key material and returns its pair (nil in KMS
// custody) and public key. Every field is checked that can be on its own,
// so one run names every problem.
func (k *Key) validate() (*keypair.Pair, *rsa.PublicKey, []byte, error) {
	errs := k.checkCustody()
	errs = append(errs, k.missing()...)
	pair, pub, pubDER, matErrs := k.material()
	errs = append(errs, matErrs...)
	errs = append(errs, k.checkFingerprint(pubDER)...)
	errs = append(errs, k.checkMethod()...)
	if len(errs) > 0 {
		return nil, nil, nil, errors.Join(errs...)
	}
	return pair, pub, pubDER, nil
}

// missing names every required field that is empty.
func (k *Key) missing() []error {
	var errs []error
	add := func(field, fix string) {
		errs = append(errs, &Error{Field: "key." + field, Problem: "is missing", Fix: fix})
	}
	switch {
	case k.Custody == CustodyKMS && k.KMSKeyARN == "":
		add("kms_key_arn", "set it to the ARN of the KMS key that holds the private key, or remove \"key\" to let the next rotation create one")
	case k.Custody != CustodyKMS && k.PrivateKeyPEM == "":
		add("private_key_pem", "put the unencrypted PKCS#8 PEM of the private key here, or remove \"key\" to let the first rotation generate one")
	}
	if k.PublicKeyPEM == "" {
		fix := "derive it with `openssl pkey -in private.pem -pubout`"
		if k.Custody == CustodyKMS {
			fix = "store the KMS key's public key: `aws kms get-public-key --key-id <kms_key_arn>` gives its DER, in base64"
		}
		add("public_key_pem", fix)
	}
	if k.FingerprintSHA256 == "" {
		add("fingerprint_sha256", "set it to the SHA-256 of the public key's DER: `openssl pkey -pubin -in public.pem -outform DER | sha256sum`")
	}
	if k.CreatedAt.IsZero() {
		add("created_at", `set it to when the key was made, in RFC 3339, e.g. "2026-11-25T10:00:00Z"`)
	}
	if k.GeneratedBy == "" {
		fix := fmt.Sprintf("set it to %q for a key you made yourself", MethodImported)
		if k.Custody == CustodyKMS {
			fix = fmt.Sprintf("set it to %q", MethodKMSCustody)
		}
		add("generated_by", fix)
	}
	return errs
}

// material parses the PEMs that are present and checks that they are one
// pair. pair, pub and pubDER are nil where a PEM is absent or unusable.
func (k *Key) material() (pair *keypair.Pair, pub *rsa.PublicKey, pubDER []byte, errs []error) {
	if k.PrivateKeyPEM != "" && k.Custody != CustodyKMS {
		p, err := keypair.ParsePrivatePEM("key.private_key_pem", k.PrivateKeyPEM)
		if err != nil {
			errs = append(errs, err)
		} else {
			pair = p
		}
	}
	if k.PublicKeyPEM != "" {
		key, der, err := keypair.ParsePublicPEM("key.public_key_pem", k.PublicKeyPEM)
		if err != nil {
			errs = append(errs, err)
		} else {
			pub, pubDER = key, der
		}
	}
	if pair != nil && pubDER != nil && !pair.MatchesPublicDER(pubDER) {
		errs = append(errs, &Error{Field: "key.public_key_pem", Problem: "does not match key.private_key_pem",
			Fix: fmt.Sprintf("store the public key of the same pair (fingerprint %s, not %s): `openssl pkey -in private.pem -pubout`",
				pair.Fingerprint().Short(), keypair.FingerprintOf(pubDER).Short())})
	}
	return pair, pub, pubDER, errs
}

// checkFingerprint checks the stored fingerprint's form and, when the
// public key could be read (pubDER), that it is that key's.
func (k *Key) checkFingerprint(pubDER []byte) []error {
	switch {
	case k.FingerprintSHA256 == "":
	case !fingerprintRE.MatchString(k.FingerprintSHA256):
		// Not quoted: a misplaced PEM would be echoed otherwise.
		return []error{&Error{Field: "key.fingerprint_sha256",
			Problem: fmt.Sprintf("is not 64 lowercase hex characters (%d characters)", len(k.FingerprintSHA256)),
			Fix:     "set it to the lowercase hex SHA-256 of the public key's DER: `openssl pkey -pubin -in public.pem -outform DER | sha256sum`"}}
	case pubDER != nil:
		if want := keypair.FingerprintOf(pubDER).String(); k.FingerprintSHA256 != want {
			return []error{&Error{Field: "key.fingerprint_sha256",
				Problem: fmt.Sprintf("is %s..., but the SHA-256 of key.public_key_pem is %s", k.FingerprintSHA256[:16], want),
				Fix:     "set it to " + want}}
		}
	}
	return nil
}

// checkMethod checks generated_by and that kms_key_id goes with it.
func (k *Key) checkMethod() []error {
	var errs []error
	switch {
	case k.Custody == CustodyKMS:
		if k.GeneratedBy != "" && k.GeneratedBy != MethodKMSCustody {
			errs = append(errs, &Error{Field: "key.generated_by", Problem: fmt.Sprintf("is not %q, the one method of a key with key.custody %q", MethodKMSCustody, CustodyKMS),
				Fix: fmt.Sprintf("set it to %q", MethodKMSCustody)})
		}
	case k.GeneratedBy == MethodKMSCustody:
		errs = append(errs, &Error{Field: "key.generated_by", Problem: fmt.Sprintf("is %q, but key.custody is not %q", MethodKMSCustody, CustodyKMS),
			Fix: fmt.Sprintf("set key.custody to %q and name the key in key.kms_key_arn, or use %q for a key you made yourself", CustodyKMS, MethodImported)})
	default:
		switch k.GeneratedBy {
		case "", keypair.MethodKMS, keypair.MethodCrypto, MethodImported:
		default:
			errs = append(errs, &Error{Field: "key.generated_by",
				Problem: fmt.Sprintf("is not one of %q, %q, %q", keypair.MethodKMS, keypair.MethodCrypto, MethodImported),
				Fix:     fmt.Sprintf("use %q for a key you made yourself", MethodImported)})
		}
	}
	switch {
	case k.GeneratedBy == keypair.MethodKMS && k.KMSKeyID == "":
		errs = append(errs, &Error{Field: "key.kms_key_id", Problem: "is missing; key.generated_by is " + strconv.Quote(keypair.MethodKMS),
			Fix: "set it to the ARN of the KMS key that generated the pair"})
	case k.GeneratedBy != keypair.MethodKMS && k.KMSKeyID != "":
		errs = append(errs, &Error{Field: "key.kms_key_id", Problem: fmt.Sprintf("is set, but only a key with key.generated_by %q has one", keypair.MethodKMS),
			Fix: "remove it"})
	}
	return errs
}

func checkIDList(field string, ids []string) []error {
	var errs []error
	for i, id := range ids {
		path := fmt.Sprintf("%s[%d]", field, i)
		if err := checkID(path, id); err != nil {
			errs = append(errs, err)
			continue
		}
		if j := slices.Index(ids[:i], id); j >= 0 {
			errs = append(errs, &Error{Field: path, Problem: fmt.Sprintf("%q duplicates %s[%d]", id, field, j), Fix: "remove the duplicate"})
		}
	}
	return errs
}

// checkID shows the ID up to its first bad character: IDs are not secret,
// but whatever follows a non-digit may not be an ID at all.
func checkID(field, id string) error {
	const fix = "use the numeric ID as WhatsApp Manager shows it, e.g. 106540352242922"
	if id == "" {
		return &Error{Field: field, Problem: "is empty", Fix: fix}
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		_, size := utf8.DecodeRuneInString(id[i:])
		shown := id[:i+size]
		if i > 20 {
			shown = id[:20]
		}
		return &Error{Field: field, Problem: fmt.Sprintf("%q is not decimal digits only (character %d is not a digit)", shown+"...", utf8.RuneCountInString(id[:i])+1), Fix: fix}
	}
	if len(id) > maxIDLen {
		return &Error{Field: field, Problem: fmt.Sprintf("has %d digits, more than any Graph ID (%d)", len(id), maxIDLen), Fix: fix}
	}
	return nil
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// checkSecretID accepts a Secrets Manager secret name or ARN. It never
// quotes the value: a token pasted here by mistake must not reach the logs.
func checkSecretID(id string) error {
	const field = "config.access_token_secret_id"
	if strings.HasPrefix(id, "EAA") && len(id) > 100 {
		return &Error{Field: field, Problem: "looks like a Graph access token, not the ID of the secret that holds one",
			Fix: "store the token in its own secret and put that secret's name or ARN here; then revoke the exposed token"}
	}
	if len(id) > 2048 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r))
	}) {
		return &Error{Field: field, Problem: fmt.Sprintf("is not a Secrets Manager secret name or ARN (%d characters; allowed: letters, digits and /_+=.@-:)", len(id)),
			Fix: "give the name or ARN of the secret that holds the Graph system user token"}
	}
	return nil
}

// appSecretRE is the shape of a Meta app secret: 32 hex digits.
var appSecretRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkAppSecretID accepts a secret name or ARN, as checkSecretID does, and
// refuses what looks like the app secret itself. It never quotes the value.
func checkAppSecretID(id string) error {
	const field = "config.app_secret_id"
	if appSecretRE.MatchString(id) {
		return &Error{Field: field, Problem: "looks like a Meta app secret, not the ID of the secret that holds one",
			Fix: "store the app secret in its own secret and put that secret's name or ARN here; then reset the exposed app secret in the Meta app dashboard"}
	}
	if len(id) > 2048 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r))
	}) {
		return &Error{Field: field, Problem: fmt.Sprintf("is not a Secrets Manager secret name or ARN (%d characters; allowed: letters, digits and /_+=.@-:)", len(id)),
			Fix: "give the name or ARN of the secret that holds the tenant's Meta app secret"}
	}
	return nil
}

func unsupportedVersion(v int) error {
	return &Error{Field: "schema_version", Problem: fmt.Sprintf("%d is not supported by this build (supports %d)", v, SchemaVersion),
		Fix: fmt.Sprintf("deploy a flowkey build that reads schema %d, or write the document in schema %d", v, SchemaVersion)}
}
