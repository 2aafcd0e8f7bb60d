package keypair

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// decodeOne accepts exactly one PEM block, optionally surrounded by
// whitespace. pem.Decode alone would skip text before the block and ignore
// what follows it, which hides pasting mistakes.
func decodeOne(field, text string) (*pem.Block, error) {
	trimmed := strings.TrimSpace(text)
	if trimmed == "" {
		return nil, &Error{Field: field, Problem: "is empty", Fix: "paste the whole PEM, from the -----BEGIN line to the -----END line"}
	}
	if !strings.HasPrefix(trimmed, "-----BEGIN ") {
		if strings.Contains(trimmed, "-----BEGIN ") {
			return nil, &Error{Field: field, Problem: "has text before the -----BEGIN line", Fix: "remove everything before the -----BEGIN line"}
		}
		return nil, &Error{Field: field, Problem: "is not PEM (no -----BEGIN line)", Fix: "paste the whole PEM, from the -----BEGIN line to the -----END line"}
	}
	block, rest := pem.Decode([]byte(trimmed))
	if block == nil {
		return nil, &Error{Field: field,
			Problem: "is not a well-formed PEM block (BEGIN/END lines do not match, the END line is missing or the body is not base64)",
			Fix:     "paste the whole PEM unchanged, with its line breaks (\\n in JSON)"}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		if n := bytes.Count(rest, []byte("-----BEGIN ")); n > 0 {
			return nil, &Error{Field: field, Problem: fmt.Sprintf("holds %d PEM blocks, expected exactly one", n+1),
				Fix: "keep only the one block this field is for"}
		}
		return nil, &Error{Field: field, Problem: "has trailing data after the -----END line", Fix: "remove everything after the -----END line"}
	}
	return block, nil
}

// noHeaders rejects PEM headers, which no format this package accepts uses.
// Only well-known header names are repeated: anything else in the input
// could be a fragment of the key.
func noHeaders(field string, block *pem.Block) error {
	if len(block.Headers) == 0 {
		return nil
	}
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Headers["DEK-Info"] != "" {
		return &Error{Field: field, Problem: "is an encrypted PEM", Fix: fixEncrypted}
	}
	var names []string
	for k := range block.Headers {
		if slices.Contains(knownHeaders, k) {
			names = append(names, k)
		} else {
			names = append(names, "(unrecognised)")
		}
	}
	slices.Sort(names)
	return &Error{Field: field, Problem: fmt.Sprintf("has PEM header lines %s, which PEM blocks of %s do not have", strings.Join(names, ", "), labelName(block.Type)),
		Fix: "remove the header lines between -----BEGIN and the base64 body"}
}

// knownHeaders are RFC 1421/7468 header names worth repeating.
var knownHeaders = []string{"Proc-Type", "DEK-Info", "Comment", "Content-Domain", "Originator-ID-Symmetric", "Recipient-ID-Symmetric", "Key-Info"}

// knownLabels are PEM types an operator is likely to paste. Other labels are
// described, not quoted: they are copied from the input.
var knownLabels = []string{
	pemPrivatePKCS8, pemPrivatePKCS1, pemPublicPKIX, "RSA PUBLIC KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY",
	"DSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "CERTIFICATE", "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST",
	"TRUSTED CERTIFICATE", "X509 CRL", "EC PARAMETERS", "PKCS7", "SSH2 PUBLIC KEY",
	"PGP PUBLIC KEY BLOCK", "PGP PRIVATE KEY BLOCK", "PGP MESSAGE", "PGP SIGNATURE",
}

func labelName(label string) string {
	if slices.Contains(knownLabels, label) {
		return "type " + strconv.Quote(label)
	}
	return fmt.Sprintf("an unrecognised type (%d characters)", len(label))
}

func wrongPublicType(field, found string) error {
	e := &Error{Field: field, Problem: fmt.Sprintf("is a PEM block of %s, expected %q", labelName(found), pemPublicPKIX), Fix: fixPublicOf}
	switch found {
	case "RSA PUBLIC KEY":
		e.Problem += " (PKCS#1)"
		e.Fix = "convert it with `openssl rsa -RSAPublicKey_in -in public.pem -pubout`"
	case "CERTIFICATE":
		e.Fix = "extract the public key with `openssl x509 -pubkey -noout -in cert.pem`"
	case pemPrivatePKCS8, pemPrivatePKCS1, "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		e.Problem += ": this is a private key in the public key field"
	}
	return e
}

func wrongPrivateType(field, found string) error {
	e := &Error{Field: field,
		Problem: fmt.Sprintf("is a PEM block of %s, expected %q (PKCS#8)", labelName(found), pemPrivatePKCS8),
		Fix:     "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out private.pem`"}
	switch found {
	case "ENCRYPTED PRIVATE KEY":
		e.Problem = "is an encrypted PKCS#8 PEM (\"ENCRYPTED PRIVATE KEY\")"
		e.Fix = fixEncrypted
	case pemPublicPKIX, "RSA PUBLIC KEY", "CERTIFICATE":
		e.Problem += ": this is a public key or certificate in the private key field"
		e.Fix = "put the private key of the pair here"
	case "EC PRIVATE KEY":
		e.Problem += ": this is an EC key"
		e.Fix = fixGenerate
	case "OPENSSH PRIVATE KEY":
		e.Fix = "convert it with `ssh-keygen -p -m PKCS8 -N '' -f key` (on a copy), or " + fixGenerate
	}
	return e
}

func keyTypeName(key any) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + curveName(k)
	case *ecdsa.PrivateKey:
		return "ECDSA " + curveName(&k.PublicKey)
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "ECDH " + fmt.Sprint(k.Curve())
	case *ecdh.PrivateKey:
		return "ECDH " + fmt.Sprint(k.Curve())
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	default:
		return fmt.Sprintf("unsupported (%T)", key)
	}
}

func curveName(k *ecdsa.PublicKey) string {
	if k.Curve == nil || k.Curve.Params() == nil {
		return "(unknown curve)"
	}
	return k.Curve.Params().Name
}
