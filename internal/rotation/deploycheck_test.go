package rotation

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keystate"
)

const wabaID = "102290129340398"

// failingReads fails GetSecretValue of one secret (name or ARN) with err,
// as AWS fails it for a role the secret or its key refuses.
type failingReads struct {
	*secretsfake.Fake
	id  string
	err error
}

func (f failingReads) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.SecretId) == f.id {
		return nil, f.err
	}
	return f.Fake.GetSecretValue(ctx, in, opts...)
}

// readsFail makes the harness's reads of secret id fail with err.
func (h *harness) readsFail(t *testing.T, id string, err error) {
	t.Helper()
	state, serr := keystate.New(failingReads{h.sm, id, err}, h.g, keystate.Options{})
	if serr != nil {
		t.Fatal(serr)
	}
	if h.rot, serr = New(state, h.sm, h.keys, h.g, h.rot.opts); serr != nil {
		t.Fatal(serr)
	}
}

// stageCheck does what RotateSecret(RotateImmediately=false) does: a
// pending copy of the current value, for testSecret alone.
func (h *harness) stageCheck(t *testing.T) {
	t.Helper()
	cur, err := h.sm.GetSecretValue(context.Background(), secretsGet(h.arn, StageCurrent))
	if err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "check", cur.SecretString)
}

// awsErr is an AWS API error as aws-sdk-go-v2 returns it: codes without a
// type of their own (AccessDeniedException) as a *smithy.GenericAPIError.
func awsErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: op, Err: err}
}

// timeoutErr is a net.Error that timed out.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var (
	kmsDenied = awsErr("GetSecretValue", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "Access to KMS is not allowed"})
	iamDenied = awsErr("GetSecretValue", &smithy.GenericAPIError{Code: "AccessDeniedException",
		Message: "User: arn:aws:sts::111122223333:assumed-role/FlowkeyRotation-rotator-us-east-1/fn is not authorized to perform: secretsmanager:GetSecretValue on resource: flowkey/graph-token because no resource-based policy allows the secretsmanager:GetSecretValue action"})
	noRoute = awsErr("GetSecretValue", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}})
)

func wabaConfig() string {
	b, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{"waba_id": wabaID, "access_token_secret_id": tokenSecret}})
	return string(b)
}

