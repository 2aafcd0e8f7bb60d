package kmsproxy

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// statement is the part of a key policy statement the checks read.
type statement struct {
	Effect     string
	Principals []string // the AWS principals, or "*"
	Actions    []string
}

// principalARN is what KMS accepts as a principal: an account ID or an
// IAM root, role, user or assumed-role ARN. AWS also checks that the
// principal exists, which the proxy cannot.
var principalARN = regexp.MustCompile(`^(\d{12}|\*|arn:aws[a-z-]*:(iam::\d{12}:(root|role/.+|user/.+)|sts::\d{12}:assumed-role/.+))$`)

// policyProblem is why KMS will not attach a policy, in AWS's words (so
// capitalised and punctuated, as the exception's message).
type policyProblem string

func (p policyProblem) Error() string { return string(p) }

const invalidPrincipals policyProblem = "Policy contains a statement with one or more invalid principals."

// parsePolicy reads a key policy as KMS does before it attaches it: a
// JSON object with a Statement (one or a list), each with an Effect, one
// or more principals and one or more actions.
func parsePolicy(doc string) ([]statement, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		return nil, policyProblem("The policy is not valid JSON.")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw.Statement, &list); err != nil {
		// A single statement may stand without a list.
		list = []json.RawMessage{raw.Statement}
	}
	var out []statement
	for i, r := range list {
		var s struct {
			Effect    string
			Principal json.RawMessage
			Action    json.RawMessage
		}
		if len(r) == 0 || json.Unmarshal(r, &s) != nil {
			return nil, policyProblem("The policy has no statement.")
		}
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return nil, policyProblem(fmt.Sprintf("Statement %d has Effect %q, not Allow or Deny.", i+1, s.Effect))
		}
		prs, err := principals(s.Principal)
		if err != nil {
			return nil, err
		}
		acts := stringOrList(s.Action)
		if len(acts) == 0 {
			return nil, policyProblem(fmt.Sprintf("Statement %d has no Action.", i+1))
		}
		out = append(out, statement{Effect: s.Effect, Principals: prs, Actions: acts})
	}
	if len(out) == 0 {
		return nil, policyProblem("The policy has no statement.")
	}
	return out, nil
}

// principals reads a statement's Principal: "*" or {"AWS": ...}; other
// principal types (Service) are kept out of the lockout check.
func principals(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, invalidPrincipals
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		if star != "*" {
			return nil, invalidPrincipals
		}
		return []string{"*"}, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil, invalidPrincipals
	}
	var out []string
	for typ, v := range m {
		list := stringOrList(v)
		if len(list) == 0 {
			return nil, invalidPrincipals
		}
		if typ != "AWS" {
			continue
		}
		for _, p := range list {
			if !principalARN.MatchString(p) {
				return nil, invalidPrincipals
			}
		}
		out = append(out, list...)
	}
	return out, nil
}

// stringOrList reads a policy value that is a string or a list of them.
func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var list []string
	_ = json.Unmarshal(raw, &list)
	return list
}

// actionsCover reports whether an action pattern ("kms:*", "kms:Put*",
// "*") of patterns matches action; IAM compares actions case-blind.
func actionsCover(patterns []string, action string) bool {
	action = strings.ToLower(action)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), action); ok {
			return true
		}
	}
	return false
}
