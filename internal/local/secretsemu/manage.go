package secretsemu

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The operations that manage a secret's metadata and life: TagResource,
// UntagResource, UpdateSecret and RestoreSecret.

// Tag limits from the AWS General Reference ("Tagging your AWS resources").
const (
	maxTags        = 50
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// validateTags checks tags as one request gives them: each key once.
func validateTags(tags []tag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		if n := utf8.RuneCountInString(t.Key); n < 1 || n > maxTagKeyLen {
			return errInvalidParameter(fmt.Sprintf("The tag key %q must be 1 to %d characters long.", t.Key, maxTagKeyLen))
		}
		if utf8.RuneCountInString(t.Value) > maxTagValueLen {
			return errInvalidParameter(fmt.Sprintf("The value of tag %q is longer than %d characters.", t.Key, maxTagValueLen))
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return errInvalidParameter(fmt.Sprintf("The tag key %q starts with aws:, which is reserved for AWS use.", t.Key))
		}
		if seen[t.Key] {
			return errInvalidParameter(fmt.Sprintf("The tag key %q appears more than once in the request; tag keys must be unique.", t.Key))
		}
		seen[t.Key] = true
	}
	return nil
}

// mergeTags adds tags to have, replacing the value of a key already there,
// and fails when the secret would hold more than maxTags.
func mergeTags(have, add []tag) ([]tag, error) {
	out := slices.Clone(have)
	for _, t := range add {
		if i := slices.IndexFunc(out, func(x tag) bool { return x.Key == t.Key }); i >= 0 {
			out[i].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	if len(out) > maxTags {
		return nil, errInvalidParameter(fmt.Sprintf("A secret can have at most %d tags; this request would leave it %d.", maxTags, len(out)))
	}
	return out, nil
}

type tagResourceInput struct {
	SecretId string
	Tags     *[]tag
}

// tagResource appends tags: "This operation appends tags to the existing
// list of tags." A key already present gets the new value.
func (s *Server) tagResource(in tagResourceInput) (any, error) {
	if in.Tags == nil {
		return nil, errInvalidParameter("Tags is required: the list of {Key, Value} to attach.")
	}
	if err := validateTags(*in.Tags); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	tags, err := mergeTags(sec.tags, *in.Tags)
	if err != nil {
		return nil, err
	}
	sec.tags = tags
	sec.lastChanged = s.now()
	return struct{}{}, nil
}

type untagResourceInput struct {
	SecretId string
	TagKeys  *[]string
}

// untagResource removes tags by key; "If a requested tag is not attached
// to the secret, no error is returned".
func (s *Server) untagResource(in untagResourceInput) (any, error) {
	if in.TagKeys == nil {
		return nil, errInvalidParameter("TagKeys is required: the keys of the tags to remove.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	sec.tags = slices.DeleteFunc(sec.tags, func(t tag) bool { return slices.Contains(*in.TagKeys, t.Key) })
	sec.lastChanged = s.now()
	return struct{}{}, nil
}

type updateSecretInput struct {
	SecretId           string
	ClientRequestToken *string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       []byte
}

type updateSecretOutput struct {
	ARN       string
	Name      string
	VersionId *string `json:",omitempty"`
}

// updateSecret changes the description and KMS key, and with a value
// writes a new version that takes AWSCURRENT (AWSPREVIOUS goes to the
// version it left). Unlike PutSecretValue, a ClientRequestToken that is
// already a version's id is an error even with the same value: "You can't
// modify an existing version, you can only create a new version."
func (s *Server) updateSecret(in updateSecretInput) (any, error) {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	out := updateSecretOutput{ARN: sec.arn, Name: sec.name}
	if val != nil {
		tok, err := s.tokenOrNew(in.ClientRequestToken)
		if err != nil {
			return nil, err
		}
		if v := sec.version(tok); v != nil && v.value != nil {
			return nil, errResourceExists(fmt.Sprintf(
				"Version %s already exists. You can't modify an existing version; update the secret with a new ClientRequestToken.", tok))
		}
		v := s.writeVersionLocked(sec, "UpdateSecret", tok, val, []string{stageCurrent})
		out.VersionId = &v.id
	}
	if in.Description != nil {
		sec.description = *in.Description
	}
	if in.KmsKeyId != nil {
		// "If you set this to an empty string, Secrets Manager uses the
		// Amazon Web Services managed key aws/secretsmanager."
		sec.kmsKeyID = *in.KmsKeyId
	}
	sec.lastChanged = s.now()
	return out, nil
}

// restoreSecret cancels a scheduled deletion. A secret that is not
// scheduled for deletion is left as it is, and the call succeeds.
func (s *Server) restoreSecret(in secretIDInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	if !sec.deletion.IsZero() {
		sec.deletion = time.Time{}
		sec.lastChanged = s.now()
	}
	return arnNameOutput{ARN: sec.arn, Name: sec.name}, nil
}