// TestDeployCheckNamesCauseAndFix runs the deploy's testSecret
// (RotateImmediately=false) with one failure of each class of the
// classification, in its order, and checks the message's shape.
func TestDeployCheckNamesCauseAndFix(t *testing.T) {
	p0, p1 := phones[0], phones[1]
	tests := []struct {
		name    string
		initial string // the AWSCURRENT document; configOnly(phones...) when ""
		rotated bool   // a rotation ran before, so AWSCURRENT holds a key
		setup   func(t *testing.T, h *harness)
		cause   string // the whole cause
		fix     string // part of the fix
	}{
		{"1 the token secret's KMS key refuses", "", false, func(t *testing.T, h *harness) { h.readsFail(t, tokenSecret, kmsDenied) },
			"the rotator's role cannot decrypt the token secret " + tokenSecret, "set `flowkey:accessTokenSecretKeyArn` to its KMS key"},
		{"1 DecryptionFailure of the token secret", "", false, func(t *testing.T, h *harness) {
			h.readsFail(t, tokenSecret, awsErr("GetSecretValue", &types.DecryptionFailure{Message: aws.String("Secrets Manager can't decrypt the protected secret text using the provided KMS key.")}))
		}, "the rotator's role cannot decrypt the token secret " + tokenSecret, "a permissions boundary must allow `kms:Decrypt`"},
		{"2 the token secret refuses", "", false, func(t *testing.T, h *harness) { h.readsFail(t, tokenSecret, iamDenied) },
			"the rotator's role may not read the token secret " + tokenSecret, "check `flowkey:accessTokenSecretArn`, the secret's resource policy and the permissions boundary"},
		{"3 no token secret", "", false, func(t *testing.T, h *harness) { h.sm.Delete(tokenSecret) },
			"the token secret " + tokenSecret + " does not exist", "create it (infra/README.md, Prerequisites) or correct `flowkey:accessTokenSecretArn`"},
		{"4 the token secret holds no token", "", false, func(t *testing.T, h *harness) {
			h.sm.Put(h.sm.Secret(tokenSecret), "t2", aws.String(`{"token":"`+tokenValue+`"}`), StageCurrent)
		}, "the token secret " + tokenSecret + " holds no token", `store the bare token or {"access_token":"<token>"}`},
		{"5 the secret's KMS key refuses", "", false, func(t *testing.T, h *harness) { h.readsFail(t, h.arn, kmsDenied) },
			"the rotator's role cannot decrypt <arn> with its key", "an adopted key needs the key policy this stack writes"},
		{"6 no readable flowkey document", `{"schema_version":1}`, false, nil,
			"<arn> has no readable flowkey document in AWSPENDING (at deploy, the copy of AWSCURRENT): config: is missing", "a new secret: deploy again (the seed writes it)"},
		{"6 an empty pending version", "", false, func(t *testing.T, h *harness) { h.sm.StagePending(h.arn, "check", nil) },
			"<arn> has no readable flowkey document in AWSPENDING (at deploy, the copy of AWSCURRENT): the version holds no value", "an adopted one must hold a flowkey document"},
		{"7 Meta rejects the token", "", false, func(t *testing.T, h *harness) {
			for _, p := range phones {
				h.g.Fault("get", p, graphErr("get", p, 401, 190, 460, false))
			}
		}, "Meta rejects the Graph token (code 190, subcode 460)", "put a valid system user token into " + tokenSecret},
		{"7 code 0", "", false, func(t *testing.T, h *harness) {
			h.g.Fault("get", p1, &graph.Error{Op: "get", Object: p1, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 0, Attempts: 1, TokenSecret: "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token-AbCdEf"})
		}, "Meta rejects the Graph token (code 0)", "put a valid system user token into arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/graph-token-AbCdEf"},
		{"7 HTTP 401 on the WABA listing", wabaConfig(), false, func(t *testing.T, h *harness) {
			h.g.Fault("list", wabaID, graphErr("list", wabaID, 401, 0, 0, false))
		}, "Meta rejects the Graph token (HTTP 401)", "put a valid system user token into " + tokenSecret},
		{"8 the token may not read a number", "", false, func(t *testing.T, h *harness) { h.g.Fault("get", p1, graphErr("get", p1, 403, 10, 0, false)) },
			"the token may not read phone numbers " + p1 + " (code 10)", "give the system user the WABA's assets with `whatsapp_business_management`"},
		{"9 a number does not exist", "", false, func(t *testing.T, h *harness) { h.g.Remove(p0) },
			"phone number IDs " + p0 + " do not exist for this token (code 100, subcode 33)", "correct `flowkey:phoneNumberIds` (phone number IDs, not display numbers) or `flowkey:wabaId`"},
		{"9 a WABA with no numbers", wabaConfig(), false, nil,
			"WABA " + wabaID + " has no phone numbers left after the include and exclude lists", "or `flowkey:wabaId`"},
		{"10 Meta throttles", "", false, func(t *testing.T, h *harness) {
			e := graphErr("get", p0, 400, 80007, 0, true).(*graph.Error)
			e.RateLimited = true
			h.g.Fault("get", p0, e)
		}, "Meta did not answer for " + p0 + " (code 80007)", "deploy again later; in a VPC the subnets need a route to a NAT (graph.facebook.com has no endpoint)"},
		{"10 no answer from Meta", "", false, func(t *testing.T, h *harness) {
			h.g.Fault("get", p1, &graph.Error{Op: "get", Object: p1, Failure: graph.FailureTransport, Transport: graph.TransportTimeout, Attempts: 3, Retryable: true})
		}, "Meta did not answer for " + p1 + " (transport: timeout)", "deploy again later"},
		{"11 Secrets Manager out of reach", "", false, func(t *testing.T, h *harness) { h.readsFail(t, tokenSecret, noRoute) },
			"the rotator could not reach Secrets Manager", "give the subnets a NAT route or set `flowkey:vpcEndpoints`"},
		{"11 DescribeSecret out of reach", "", false, func(t *testing.T, h *harness) {
			h.sm.FailNext(secretsfake.OpDescribeSecret, awsErr("DescribeSecret", fmt.Errorf("send request: %w", context.DeadlineExceeded)))
		}, "the rotator could not reach Secrets Manager", `(infra/README.md, "Running in a VPC")`},
		{"12 a number holds another key", "", true, func(t *testing.T, h *harness) {
			h.g.Set(p1, testPairs[3].PublicPEM(), graph.StatusValid)
			h.g.SetStatus(phones[2], graph.StatusMismatch)
		}, "phone numbers " + p1 + ", " + phones[2] + " do not hold the AWSCURRENT key <fp> (hold " + testPairs[3].Fingerprint().Short() + ", status VALID; <fp>, status MISMATCH)",
			"repair them before deploying: run resync locally (`make sam-invoke STEP=resync`, `SECRET_ID=<arn>`, `dry_run` false), then deploy again"},
		{"13 no token secret configured", `{"schema_version":1,"config":{"phone_number_ids":["` + p0 + `"]}}`, false, nil,
			"testSecret failed: config.access_token_secret_id is not set, and neither is ACCESS_TOKEN_SECRET_ID", "see the rotator's log group"},
		{"13 anything else", "", false, func(t *testing.T, h *harness) {
			h.g.Fault("get", p0, &graph.Error{Op: "get", Object: p0, Failure: graph.FailureMalformed, HTTPStatus: 200, Attempts: 1, Err: graph.ErrMalformedResponse})
		}, "testSecret failed for " + p0 + ": graph get " + p0 + ": HTTP 200: malformed response after 1 attempt",
			"see the rotator's log group; deploy with `CDK_FLAGS=--no-rollback` to keep it, then `cdk rollback`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			initial := tc.initial
			if initial == "" {
				initial = configOnly(phones...)
			}
			h := newHarness(t, initial, phones...)
			if tc.rotated {
				if err := h.rotate(t, "v1"); err != nil {
					t.Fatal(err)
				}
			}
			h.stageCheck(t)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			up0, _ := h.g.Totals()
			err := h.step(StepTest, "check")
			var dc *DeployCheckError
			if !errors.As(err, &dc) {
				t.Fatalf("want a *DeployCheckError, got %T %v", err, err)
			}
			cause := strings.NewReplacer("<arn>", h.arn).Replace(tc.cause)
			if tc.rotated {
				cause = strings.ReplaceAll(cause, "<fp>", h.doc(t, StageCurrent).Key.Pair().Fingerprint().Short())
			}
			if dc.Cause != cause {
				t.Errorf("cause\n%q\nwant\n%q", dc.Cause, cause)
			}
			assertDeployMessage(t, err.Error(), cause, strings.ReplaceAll(tc.fix, "<arn>", h.arn))
			assertLoggedAtError(t, h, err.Error())
			if up, _ := h.g.Totals(); up != up0 {
				t.Error("the deploy check uploaded")
			}
		})
	}
}

