package kmsproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Corrections are where the proxy answers as AWS KMS does and local-kms
// does not (checked against local-kms at the version go.mod pins; the
// tests of this package show each divergence on local-kms itself):
//
//  1. Decrypt with a key whose KeyUsage is not ENCRYPT_DECRYPT: AWS refuses
//     with InvalidKeyUsageException; local-kms decrypts with any RSA key,
//     a SIGN_VERIFY one included.
//  2. Decrypt with an EncryptionAlgorithm the key does not support (the
//     default SYMMETRIC_DEFAULT on an RSA key): AWS answers
//     InvalidKeyUsageException; local-kms InvalidCiphertextException.
//  3. GetPublicKey of an ENCRYPT_DECRYPT key: AWS lists the key's
//     EncryptionAlgorithms; local-kms leaves the field out.
//  4. A KeyId that is an ARN in another account: AWS answers
//     AccessDeniedException (no key policy of ours can allow it);
//     local-kms looks the ARN up and answers NotFoundException.
//  5. ScheduleKeyDeletion: AWS's answer carries KeyState PendingDeletion
//     and PendingWindowInDays; local-kms's only KeyId and DeletionDate.
//  6. CreateKey with a Policy: AWS refuses a policy that is not a JSON
//     policy with principals, and (unless BypassPolicyLockoutSafetyCheck)
//     one that would not let the caller call PutKeyPolicy later, with
//     MalformedPolicyDocumentException; local-kms stores any string.
const Corrections = 6

// keyInfo is what never changes about a key.
type keyInfo struct {
	KeyID                string   `json:"KeyId"`
	Arn                  string   `json:"Arn"`
	KeyUsage             string   `json:"KeyUsage"`
	KeySpec              string   `json:"KeySpec"`
	EncryptionAlgorithms []string `json:"EncryptionAlgorithms"`
}

// before answers what AWS refuses and local-kms would not (ok true).
func (p *Proxy) before(ctx context.Context, rq *request) (response, bool) {
	if p.foreign(rq.keyRaw) {
		return kmsError(AccessDeniedException, accessDenied(rq)), true
	}
	switch rq.op {
	case "Decrypt":
		return p.checkDecrypt(ctx, rq)
	case "CreateKey":
		return p.checkPolicy(rq)
	}
	return response{}, false
}

// after adds to local-kms's answer what AWS's carries.
func (p *Proxy) after(ctx context.Context, rq *request, res response) response {
	if res.drop != nil || res.status != http.StatusOK {
		return res
	}
	switch rq.op {
	case "GetPublicKey":
		info, err := p.keyInfo(ctx, rq)
		if err != nil || info.KeyUsage != "ENCRYPT_DECRYPT" {
			return res
		}
		return withFields(res, map[string]any{"EncryptionAlgorithms": info.EncryptionAlgorithms})
	case "ScheduleKeyDeletion":
		days := 30
		if raw, ok := rq.fields["PendingWindowInDays"]; ok {
			_ = json.Unmarshal(raw, &days)
		}
		return withFields(res, map[string]any{"KeyState": "PendingDeletion", "PendingWindowInDays": days})
	}
	return res
}

// withFields sets top-level members of a JSON answer.
func withFields(res response, add map[string]any) response {
	var m map[string]any
	if json.Unmarshal(res.body, &m) != nil {
		return res
	}
	for k, v := range add {
		m[k] = v
	}
	body, err := json.Marshal(m)
	if err != nil {
		return res
	}
	res.body = body
	return res
}

// foreign reports a key or alias ARN of another account.
func (p *Proxy) foreign(id string) bool {
	if !strings.HasPrefix(id, "arn:") {
		return false
	}
	parts := strings.SplitN(id, ":", 6)
	return len(parts) == 6 && parts[4] != p.opts.AccountID
}

