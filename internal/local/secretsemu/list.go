package secretsemu

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The operations over many secrets: ListSecrets and BatchGetSecretValue,
// with the Filters they share.

// filter is Filter. AWS: within a filter the values are alternatives;
// all filters must match. A value starting with "!" negates it.
type filter struct {
	Key    string
	Values []string
}

// Limits and the value pattern from the Secrets Manager API reference
// (Filter, ListSecrets, BatchGetSecretValue).
const (
	maxFilters          = 10
	maxFilterValues     = 10
	maxFilterValueLen   = 512
	maxListResults      = 100
	maxBatchResults     = 20
	maxBatchSecretIDs   = 20
	filterKeysSupported = "description, name, tag-key, tag-value, primary-region, owning-service, all"
)

var filterValueRE = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)

func validateFilters(fs []filter) error {
	if len(fs) > maxFilters {
		return errInvalidParameter(fmt.Sprintf("Filters has %d entries; the maximum is %d.", len(fs), maxFilters))
	}
	for i, f := range fs {
		switch f.Key {
		case "description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all":
		default:
			return errInvalidParameter(fmt.Sprintf("Filters[%d].Key %q is not one of %s.", i, f.Key, filterKeysSupported))
		}
		if n := len(f.Values); n < 1 || n > maxFilterValues {
			return errInvalidParameter(fmt.Sprintf("Filters[%d].Values has %d entries; give 1 to %d.", i, n, maxFilterValues))
		}
		for _, v := range f.Values {
			if len(v) > maxFilterValueLen || !filterValueRE.MatchString(v) {
				return errInvalidParameter(fmt.Sprintf(
					"Filters[%d].Values: %q is not a filter value: at most %d of letters, digits, spaces and :_@/+=.-!, optionally after a ! that negates it.", i, v, maxFilterValueLen))
			}
		}
	}
	return nil
}

// matches reports whether sec passes every filter. region is the
// emulator's: no secret is replicated, so it is every secret's primary
// region; and no secret is managed by another service.
func (sec *secret) matches(fs []filter, region string) bool {
	for _, f := range fs {
		if !slices.ContainsFunc(f.Values, func(v string) bool { return sec.matchesValue(f.Key, v, region) }) {
			return false
		}
	}
	return true
}

// matchesValue applies one value of a filter: a prefix match, case-sensitive
// except for description and all. A negated value matches when the prefix
// matches none of the attribute's values (no tag key, for tag-key).
func (sec *secret) matchesValue(key, value, region string) bool {
	term, negated := strings.CutPrefix(value, "!")
	var hit bool
	switch key {
	case "name":
		hit = strings.HasPrefix(sec.name, term)
	case "description":
		hit = strings.HasPrefix(strings.ToLower(sec.description), strings.ToLower(term))
	case "tag-key":
		hit = slices.ContainsFunc(sec.tags, func(t tag) bool { return strings.HasPrefix(t.Key, term) })
	case "tag-value":
		hit = slices.ContainsFunc(sec.tags, func(t tag) bool { return strings.HasPrefix(t.Value, term) })
	case "primary-region":
		hit = strings.HasPrefix(region, term)
	case "owning-service":
		hit = false
	case "all":
		hit = sec.matchesWords(term)
	}
	return hit != negated
}

// matchesWords is the "all" filter: "Breaks the filter value string into
// words and then searches all attributes for matches. Not case-sensitive."
// A secret matches when one of the value's words starts a word of its
// name, description, tag keys or tag values.
func (sec *secret) matchesWords(term string) bool {
	attrs := []string{sec.name, sec.description}
	for _, t := range sec.tags {
		attrs = append(attrs, t.Key, t.Value)
	}
	var have []string
	for _, a := range attrs {
		have = append(have, words(a)...)
	}
	for _, w := range words(term) {
		if slices.ContainsFunc(have, func(h string) bool { return strings.HasPrefix(h, w) }) {
			return true
		}
	}
	return false
}

// words splits s as the console's search does: at punctuation and spaces,
// between letters and digits, and before an upper-case letter that follows
// a lower-case one. The words are lower-cased.
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if n := len(cur); n > 0 {
			prev := cur[n-1]
			if unicode.IsDigit(prev) != unicode.IsDigit(r) || (unicode.IsLower(prev) && unicode.IsUpper(r)) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return out
}