// assertDeployMessage checks the shape every deploy check message has.
func assertDeployMessage(t *testing.T, msg, cause, fix string) {
	t.Helper()
	if !strings.HasPrefix(msg, DeployCheckPrefix+cause+". Fix: ") {
		t.Errorf("message does not start with the prefix, the cause and the fix:\n%s", msg)
	}
	c, f, d := strings.Index(msg, cause), strings.Index(msg, fix), strings.Index(msg, ". Details: ")
	if c < 0 || f < 0 || d < 0 || !(c < f && f < d) {
		t.Errorf("want cause (%d), fix (%d), details (%d) in that order:\n%s", c, f, d, msg)
	}
	if len(msg) > DeployCheckMaxBytes || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("message of %d bytes (valid UTF-8 %v), want one line of at most %d", len(msg), utf8.ValidString(msg), DeployCheckMaxBytes)
	}
	for _, leak := range []string{tokenValue, "PRIVATE KEY", "MII"} {
		if strings.Contains(msg, leak) {
			t.Errorf("message contains %q", leak)
		}
	}
}

// assertLoggedAtError finds the step's ERROR line with msg as its error.
func assertLoggedAtError(t *testing.T, h *harness, msg string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(h.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Level, Msg, Step, Error string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "ERROR" && line.Step == StepTest && line.Error == msg {
			return
		}
	}
	t.Errorf("no ERROR log line with step %s and the message as its error; logs:\n%s", StepTest, h.logs.String())
}

