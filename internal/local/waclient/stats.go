package waclient

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// maxExamples is how many failures Stats describes.
const maxExamples = 10

// Stats counts what a population's users went through.
type Stats struct {
	// Requests the users made; a retry belongs to its request.
	Requests int
	// Sent is the POSTs that reached the endpoint: requests and retries.
	Sent int
	// Status421 counts 421 answers, Retries the retries they caused, and
	// Recovered the retries the user then saw succeed.
	Status421, Retries, Recovered int
	// Failures are user-visible failures, by cause in Causes.
	Failures int
	Causes   map[string]int
	// Verified counts 200 answers that decrypted to the backend's answer;
	// Expired the 427s the sample backend gives expired tokens.
	Verified, Expired int
	// KeyFetches counts GETs of the business public key.
	KeyFetches int
	// Actions counts requests by action.
	Actions map[string]int
	// Keys counts POSTs by the fingerprint of the key that encrypted them
	// (hex SHA-256 of its PKIX DER, as graphsim names keys).
	Keys map[string]int
	// Examples describe the first failures (no key, token or user data).
	Examples []string
}

func newStats() Stats {
	return Stats{Causes: map[string]int{}, Actions: map[string]int{}, Keys: map[string]int{}}
}

func (s *Stats) add(o outcome) {
	s.Requests++
	s.Sent += o.sent
	s.Status421 += o.got421
	s.KeyFetches += o.fetches
	s.Actions[o.action]++
	for _, fp := range o.keys {
		s.Keys[fp]++
	}
	if o.retried {
		s.Retries++
	}
	if o.recovered {
		s.Recovered++
	}
	if o.verified {
		s.Verified++
	}
	if o.expired {
		s.Expired++
	}
	if o.failure != "" {
		s.Failures++
		s.Causes[o.failure]++
		if len(s.Examples) < maxExamples {
			s.Examples = append(s.Examples, o.detail)
		}
	}
}

func (s Stats) clone() Stats {
	s.Causes, s.Actions, s.Keys = maps.Clone(s.Causes), maps.Clone(s.Actions), maps.Clone(s.Keys)
	s.Examples = slices.Clone(s.Examples)
	return s
}

// Sub is what happened since earlier, a Stats of the same population taken
// before. Examples are those of s not already in earlier.
func (s Stats) Sub(earlier Stats) Stats {
	d := Stats{
		Requests: s.Requests - earlier.Requests, Sent: s.Sent - earlier.Sent,
		Status421: s.Status421 - earlier.Status421, Retries: s.Retries - earlier.Retries,
		Recovered: s.Recovered - earlier.Recovered, Failures: s.Failures - earlier.Failures,
		Verified: s.Verified - earlier.Verified, Expired: s.Expired - earlier.Expired,
		KeyFetches: s.KeyFetches - earlier.KeyFetches,
		Causes:     diff(s.Causes, earlier.Causes), Actions: diff(s.Actions, earlier.Actions),
		Keys: diff(s.Keys, earlier.Keys),
	}
	if len(s.Examples) > len(earlier.Examples) {
		d.Examples = slices.Clone(s.Examples[len(earlier.Examples):])
	}
	return d
}

func diff(now, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range now {
		if n := v - before[k]; n != 0 {
			out[k] = n
		}
	}
	return out
}

// String is a one-line summary.
func (s Stats) String() string {
	var causes []string
	for _, k := range slices.Sorted(maps.Keys(s.Causes)) {
		causes = append(causes, fmt.Sprintf("%s: %d", k, s.Causes[k]))
	}
	out := fmt.Sprintf("%d requests (%d sent), %d verified, %d expired-token 427s, %d 421s, %d retries (%d recovered), %d key fetches, %d user-visible failures",
		s.Requests, s.Sent, s.Verified, s.Expired, s.Status421, s.Retries, s.Recovered, s.KeyFetches, s.Failures)
	if len(causes) > 0 {
		out += " (" + strings.Join(causes, ", ") + ")"
	}
	return out
}

func joinSorted(names []string) string {
	slices.Sort(names)
	return strings.Join(names, ", ")
}