// pageToken is an opaque NextToken for op: the offset of the next entry.
func pageToken(op string, offset int) *string {
	t := base64.RawURLEncoding.EncodeToString([]byte(op + "/" + strconv.Itoa(offset)))
	return &t
}

// pageOffset reads a NextToken pageToken made for op; 0 without one.
func pageOffset(op string, tok *string) (int, error) {
	if tok == nil {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*tok)
	rest, ok := strings.CutPrefix(string(b), op+"/")
	n, nerr := strconv.Atoi(rest)
	if err != nil || !ok || nerr != nil || n < 0 {
		return 0, newAPIError("InvalidNextTokenException", fmt.Sprintf("The NextToken %q did not come from a %s response.", *tok, op))
	}
	return n, nil
}

// limit checks MaxResults against 1..max and returns it, or def without one.
func limit(maxResults *int64, def, max int) (int, error) {
	if maxResults == nil {
		return def, nil
	}
	if n := *maxResults; n < 1 || n > int64(max) {
		return 0, errInvalidParameter(fmt.Sprintf("MaxResults is %d; use 1 to %d.", n, max))
	}
	return int(*maxResults), nil
}

type listSecretsInput struct {
	Filters                []filter
	IncludePlannedDeletion *bool
	MaxResults             *int64
	NextToken              *string
	SortBy                 *string
	SortOrder              *string
}

type secretListEntry struct {
	secretMetadata
	SecretVersionsToStages map[string][]string `json:",omitempty"`
}

type listSecretsOutput struct {
	SecretList []secretListEntry
	NextToken  *string `json:",omitempty"`
}

// listSecrets lists the secrets that pass the filters, by creation date
// (oldest first) unless SortBy and SortOrder say otherwise, a page at a
// time (100 by default).
func (s *Server) listSecrets(in listSecretsInput) (any, error) {
	if err := validateFilters(in.Filters); err != nil {
		return nil, err
	}
	size, err := limit(in.MaxResults, maxListResults, maxListResults)
	if err != nil {
		return nil, err
	}
	start, err := pageOffset("ListSecrets", in.NextToken)
	if err != nil {
		return nil, err
	}
	order, err := sortOrder(in.SortBy, in.SortOrder)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.selectLocked(in.Filters, in.IncludePlannedDeletion != nil && *in.IncludePlannedDeletion, order)
	page, next := paginate(all, start, size)
	out := listSecretsOutput{SecretList: []secretListEntry{}}
	for _, sec := range page {
		out.SecretList = append(out.SecretList, secretListEntry{secretMetadata: sec.metadata(), SecretVersionsToStages: sec.versionIDsToStages()})
	}
	if next > 0 {
		out.NextToken = pageToken("ListSecrets", next)
	}
	return out, nil
}

// sortOrder returns how ListSecrets orders secrets: SortBy (created-date by
// default) and SortOrder (asc by default). Ties go by name.
func sortOrder(by, order *string) (func(a, b *secret) int, error) {
	key := func(a, b *secret) int { return a.created.Compare(b.created) }
	if by != nil {
		switch *by {
		case "created-date":
		case "last-accessed-date":
			key = func(a, b *secret) int { return a.lastAccessed.Compare(b.lastAccessed) }
		case "last-changed-date":
			key = func(a, b *secret) int { return a.lastChanged.Compare(b.lastChanged) }
		case "name":
			key = func(a, b *secret) int { return strings.Compare(a.name, b.name) }
		default:
			return nil, errInvalidParameter(fmt.Sprintf("SortBy %q is not one of created-date, last-accessed-date, last-changed-date, name.", *by))
		}
	}
	sign := 1
	if order != nil {
		switch *order {
		case "asc":
		case "desc":
			sign = -1
		default:
			return nil, errInvalidParameter(fmt.Sprintf("SortOrder %q is not asc or desc.", *order))
		}
	}
	return func(a, b *secret) int {
		return sign * cmp.Or(key(a, b), strings.Compare(a.name, b.name))
	}, nil
}

