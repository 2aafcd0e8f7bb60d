package secretsemu

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The operations that change a secret: CreateSecret, PutSecretValue,
// UpdateSecretVersionStage and DeleteSecret. RotateSecret is in rotation.go.

type createSecretInput struct {
	Name               string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
	Tags               []tag
}

type createSecretOutput struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

func (s *Server) createSecret(in createSecretInput) (any, error) {
	if err := validateName(in.Name); err != nil {
		return nil, err
	}
	if in.Description != nil && len(*in.Description) > maxDescription {
		return nil, errInvalidParameter(fmt.Sprintf("Description is %d characters; the maximum is %d.", len(*in.Description), maxDescription))
	}
	val, err := valueOf(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	if in.ClientRequestToken != nil {
		if err := validateToken(*in.ClientRequestToken); err != nil {
			return nil, err
		}
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.secrets[in.Name]; ok {
		if !old.deletion.IsZero() {
			return nil, errInvalidRequest(msgNameScheduled)
		}
		// A retried request (same token, same value) succeeds again.
		if in.ClientRequestToken != nil && val != nil {
			if v := old.version(*in.ClientRequestToken); v != nil && v.value.equal(val) {
				return createSecretOutput{ARN: old.arn, Name: old.name, VersionId: &v.id}, nil
			}
		}
		return nil, errSecretExists(in.Name)
	}
	arn, err := s.newARN(in.Name)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sec := &secret{arn: arn, name: in.Name, created: now, lastChanged: now, tags: tags}
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		sec.kmsKeyID = *in.KmsKeyId
	}
	out := createSecretOutput{ARN: arn, Name: in.Name}
	if val != nil {
		id, err := s.tokenOrNew(in.ClientRequestToken)
		if err != nil {
			return nil, err
		}
		sec.versions = []*version{{id: id, value: val, stages: []string{stageCurrent}, created: now}}
		out.VersionId = &id
	}
	s.secrets[in.Name] = sec
	return out, nil
}

// tokenOrNew is the caller's ClientRequestToken or, as the SDK and CLI
// would have sent, a new UUID. The caller holds s.mu.
func (s *Server) tokenOrNew(tok *string) (string, error) {
	if tok != nil {
		return *tok, nil
	}
	return s.newID()
}

type putSecretValueInput struct {
	SecretId           string
	ClientRequestToken *string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      *[]string
	RotationToken      *string
}

type putSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

func (s *Server) putSecretValue(in putSecretValueInput) (any, error) {
	if in.ClientRequestToken == nil {
		return nil, errInvalidRequest(msgTokenRequired)
	}
	tok := *in.ClientRequestToken
	if err := validateToken(tok); err != nil {
		return nil, err
	}
	val, err := valueOf(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	if val == nil {
		return nil, errInvalidParameter("PutSecretValue needs a value: set SecretString or SecretBinary.")
	}
	stages := []string{stageCurrent}
	if in.VersionStages != nil {
		stages = slices.Compact(slices.Sorted(slices.Values(*in.VersionStages)))
		if len(stages) == 0 || len(stages) > maxStages {
			return nil, errInvalidParameter(fmt.Sprintf("VersionStages has %d labels; give 1 to %d, or leave it out to get AWSCURRENT.", len(stages), maxStages))
		}
		for _, st := range stages {
			if err := validateStage(st); err != nil {
				return nil, err
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	if in.RotationToken != nil && sec.rot != nil && *in.RotationToken != sec.rot.rotationToken {
		return nil, errInvalidRequest("The RotationToken doesn't match the rotation in progress on this secret; pass on the RotationToken of the rotation event you are handling.")
	}
	v := sec.version(tok)
	switch {
	case v != nil && v.value != nil && v.value.equal(val):
		// A retry: the request is ignored.
		return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
	case v != nil && v.value != nil:
		return nil, errResourceExists(fmt.Sprintf(
			"Version %s already exists with a different value. You can't modify a secret version; put the new value with a new ClientRequestToken.", tok))
	}
	v = s.writeVersionLocked(sec, "PutSecretValue", tok, val, stages)
	return putSecretValueOutput{ARN: sec.arn, Name: sec.name, VersionId: v.id, VersionStages: slices.Clone(v.stages)}, nil
}

// writeVersionLocked stores val as version tok (new, or the placeholder
// RotateSecret made) with stages, for op (PutSecretValue or UpdateSecret).
// The caller holds s.mu and has checked that tok holds no value yet.
func (s *Server) writeVersionLocked(sec *secret, op, tok string, val *secretValue, stages []string) *version {
	v := sec.version(tok)
	pending, current := sec.pendingIncomplete(), sec.holder(stageCurrent)
	now := s.now()
	if v == nil {
		v = &version{id: tok, created: now}
		sec.versions = append(sec.versions, v)
	}
	v.value = val
	if current == nil && !slices.Contains(stages, stageCurrent) {
		// AWS: "If this operation creates the first version for the secret
		// then Secrets Manager automatically attaches the staging label
		// AWSCURRENT to the new version." A secret created empty has no
		// current version until its first value arrives.
		stages = append(stages, stageCurrent)
	}
	for _, st := range stages {
		sec.attach(st, v)
	}
	sec.lastChanged = now
	if nc := sec.holder(stageCurrent); pending != nil && nc != current && nc != pending {
		// A value written by hand while a rotation is incomplete replaces it:
		// Secrets Manager drops AWSPENDING so the rotation is not resumed.
		pending.remove(stagePending)
		s.abandonLocked(sec, pending.id, fmt.Sprintf("%s moved AWSCURRENT to version %s while the rotation to version %s was incomplete", op, nc.id, pending.id))
	}
	return v
}

type updateSecretVersionStageInput struct {
	SecretId            string
	VersionStage        string
	RemoveFromVersionId *string
	MoveToVersionId     *string
}

type arnNameOutput struct {
	ARN  string
	Name string
}

func (s *Server) updateSecretVersionStage(in updateSecretVersionStageInput) (any, error) {
	if err := validateStage(in.VersionStage); err != nil {
		return nil, err
	}
	stage := in.VersionStage
	if in.MoveToVersionId == nil && in.RemoveFromVersionId == nil {
		return nil, errInvalidParameter("Set MoveToVersionId to attach the staging label, RemoveFromVersionId to detach it, or both to move it.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	var to, from *version
	if in.MoveToVersionId != nil {
		if to = sec.version(*in.MoveToVersionId); to == nil {
			return nil, errValueNotFoundForVersion(*in.MoveToVersionId)
		}
	}
	holder := sec.holder(stage)
	if in.RemoveFromVersionId != nil {
		if from = sec.version(*in.RemoveFromVersionId); from == nil {
			return nil, errValueNotFoundForVersion(*in.RemoveFromVersionId)
		}
		if holder != from {
			return nil, errInvalidParameter(fmt.Sprintf(
				"When you move staging label %s, if you specify RemoveFromVersionId, it must be set to the version that currently has the staging label %s.", stage, stage))
		}
	}
	switch {
	case to != nil:
		if holder != nil && holder != to && from == nil {
			return nil, errInvalidParameter(fmt.Sprintf(
				"The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", stage, holder.id))
		}
		if !to.has(stage) && len(to.stages) >= maxStages {
			return nil, errInvalidParameter(fmt.Sprintf("Version %s already has %d staging labels, the maximum.", to.id, maxStages))
		}
		sec.attach(stage, to)
	case stage == stageCurrent:
		return nil, errInvalidParameter(fmt.Sprintf(
			"You can't remove the staging label AWSCURRENT from version %s without attaching it elsewhere: set MoveToVersionId too.", from.id))
	default:
		from.remove(stage)
	}
	sec.lastChanged = s.now()
	return arnNameOutput{ARN: sec.arn, Name: sec.name}, nil
}

type deleteSecretInput struct {
	SecretId                   string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery *bool
}

type deleteSecretOutput struct {
	ARN          string
	Name         string
	DeletionDate *epoch
}

func (s *Server) deleteSecret(in deleteSecretInput) (any, error) {
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	if force && in.RecoveryWindowInDays != nil {
		return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	window := int64(30)
	if in.RecoveryWindowInDays != nil {
		window = *in.RecoveryWindowInDays
		if window < 7 || window > 30 {
			return nil, errInvalidParameter(fmt.Sprintf(
				"The RecoveryWindowInDays value must be between 7 and 30 days (inclusive); it is %d. Use ForceDeleteWithoutRecovery to delete at once.", window))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	sec, err := s.lookup(in.SecretId)
	var nf *apiError
	switch {
	case force && errors.As(err, &nf) && nf.Type == "ResourceNotFoundException":
		// AWS: a forced delete of an already deleted or nonexistent secret
		// "does not return ResourceNotFoundException". It echoes the id.
		arn, name := s.echoID(in.SecretId)
		return deleteSecretOutput{ARN: arn, Name: name, DeletionDate: timePtr(now)}, nil
	case err != nil:
		return nil, err
	case !force && !sec.deletion.IsZero():
		return nil, errInvalidRequest(msgMarkedForDeletion)
	}
	if sec.rot != nil {
		s.stopLocked(sec.rot, RotationCancelled, "DeleteSecret")
	}
	deletion := now
	if force {
		// Also a secret already scheduled for deletion: it goes at once.
		delete(s.secrets, sec.name)
	} else {
		deletion = now.Add(time.Duration(window) * day)
		sec.deletion = deletion
		sec.lastChanged = now
	}
	return deleteSecretOutput{ARN: sec.arn, Name: sec.name, DeletionDate: timePtr(deletion)}, nil
}

// arnSuffixRE is the "-" and 6 random characters that end a full ARN.
var arnSuffixRE = regexp.MustCompile(`-[A-Za-z0-9]{6}$`)

// echoID is the ARN and name DeleteSecret reports for a secret it did not
// find: an ARN as given, with the name it holds; a name with the ARN it
// would have, without the random suffix it never got.
func (s *Server) echoID(id string) (arn, name string) {
	if rest, ok := strings.CutPrefix(id, "arn:"); ok {
		if i := strings.Index(rest, ":secret:"); i >= 0 {
			name = arnSuffixRE.ReplaceAllString(rest[i+len(":secret:"):], "")
		}
		return id, name
	}
	return s.arnPrefix(id), id
}
