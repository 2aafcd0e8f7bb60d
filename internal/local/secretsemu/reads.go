package secretsemu

import (
	"fmt"
	"slices"
	"strconv"
)

// The operations that read one secret: DescribeSecret, GetSecretValue and
// ListSecretVersionIds. ListSecrets and BatchGetSecretValue are in list.go.

type secretIDInput struct {
	SecretId string
}

// secretMetadata is what DescribeSecret and ListSecrets report alike.
type secretMetadata struct {
	ARN               string
	Name              string
	Description       *string        `json:",omitempty"`
	KmsKeyId          *string        `json:",omitempty"`
	RotationEnabled   *bool          `json:",omitempty"`
	RotationLambdaARN *string        `json:",omitempty"`
	RotationRules     *rotationRules `json:",omitempty"`
	LastRotatedDate   *epoch         `json:",omitempty"`
	LastChangedDate   *epoch         `json:",omitempty"`
	LastAccessedDate  *epoch         `json:",omitempty"`
	NextRotationDate  *epoch         `json:",omitempty"`
	CreatedDate       *epoch         `json:",omitempty"`
	DeletedDate       *epoch         `json:",omitempty"`
	Tags              []tag          `json:",omitempty"`
}

type describeSecretOutput struct {
	secretMetadata
	VersionIdsToStages map[string][]string `json:",omitempty"`
}

func (s *Server) describeSecret(in secretIDInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	return describeSecretOutput{secretMetadata: sec.metadata(), VersionIdsToStages: sec.versionIDsToStages()}, nil
}

// metadata copies what the secret reports about itself: the response is
// encoded after Server.mu is released. The caller holds Server.mu.
func (sec *secret) metadata() secretMetadata {
	out := secretMetadata{
		ARN:              sec.arn,
		Name:             sec.name,
		LastRotatedDate:  timePtr(sec.lastRotated),
		LastChangedDate:  timePtr(sec.lastChanged),
		LastAccessedDate: timePtr(sec.lastAccessed),
		NextRotationDate: timePtr(sec.nextRotation),
		CreatedDate:      timePtr(sec.created),
		DeletedDate:      timePtr(sec.deletion),
		Tags:             slices.Clone(sec.tags),
	}
	ptr := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	out.Description, out.KmsKeyId, out.RotationLambdaARN = ptr(sec.description), ptr(sec.kmsKeyID), ptr(sec.lambdaARN)
	if sec.rotationSet {
		enabled := sec.rotationEnabled
		out.RotationEnabled = &enabled
	}
	if sec.rules != nil {
		rules := *sec.rules
		// DescribeSecret reports AutomaticallyAfterDays for a schedule in days.
		if rules.AutomaticallyAfterDays == nil && sec.sched.cron == nil && sec.sched.every >= day && sec.sched.every%day == 0 {
			n := int64(sec.sched.every / day)
			rules.AutomaticallyAfterDays = &n
		}
		out.RotationRules = &rules
	}
	return out
}

type getSecretValueInput struct {
	SecretId     string
	VersionId    *string
	VersionStage *string
}

type getSecretValueOutput struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
}

func (s *Server) getSecretValue(in getSecretValueInput) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	var v *version
	switch {
	case in.VersionId != nil:
		if v = sec.version(*in.VersionId); v == nil {
			return nil, errValueNotFoundForVersion(*in.VersionId)
		}
		if in.VersionStage != nil && !v.has(*in.VersionStage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		stage := stageCurrent
		if in.VersionStage != nil {
			stage = *in.VersionStage
		}
		if v = sec.holder(stage); v == nil {
			return nil, errValueNotFoundForStage(stage)
		}
	}
	if v.value == nil {
		if in.VersionStage != nil || in.VersionId == nil {
			stage := stageCurrent
			if in.VersionStage != nil {
				stage = *in.VersionStage
			}
			return nil, errValueNotFoundForStage(stage)
		}
		return nil, errValueNotFoundForVersion(v.id)
	}
	sec.lastAccessed = accessDate(s.now())
	return getSecretValueOutput{
		ARN:           sec.arn,
		Name:          sec.name,
		VersionId:     v.id,
		SecretString:  v.value.str,
		SecretBinary:  v.value.bin,
		VersionStages: slices.Clone(v.stages),
		CreatedDate:   timePtr(v.created),
	}, nil
}

type listSecretVersionIdsInput struct {
	SecretId          string
	MaxResults        *int64
	NextToken         *string
	IncludeDeprecated *bool
}

type versionListEntry struct {
	VersionId     string
	VersionStages []string `json:",omitempty"`
	CreatedDate   *epoch   `json:",omitempty"`
}

type listSecretVersionIdsOutput struct {
	ARN       string
	Name      string
	Versions  []versionListEntry
	NextToken *string `json:",omitempty"`
}

func (s *Server) listSecretVersionIds(in listSecretVersionIdsInput) (any, error) {
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, errInvalidParameter(fmt.Sprintf("MaxResults is %d; use 1 to 100.", *in.MaxResults))
		}
		limit = int(*in.MaxResults)
	}
	start := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 {
			return nil, newAPIError("InvalidNextTokenException", fmt.Sprintf("NextToken %q did not come from ListSecretVersionIds.", *in.NextToken))
		}
		start = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookup(in.SecretId)
	if err != nil {
		return nil, err
	}
	var all []versionListEntry
	for _, v := range sec.versions {
		if len(v.stages) == 0 && (in.IncludeDeprecated == nil || !*in.IncludeDeprecated) {
			continue
		}
		all = append(all, versionListEntry{VersionId: v.id, VersionStages: slices.Clone(v.stages), CreatedDate: timePtr(v.created)})
	}
	out := listSecretVersionIdsOutput{ARN: sec.arn, Name: sec.name, Versions: []versionListEntry{}}
	if start < len(all) {
		end := min(start+limit, len(all))
		out.Versions = all[start:end]
		if end < len(all) {
			next := strconv.Itoa(end)
			out.NextToken = &next
		}
	}
	return out, nil
}