// selectLocked returns the secrets that pass fs, sorted. The caller holds s.mu.
func (s *Server) selectLocked(fs []filter, withDeleted bool, order func(a, b *secret) int) []*secret {
	var out []*secret
	for _, sec := range s.secrets {
		if (withDeleted || sec.deletion.IsZero()) && sec.matches(fs, s.region) {
			out = append(out, sec)
		}
	}
	slices.SortFunc(out, order)
	return out
}

// paginate returns the page of all that starts at start, and the offset of
// the next page (0 when this is the last).
func paginate[T any](all []T, start, size int) (page []T, next int) {
	if start >= len(all) {
		return nil, 0
	}
	end := min(start+size, len(all))
	if end < len(all) {
		next = end
	}
	return all[start:end], next
}

type batchGetSecretValueInput struct {
	SecretIdList []string
	Filters      []filter
	MaxResults   *int64
	NextToken    *string
}

type secretValueEntry struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
}

type batchError struct {
	SecretId  string
	ErrorCode string
	Message   string
}

type batchGetSecretValueOutput struct {
	SecretValues []secretValueEntry
	Errors       []batchError
	NextToken    *string `json:",omitempty"`
}

// batchGetSecretValue returns the AWSCURRENT values of up to 20 secrets,
// named in SecretIdList or chosen by Filters (a page of MaxResults, 20 by
// default, by creation date). A secret that cannot be read is reported in
// Errors, not by failing the call.
func (s *Server) batchGetSecretValue(in batchGetSecretValueInput) (any, error) {
	byID, byFilter := len(in.SecretIdList) > 0, len(in.Filters) > 0
	switch {
	case byID == byFilter:
		return nil, errInvalidParameter("You must include Filters or SecretIdList, but not both.")
	case byID && len(in.SecretIdList) > maxBatchSecretIDs:
		return nil, errInvalidParameter(fmt.Sprintf("SecretIdList has %d entries; the maximum is %d.", len(in.SecretIdList), maxBatchSecretIDs))
	case byID && (in.MaxResults != nil || in.NextToken != nil):
		return nil, errInvalidParameter("MaxResults and NextToken page a request with Filters; a SecretIdList is answered in one response.")
	}
	if err := validateFilters(in.Filters); err != nil {
		return nil, err
	}
	size, err := limit(in.MaxResults, maxBatchResults, maxBatchResults)
	if err != nil {
		return nil, err
	}
	start, err := pageOffset("BatchGetSecretValue", in.NextToken)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := batchGetSecretValueOutput{SecretValues: []secretValueEntry{}, Errors: []batchError{}}
	add := func(id string, sec *secret, err error) {
		var e secretValueEntry
		if err == nil {
			e, err = s.currentValueLocked(sec)
		}
		if err != nil {
			ae := errInternal(err.Error())
			errors.As(err, &ae)
			out.Errors = append(out.Errors, batchError{SecretId: id, ErrorCode: ae.Type, Message: ae.Message})
			return
		}
		out.SecretValues = append(out.SecretValues, e)
	}
	if byID {
		for _, id := range in.SecretIdList {
			sec, err := s.lookupLive(id)
			add(id, sec, err)
		}
		return out, nil
	}
	byCreation, _ := sortOrder(nil, nil)
	page, next := paginate(s.selectLocked(in.Filters, false, byCreation), start, size)
	for _, sec := range page {
		add(sec.arn, sec, nil)
	}
	if next > 0 {
		out.NextToken = pageToken("BatchGetSecretValue", next)
	}
	return out, nil
}

// currentValueLocked reads the AWSCURRENT value as GetSecretValue does,
// access date included. The caller holds s.mu.
func (s *Server) currentValueLocked(sec *secret) (secretValueEntry, error) {
	v := sec.holder(stageCurrent)
	if v == nil || v.value == nil {
		return secretValueEntry{}, errValueNotFoundForStage(stageCurrent)
	}
	sec.lastAccessed = accessDate(s.now())
	return secretValueEntry{
		ARN: sec.arn, Name: sec.name, VersionId: v.id,
		SecretString: v.value.str, SecretBinary: v.value.bin,
		VersionStages: slices.Clone(v.stages), CreatedDate: timePtr(v.created),
	}, nil
}

// accessDate is how AWS reports LastAccessedDate: the day, without the time.
func accessDate(now time.Time) time.Time {
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
}
