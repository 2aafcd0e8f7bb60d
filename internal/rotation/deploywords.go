package rotation

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// The fixes of the deploy check, as infra/README.md ("When the first
// deploy fails") words them. Settings are the CDK context keys.
const (
	fixTokenKMS = "set `flowkey:accessTokenSecretKeyArn` to its KMS key and add the key-policy statement of infra/README.md " +
		`("A token secret under its own key"); a permissions boundary must allow ` + "`kms:Decrypt`"
	fixTokenDenied  = "check `flowkey:accessTokenSecretArn`, the secret's resource policy and the permissions boundary"
	fixTokenMissing = "create it (infra/README.md, Prerequisites) or correct `flowkey:accessTokenSecretArn`"
	fixTokenValue   = `store the bare token or {"access_token":"<token>"}`
	fixSecretKMS    = "an adopted key needs the key policy this stack writes (infra/README.md, \"Redeploying after `cdk destroy`\")"
	fixNoDocument   = "a new secret: deploy again (the seed writes it); an adopted one must hold a flowkey document"
	fixNoPermission = "give the system user the WABA's assets with `whatsapp_business_management`"
	fixNoSuchNumber = "correct `flowkey:phoneNumberIds` (phone number IDs, not display numbers) or `flowkey:wabaId`"
	fixMetaSilent   = "deploy again later; in a VPC the subnets need a route to a NAT (graph.facebook.com has no endpoint)"
	fixUnreachable  = "give the subnets a NAT route or set `flowkey:vpcEndpoints` (infra/README.md, \"Running in a VPC\")"
	fixOther        = "see the rotator's log group; deploy with `CDK_FLAGS=--no-rollback` to keep it, then `cdk rollback`"
)

// words is the cause and fix of class, from found, the failures of that
// class (numbers in the step's order); err is the step's whole failure.
func (d deployCheck) words(class deployClass, found []finding, err error) (cause, fix string) {
	lead := found[0].err
	switch class {
	case classTokenKMS:
		return "the rotator's role cannot decrypt the token secret " + tokenSecretOf(lead), fixTokenKMS
	case classTokenDenied:
		return "the rotator's role may not read the token secret " + tokenSecretOf(lead), fixTokenDenied
	case classTokenMissing:
		return "the token secret " + tokenSecretOf(lead) + " does not exist", fixTokenMissing
	case classTokenValue:
		return "the token secret " + tokenSecretOf(lead) + " holds no token", fixTokenValue
	case classSecretKMS:
		return "the rotator's role cannot decrypt " + d.secret + " with its key", fixSecretKMS
	case classNoDocument:
		return d.noDocument(lead), fixNoDocument
	case classTokenRejected:
		return "Meta rejects the Graph token (" + graphTagOf(lead) + ")", "put a valid system user token into " + d.tokenSecretIn(lead)
	case classNoPermission:
		if waba := listed(found); waba != "" {
			return fmt.Sprintf("the token may not list the phone numbers of WABA %s (%s)", waba, graphTagOf(lead)), fixNoPermission
		}
		return fmt.Sprintf("the token may not read phone numbers %s (%s)", idsOf(found), graphTagOf(lead)), fixNoPermission
	case classNoSuchNumber:
		var nn *noNumbersError
		switch waba := listed(found); {
		case errors.As(lead, &nn):
			return "WABA " + nn.wabaID + " has no phone numbers left after the include and exclude lists", fixNoSuchNumber
		case waba != "":
			return fmt.Sprintf("WABA %s does not exist for this token (%s)", waba, graphTagOf(lead)), fixNoSuchNumber
		}
		return fmt.Sprintf("phone number IDs %s do not exist for this token (%s)", idsOf(found), graphTagOf(lead)), fixNoSuchNumber
	case classMetaSilent:
		if waba := listed(found); waba != "" {
			return fmt.Sprintf("Meta did not answer the listing of WABA %s (%s)", waba, graphTagOf(lead)), fixMetaSilent
		}
		return fmt.Sprintf("Meta did not answer for %s (%s)", idsOf(found), graphTagOf(lead)), fixMetaSilent
	case classAWSUnreachable:
		service, _ := unreachable(lead)
		return "the rotator could not reach " + service, fixUnreachable
	case classMismatch:
		return d.mismatch(found), "repair them before deploying: run resync locally (`make sam-invoke STEP=resync`, `SECRET_ID=" + d.secret +
			"`, `dry_run` false), then deploy again"
	}
	if found[0].id != "" {
		// The numbers' own errors, not the report's count of them.
		return fmt.Sprintf("testSecret failed for %s: %s", idsOf(found), firstSentence(lead.Error())), fixOther
	}
	return "testSecret failed: " + firstSentence(err.Error()), fixOther
}

