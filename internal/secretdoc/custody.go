package secretdoc

import (
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
)

// kmsKeyARNRE is a KMS key ARN (not an alias): partition, region, account,
// key ID (a UUID, or mrk-<hex> for a multi-Region key).
var kmsKeyARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):kms:([a-z0-9-]{1,30}):([0-9]{12}):key/([A-Za-z0-9-]{1,128})$`)

// secretARNRE is the head of a Secrets Manager secret ARN.
var secretARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]{1,30}):([0-9]{12}):secret:.+$`)

// arnShapeRE is anything ARN-like, safe to quote in an error.
var arnShapeRE = regexp.MustCompile(`^arn:[A-Za-z0-9:/_-]{1,200}$`)

// fixKMSKeyARN is the advice for a key ARN that cannot be used.
const fixKMSKeyARN = "set it to the key ARN (arn:aws:kms:<region>:<account>:key/<key id>, not an alias) of the RSA_2048 ENCRYPT_DECRYPT KMS key the rotation created, " +
	"or remove \"key\" to let the next rotation create one"

// checkCustody checks key.custody and the fields that belong to one
// custody only.
func (k *Key) checkCustody() []error {
	var errs []error
	switch k.Custody {
	case "":
		if k.KMSKeyARN != "" {
			errs = append(errs, &Error{Field: "key.kms_key_arn", Problem: fmt.Sprintf("is set, but key.custody is not %q", CustodyKMS),
				Fix: fmt.Sprintf("set key.custody to %q for a key held in KMS (and remove key.private_key_pem), or remove key.kms_key_arn", CustodyKMS)})
		}
	case CustodyKMS:
		if k.PrivateKeyPEM != "" {
			// Not parsed, not quoted: it must not be here at all.
			errs = append(errs, &Error{Field: "key.private_key_pem", Problem: fmt.Sprintf("is set, but a key with key.custody %q keeps its private key in KMS", CustodyKMS),
				Fix: "remove it; if this is a real private key, treat it as exposed (anyone who read the secret has it) and rotate"})
		}
		if k.KMSKeyARN != "" && !kmsKeyARNRE.MatchString(k.KMSKeyARN) {
			errs = append(errs, &Error{Field: "key.kms_key_arn", Problem: describeNotARN(k.KMSKeyARN), Fix: fixKMSKeyARN})
		}
	default:
		errs = append(errs, &Error{Field: "key.custody", Problem: fmt.Sprintf("is not %q (%d characters)", CustodyKMS, len(k.Custody)),
			Fix: fmt.Sprintf("remove it for a key whose private_key_pem is in the document, or set it to %q for a key held in KMS", CustodyKMS)})
	}
	return errs
}

// describeNotARN says why s is not a KMS key ARN, quoting it only when it
// has the shape of an ARN (free text could be anything pasted).
func describeNotARN(s string) string {
	switch {
	case strings.HasPrefix(s, "arn:") && strings.Contains(s, ":alias/"):
		return "is an alias ARN, not a key ARN"
	case arnShapeRE.MatchString(s):
		return fmt.Sprintf("%q is not a KMS key ARN", s)
	}
	return fmt.Sprintf("is not a KMS key ARN (%d characters)", len(s))
}

// NewKMSKey records a key created in KMS: keyARN holds the private half and
// publicDER is its public key as kms:GetPublicKey returns it (PKIX DER),
// which must be RSA-2048 with e=65537. CreatedAt is now in UTC, to the
// second.
func NewKMSKey(keyARN string, publicDER []byte, now time.Time) (*Key, error) {
	const field = "kms GetPublicKey PublicKey"
	pub, err := keypair.ParsePublicDER(field, publicDER)
	if err != nil {
		return nil, err
	}
	if !kmsKeyARNRE.MatchString(keyARN) {
		return nil, &Error{Field: "key.kms_key_arn", Problem: describeNotARN(keyARN), Fix: "pass the KeyMetadata.Arn KMS returned"}
	}
	der := append([]byte(nil), publicDER...)
	return &Key{
		Custody:           CustodyKMS,
		KMSKeyARN:         keyARN,
		PublicKeyPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		FingerprintSHA256: keypair.FingerprintOf(der).String(),
		CreatedAt:         now.UTC().Truncate(time.Second),
		GeneratedBy:       MethodKMSCustody,
		public:            pub,
		pubDER:            der,
	}, nil
}

// KMSKeyHome is where a KMS key ARN puts the key.
type KMSKeyHome struct{ Partition, Region, Account, KeyID string }

// ParseKMSKeyARN splits a KMS key ARN; ok is false for anything else.
func ParseKMSKeyARN(arn string) (home KMSKeyHome, ok bool) {
	m := kmsKeyARNRE.FindStringSubmatch(arn)
	if m == nil {
		return KMSKeyHome{}, false
	}
	return KMSKeyHome{Partition: m[1], Region: m[2], Account: m[3], KeyID: m[4]}, true
}

// CheckHome checks that a KMS-held key is in the account and region of the
// secret secretARN: a document that names a key elsewhere hands whoever
// owns that key the decryption of every Flows request (and the power to
// stop it). Parse cannot check it: it does not know the secret. It returns
// nil for a key held in the document, or a nil Key.
func (k *Key) CheckHome(secretARN string) error {
	if !k.InKMS() {
		return nil
	}
	key, ok := ParseKMSKeyARN(k.KMSKeyARN)
	if !ok {
		return &Error{Field: "key.kms_key_arn", Problem: describeNotARN(k.KMSKeyARN), Fix: fixKMSKeyARN}
	}
	m := secretARNRE.FindStringSubmatch(secretARN)
	if m == nil {
		return &Error{Field: "secret ARN", Problem: "is not a Secrets Manager secret ARN, so the KMS key's account and region cannot be checked",
			Fix: "name the secret by its ARN"}
	}
	if key.Partition != m[1] || key.Region != m[2] || key.Account != m[3] {
		return &Error{Field: "key.kms_key_arn",
			Problem: fmt.Sprintf("names a KMS key in account %s, region %s, but the secret is in account %s, region %s", key.Account, key.Region, m[3], m[2]),
			Fix:     "flowkey uses only custody keys of the secret's own account and region: restore the kms_key_arn the rotation wrote, or start a new rotation, which creates a key there"}
	}
	return nil
}