// keyInfo describes the key rq names, through local-kms: from the cache
// when it names a key by ID or ARN (what is cached never changes; an
// alias may be moved to another key, so it is resolved every time).
func (p *Proxy) keyInfo(ctx context.Context, rq *request) (keyInfo, error) {
	byID := !strings.HasPrefix(rq.key, "alias/")
	if byID {
		p.mu.Lock()
		info, ok := p.meta[rq.key]
		p.mu.Unlock()
		if ok {
			return info, nil
		}
	}
	var out struct{ KeyMetadata keyInfo }
	if err := p.call(ctx, "DescribeKey", map[string]string{"KeyId": rq.keyRaw}, &out); err != nil {
		return keyInfo{}, err
	}
	info := out.KeyMetadata
	if byID && info.KeyID != "" {
		p.mu.Lock()
		p.meta[info.KeyID] = info
		p.mu.Unlock()
	}
	return info, nil
}

// checkDecrypt refuses, as AWS does, a Decrypt whose key is not for
// encryption or does not support the algorithm. Without a KeyId, or with
// a key local-kms cannot describe, local-kms answers.
func (p *Proxy) checkDecrypt(ctx context.Context, rq *request) (response, bool) {
	if rq.keyRaw == "" {
		return response{}, false
	}
	info, err := p.keyInfo(ctx, rq)
	if err != nil {
		var up *upstreamError
		if errors.As(err, &up) {
			return response{}, false
		}
		return dropped(err), true
	}
	alg, ok := rq.str("EncryptionAlgorithm")
	if !ok {
		alg = "SYMMETRIC_DEFAULT"
	}
	switch {
	case info.KeyUsage != "ENCRYPT_DECRYPT":
		return kmsError(InvalidKeyUsageException, fmt.Sprintf("%s key usage is %s which is not valid for Decrypt.", info.Arn, info.KeyUsage)), true
	case info.KeySpec != "SYMMETRIC_DEFAULT" && !slices.Contains(info.EncryptionAlgorithms, alg):
		return kmsError(InvalidKeyUsageException, fmt.Sprintf("Algorithm %s is incompatible with key spec %s.", alg, info.KeySpec)), true
	}
	return response{}, false
}

// MalformedPolicyDocumentException is CreateKey's (and PutKeyPolicy's)
// answer to a key policy it will not attach.
const MalformedPolicyDocumentException = "MalformedPolicyDocumentException"

// checkPolicy applies AWS's checks of a CreateKey's key policy.
func (p *Proxy) checkPolicy(rq *request) (response, bool) {
	policy, ok := rq.str("Policy")
	if !ok {
		return response{}, false
	}
	stmts, err := parsePolicy(policy)
	if err != nil {
		return kmsError(MalformedPolicyDocumentException, err.Error()), true
	}
	var bypass bool
	if raw, ok := rq.fields["BypassPolicyLockoutSafetyCheck"]; ok {
		_ = json.Unmarshal(raw, &bypass)
	}
	who, known := p.opts.Principals[rq.caller]
	if bypass || !known {
		return response{}, false
	}
	if !p.allowsPutKeyPolicy(stmts, who) {
		return kmsError(MalformedPolicyDocumentException, "The new key policy will not allow you to update the key policy in the future."), true
	}
	return response{}, false
}

// allowsPutKeyPolicy is the lockout safety check: an Allow statement lets
// the caller's principal call kms:PutKeyPolicy, by naming it (or "*"), or
// by naming the account root when the caller's IAM policy allows the
// action. Conditions are not evaluated.
func (p *Proxy) allowsPutKeyPolicy(stmts []statement, who Principal) bool {
	root := "arn:aws:iam::" + p.opts.AccountID + ":root"
	for _, s := range stmts {
		if s.Effect != "Allow" || !actionsCover(s.Actions, "kms:PutKeyPolicy") {
			continue
		}
		for _, pr := range s.Principals {
			if pr == "*" || pr == who.ARN {
				return true
			}
			if (pr == root || pr == p.opts.AccountID) && actionsCover(who.IAMActions, "kms:PutKeyPolicy") {
				return true
			}
		}
	}
	return false
}