// noDocument names the label whose version could not be read and why.
func (d deployCheck) noDocument(err error) string {
	var (
		le *loadError
		de *secretdoc.Error
	)
	where := StageCurrent + " flowkey document"
	if errors.As(err, &le) && le.stage == StagePending {
		// At deploy Secrets Manager copied AWSCURRENT there.
		where = "flowkey document in " + StagePending + " (at deploy, the copy of " + StageCurrent + ")"
	}
	problem := "the version holds no value"
	if errors.As(err, &de) {
		problem = de.Field + ": " + de.Problem
	}
	return fmt.Sprintf("%s has no readable %s: %s", d.secret, where, problem)
}

// mismatch names the numbers that do not hold the key and what they hold.
func (d deployCheck) mismatch(found []finding) string {
	var (
		want  string
		holds []string
	)
	for _, f := range found {
		var me *MismatchError
		if !errors.As(f.err, &me) {
			continue
		}
		want = me.Want
		status := me.Status
		if status == "" {
			status = "(none)"
		}
		held := me.Held
		switch {
		case me.KeyOmitted:
			held = "a key Meta did not show"
		case held == "" && me.KeyProblem != "":
			held = "a key flowkey cannot read"
		case held == "":
			held = "none"
		}
		if h := held + ", status " + status; !slices.Contains(holds, h) {
			holds = append(holds, h)
		}
	}
	if len(holds) > 3 {
		holds = append(holds[:3], "...")
	}
	return fmt.Sprintf("phone numbers %s do not hold the AWSCURRENT key %s (hold %s)", idsOf(found), want, strings.Join(holds, "; "))
}

// tokenSecretOf is the token secret a *keystate.TokenSecretError names.
func tokenSecretOf(err error) string {
	var te *keystate.TokenSecretError
	if errors.As(err, &te) {
		return te.SecretID
	}
	return "(unknown)"
}

// tokenSecretIn is the token secret a Graph error was made with: Graph's
// own record of it, else the one the step resolved.
func (d deployCheck) tokenSecretIn(err error) string {
	var ge *graph.Error
	switch {
	case errors.As(err, &ge) && ge.TokenSecret != "":
		return ge.TokenSecret
	case d.tokenSecret != "":
		return d.tokenSecret
	}
	return "the token secret"
}

// graphTagOf is "code 190", "HTTP 401", "transport: timeout".
func graphTagOf(err error) string {
	var ge *graph.Error
	if !errors.As(err, &ge) {
		return "no Graph error"
	}
	if code, ok := ge.GraphCode(); ok {
		if ge.Subcode != 0 {
			return fmt.Sprintf("code %d, subcode %d", code, ge.Subcode)
		}
		return fmt.Sprintf("code %d", code)
	}
	switch {
	case ge.Failure == graph.FailureTransport:
		return "transport: " + ge.Transport
	case ge.HTTPStatus != 0:
		return fmt.Sprintf("HTTP %d", ge.HTTPStatus)
	}
	return "no response"
}

// listed is the WABA whose listing failed, when that is the failure.
func listed(found []finding) string {
	var ge *graph.Error
	if found[0].id == "" && errors.As(found[0].err, &ge) && ge.Op == "list" {
		return ge.Object
	}
	return ""
}

// idsOf lists the numbers found, or the one a single Graph error names.
func idsOf(found []finding) string {
	ids := make([]string, 0, len(found))
	for _, f := range found {
		if f.id != "" {
			ids = append(ids, f.id)
		}
	}
	var ge *graph.Error
	if len(ids) == 0 && errors.As(found[0].err, &ge) && ge.Object != "" {
		ids = append(ids, ge.Object)
	}
	return listIDs(ids)
}