// TestDeployCheckCauseIsTheFirstClassAndDetailsKeepEveryNumber: a rejected
// token explains the other numbers' failures, so it is the cause, and the
// details still say what happened to each number.
func TestDeployCheckCauseIsTheFirstClassAndDetailsKeepEveryNumber(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.stageCheck(t)
	h.g.Fault("get", phones[0], graphErr("get", phones[0], 403, 10, 0, false))
	h.g.Fault("get", phones[1], graphErr("get", phones[1], 400, 100, 33, false))
	h.g.Fault("get", phones[2], graphErr("get", phones[2], 401, 190, 0, false))
	err := h.step(StepTest, "check")
	cause := "Meta rejects the Graph token (code 190)"
	assertDeployMessage(t, err.Error(), cause, "put a valid system user token into "+tokenSecret)
	for _, want := range []string{"3 of 3 phone numbers failed", phones[0] + " (graph code 10, HTTP 403)", phones[1] + " (graph code 100 subcode 33, HTTP 400)", phones[2] + " (graph code 190, HTTP 401)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("details do not keep %q: %s", want, err)
		}
	}
}

// TestDeployCheckStaysWithinItsBoundForAHundredNumbers: the cause names
// five numbers and counts the rest, and the details are cut to fit.
func TestDeployCheckStaysWithinItsBoundForAHundredNumbers(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("1065403522%05d", i)
	}
	h := newHarness(t, configOnly(many...), many...)
	h.stageCheck(t)
	for _, p := range many {
		e := graphErr("get", p, 403, 200, 0, false).(*graph.Error)
		e.Message = "(#200) Requires whatsapp_business_management permission to manage the object " + strings.Repeat("é", 40)
		h.g.Fault("get", p, e)
	}
	err := h.step(StepTest, "check")
	msg := err.Error()
	cause := "the token may not read phone numbers " + strings.Join(many[:5], ", ") + " and 95 more (code 200)"
	assertDeployMessage(t, msg, cause, "`whatsapp_business_management`")
	if !strings.HasSuffix(msg, " more bytes; see the rotator's log)") || !strings.Contains(msg, "100 of 100 phone numbers failed") {
		t.Errorf("want the details cut with a count of the rest:\n%s", msg)
	}
	var dc *DeployCheckError
	if !errors.As(err, &dc) || len(dc.Err.Error()) <= DeployCheckMaxBytes {
		t.Fatalf("the test needs details longer than the bound; got %v", err)
	}
}

func TestDeployCheckTextKeepsItsBound(t *testing.T) {
	long := strings.Repeat("arn:aws:secretsmanager:é", 100)
	for _, details := range []string{"", "short", strings.Repeat("x", 5000), strings.Repeat("€", 2000)} {
		msg := deployCheckText(long, long, details)
		if len(msg) > DeployCheckMaxBytes || !utf8.ValidString(msg) || !strings.HasPrefix(msg, DeployCheckPrefix) || !strings.Contains(msg, ". Fix: ") {
			t.Errorf("%d bytes of details: message of %d bytes, valid UTF-8 %v: %.80s", len(details), len(msg), utf8.ValidString(msg), msg)
		}
	}
	if got := deployCheckText("c.", "f", "a\nb"); got != DeployCheckPrefix+"c. Fix: f. Details: a b" {
		t.Errorf("got %q", got)
	}
}

// TestARealRotationsTestSecretKeepsItsReport: a testSecret that rolled
// back is no deploy check; its *StepError says what the rollback did.
func TestARealRotationsTestSecretKeepsItsReport(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	h.sm.StagePending(h.arn, "v2", nil)
	for _, s := range []string{StepCreate, StepSet} {
		if err := h.step(s, "v2"); err != nil {
			t.Fatal(err)
		}
	}
	h.g.SetStatus(phones[1], graph.StatusMismatch)
	err := h.step(StepTest, "v2")
	var (
		se *StepError
		dc *DeployCheckError
	)
	if !errors.As(err, &se) || errors.As(err, &dc) || !strings.HasPrefix(err.Error(), StepTest+": ") || strings.Contains(err.Error(), DeployCheckPrefix) {
		t.Fatalf("want the step's own report, got %v", err)
	}
	if len(se.RolledBack) == 0 {
		t.Errorf("nothing was rolled back: %v", err)
	}
}
