package custody

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// EncryptionAlgorithm is the one algorithm flowkey decrypts with: RSA-OAEP
// with SHA-256 for the hash and MGF1 and an empty label.
const EncryptionAlgorithm = "RSAES_OAEP_SHA_256"

// secretARNRE is a Secrets Manager secret ARN: partition, region, account.
var secretARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]{1,30}):([0-9]{12}):secret:.+$`)

// adminActions are what the account principal may do (through IAM
// policies): manage the key, never use it. kms:PutKeyPolicy keeps the key
// manageable; kms:CreateGrant is left out, since a grant is a way to use it.
var adminActions = []string{
	"kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetPublicKey", "kms:ListResourceTags", "kms:ListGrants", "kms:ListKeyPolicies",
	"kms:PutKeyPolicy", "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
	"kms:TagResource", "kms:UntagResource", "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
	"kms:UpdateKeyDescription", "kms:RevokeGrant", "kms:RetireGrant",
}

// rotatorActions are what the rotator does with its keys, Decrypt aside.
var rotatorActions = []string{
	"kms:DescribeKey", "kms:GetPublicKey", "kms:ListResourceTags", "kms:TagResource", "kms:CreateAlias",
	"kms:DisableKey", "kms:ScheduleKeyDeletion",
}

type policyDoc struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]any               `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Policy is the key policy of a new custody key of secretARN (see the
// package documentation): the account administers, the rotator manages
// and proves, the decrypt roles decrypt, and Decrypt only with
// RSAES_OAEP_SHA_256.
func (m *Manager) Policy(secretARN string) (string, error) {
	if err := m.CanCreate(); err != nil {
		return "", err
	}
	home := secretARNRE.FindStringSubmatch(secretARN)
	if home == nil {
		return "", errors.New("custody: the key policy needs the secret's ARN, not its name")
	}
	root := fmt.Sprintf("arn:%s:iam::%s:root", home[1], home[3])
	oaep := map[string]map[string]string{"StringEquals": {"kms:EncryptionAlgorithm": EncryptionAlgorithm}}
	doc := policyDoc{
		Version: "2012-10-17",
		ID:      "flowkey-custody-key",
		Statement: []statement{
			{Sid: "AccountAdministersButDoesNotUse", Effect: "Allow", Principal: map[string]any{"AWS": root}, Action: adminActions, Resource: "*"},
			{Sid: "RotatorManages", Effect: "Allow", Principal: map[string]any{"AWS": m.opts.RotatorRoleARN}, Action: rotatorActions, Resource: "*"},
			{Sid: "RotatorProvesDecryption", Effect: "Allow", Principal: map[string]any{"AWS": m.opts.RotatorRoleARN}, Action: []string{"kms:Decrypt"}, Resource: "*", Condition: oaep},
			{Sid: "EndpointDecrypts", Effect: "Allow", Principal: map[string]any{"AWS": m.opts.DecryptRoleARNs}, Action: []string{"kms:Decrypt"}, Resource: "*", Condition: oaep},
		},
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("custody: encode the key policy: %w", err)
	}
	return string(out), nil
}
