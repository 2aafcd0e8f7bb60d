package secretsfake_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

// These tests pin the behaviour the rotation and operator tests rely on,
// so that the fake cannot drift from it unnoticed.

const secretValue = "value-that-must-not-leak-9c1e"

var ctx = context.Background()

// newSecret is a Fake with one secret "k" whose version v0 is AWSCURRENT.
func newSecret(t *testing.T) (*secretsfake.Fake, *secretsfake.Secret) {
	t.Helper()
	f := secretsfake.New(t)
	s := f.Add("k")
	f.Put(s, "v0", aws.String("zero"), secretsfake.StageCurrent)
	return f, s
}

// labels is what DescribeSecret reports, as version → labels.
func labels(t *testing.T, f *secretsfake.Fake, id string) map[string][]string {
	t.Helper()
	out, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	for _, l := range out.VersionIdsToStages {
		slices.Sort(l)
	}
	return out.VersionIdsToStages
}

func assertLabels(t *testing.T, f *secretsfake.Fake, id string, want map[string][]string) {
	t.Helper()
	if got := labels(t, f, id); !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

func put(f *secretsfake.Fake, token, value string, stages ...string) (*secretsmanager.PutSecretValueOutput, error) {
	return f.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("k"), ClientRequestToken: aws.String(token),
		SecretString: aws.String(value), VersionStages: stages})
}

func move(f *secretsfake.Fake, label, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("k"), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := f.UpdateSecretVersionStage(ctx, in)
	return err
}

func TestMovingAWSCURRENTMakesTheOldHolderAWSPREVIOUS(t *testing.T) {
	f, s := newSecret(t)
	if _, err := put(f, "v1", "one", secretsfake.StagePending); err != nil {
		t.Fatal(err)
	}
	assertLabels(t, f, s.ARN, map[string][]string{"v0": {"AWSCURRENT"}, "v1": {"AWSPENDING"}})

	if err := move(f, secretsfake.StageCurrent, "v1", "v0"); err != nil {
		t.Fatal(err)
	}
	assertLabels(t, f, s.ARN, map[string][]string{"v0": {"AWSPREVIOUS"}, "v1": {"AWSCURRENT", "AWSPENDING"}})

	// A PutSecretValue without stages takes AWSCURRENT; AWSPREVIOUS moves
	// on and v0, holding no label, is no longer described.
	if _, err := put(f, "v2", "two"); err != nil {
		t.Fatal(err)
	}
	assertLabels(t, f, "k", map[string][]string{"v1": {"AWSPENDING", "AWSPREVIOUS"}, "v2": {"AWSCURRENT"}})

	// Moving any other label makes no AWSPREVIOUS.
	if err := move(f, secretsfake.StagePending, "v2", "v1"); err != nil {
		t.Fatal(err)
	}
	assertLabels(t, f, "k", map[string][]string{"v1": {"AWSPREVIOUS"}, "v2": {"AWSCURRENT", "AWSPENDING"}})
	if err := move(f, secretsfake.StagePending, "", "v2"); err != nil {
		t.Fatal(err)
	}
	assertLabels(t, f, "k", map[string][]string{"v1": {"AWSPREVIOUS"}, "v2": {"AWSCURRENT"}})
}

func TestUpdateSecretVersionStageRefusals(t *testing.T) {
	tests := []struct {
		name, label, to, from string
		wantType              any
		wantMsg               string
	}{
		{name: "holder not named", label: "AWSCURRENT", to: "v1", wantType: &types.InvalidParameterException{},
			wantMsg: "The staging label AWSCURRENT is currently attached to version v0, so you must explicitly reference that version in RemoveFromVersionId."},
		{name: "RemoveFromVersionId not the holder", label: "AWSCURRENT", to: "v0", from: "v1", wantType: &types.InvalidParameterException{},
			wantMsg: "RemoveFromVersionId does not hold the label"},
		{name: "unknown target version", label: "AWSPENDING", to: "nope", wantType: &types.ResourceNotFoundException{},
			wantMsg: "no version nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, s := newSecret(t)
			f.Put(s, "v1", aws.String("one"))
			before := f.Snapshot("k")
			err := move(f, tc.label, tc.to, tc.from)
			assertAPIError(t, err, tc.wantType, tc.wantMsg)
			if after := f.Snapshot("k"); after != before {
				t.Errorf("refused call changed the secret:\n%s\n->\n%s", before, after)
			}
		})
	}
}

// assertAPIError checks err's type (wantType is a pointer to the SDK
// exception) and message.
func assertAPIError(t *testing.T, err error, wantType any, wantMsg string) {
	t.Helper()
	var ok bool
	var msg string
	switch want := wantType.(type) {
	case *types.InvalidParameterException:
		ok, msg = errors.As(err, &want), aws.ToString(want.Message)
	case *types.InvalidRequestException:
		ok, msg = errors.As(err, &want), aws.ToString(want.Message)
	case *types.ResourceNotFoundException:
		ok, msg = errors.As(err, &want), aws.ToString(want.Message)
	case *types.ResourceExistsException:
		ok, msg = errors.As(err, &want), aws.ToString(want.Message)
	default:
		t.Fatalf("assertAPIError: unsupported type %T", wantType)
	}
	if !ok || msg != wantMsg {
		t.Errorf("got %T %v, want %T %q", err, err, wantType, wantMsg)
	}
}

func TestPutSecretValueIsIdempotentPerToken(t *testing.T) {
	f, _ := newSecret(t)
	if _, err := put(f, "v1", secretValue, secretsfake.StagePending); err != nil {
		t.Fatal(err)
	}
	before := f.Snapshot("k")

	out, err := put(f, "v1", secretValue, secretsfake.StagePending)
	if err != nil || aws.ToString(out.VersionId) != "v1" {
		t.Fatalf("repeat with the same value: want success on v1, got %v, %v", out, err)
	}
	if after := f.Snapshot("k"); after != before {
		t.Errorf("repeat changed the secret:\n%s\n->\n%s", before, after)
	}

	_, err = put(f, "v1", "other", secretsfake.StagePending)
	assertAPIError(t, err, &types.ResourceExistsException{}, "You can't modify an existing version, you can only create a new version.")
	_, err = put(f, "", "other")
	assertAPIError(t, err, &types.InvalidParameterException{}, "test fake: ClientRequestToken must be set")
	if after := f.Snapshot("k"); after != before {
		t.Errorf("refused puts changed the secret:\n%s\n->\n%s", before, after)
	}
	if strings.Contains(before, secretValue) {
		t.Errorf("Snapshot shows the value: %s", before)
	}
}

func TestPutSecretValueFillsAVersionStagedWithoutAValue(t *testing.T) {
	f, _ := newSecret(t)
	f.StagePending("k", "v1", nil)
	if _, err := f.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("k"), VersionStage: aws.String("AWSPENDING")}); err == nil {
		t.Fatal("read of a version without a value succeeded")
	}
	if _, err := put(f, "v1", "one", secretsfake.StagePending); err != nil {
		t.Fatalf("put on the staged version: %v", err)
	}
	out, err := f.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("k"), VersionId: aws.String("v1"), VersionStage: aws.String("AWSPENDING")})
	if err != nil || aws.ToString(out.SecretString) != "one" {
		t.Fatalf("got %v, %v; want one", out, err)
	}
}

func TestGetSecretValue(t *testing.T) {
	f, s := newSecret(t)
	f.Put(s, "v1", aws.String("one"), secretsfake.StagePending)
	tests := []struct {
		name, version, stage, want string
	}{
		{name: "default is AWSCURRENT", want: "zero"},
		{name: "by stage", stage: "AWSPENDING", want: "one"},
		{name: "by version", version: "v0", want: "zero"},
		{name: "version and its stage", version: "v1", stage: "AWSPENDING", want: "one"},
		{name: "version without that stage", version: "v1", stage: "AWSCURRENT"},
		{name: "stage nobody holds", stage: "AWSPREVIOUS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.ARN)}
			if tc.version != "" {
				in.VersionId = aws.String(tc.version)
			}
			if tc.stage != "" {
				in.VersionStage = aws.String(tc.stage)
			}
			out, err := f.GetSecretValue(ctx, in)
			if tc.want == "" {
				var nf *types.ResourceNotFoundException
				if !errors.As(err, &nf) || !strings.HasPrefix(aws.ToString(nf.Message), "Secrets Manager can't find the specified secret value for VersionId: ") {
					t.Fatalf("want ResourceNotFoundException, got %v", err)
				}
				return
			}
			if err != nil || aws.ToString(out.SecretString) != tc.want {
				t.Fatalf("got %v, %v; want %q", out, err, tc.want)
			}
		})
	}
}

func TestEveryOperationOnAnUnknownSecretIsNotFound(t *testing.T) {
	f := secretsfake.New(t)
	id := aws.String("missing")
	calls := map[string]func() error{
		secretsfake.OpDescribeSecret: func() error {
			_, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: id})
			return err
		},
		secretsfake.OpGetSecretValue: func() error {
			_, err := f.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id})
			return err
		},
		secretsfake.OpPutSecretValue: func() error {
			_, err := f.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: id, ClientRequestToken: aws.String("v1")})
			return err
		},
		secretsfake.OpUpdateSecretVersionStage: func() error {
			_, err := f.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("AWSCURRENT")})
			return err
		},
		secretsfake.OpRotateSecret: func() error {
			_, err := f.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: id})
			return err
		},
		secretsfake.OpTagResource: func() error {
			_, err := f.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: id})
			return err
		},
	}
	for op, call := range calls {
		t.Run(op, func(t *testing.T) {
			assertAPIError(t, call(), &types.ResourceNotFoundException{}, "Secrets Manager can't find the specified secret.")
			if f.Calls(op) != 1 {
				t.Errorf("%d calls of %s recorded, want 1", f.Calls(op), op)
			}
		})
	}
}

func TestRotateSecretStagesAnEmptyPendingAndRefusesWhileOneIsIncomplete(t *testing.T) {
	f, s := newSecret(t)
	in := &secretsmanager.RotateSecretInput{SecretId: aws.String("k"), RotateImmediately: aws.Bool(true)}
	out, err := f.RotateSecret(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	v := aws.ToString(out.VersionId)
	if aws.ToString(out.ARN) != s.ARN || v == "" || v == "v0" {
		t.Fatalf("got ARN %s version %q", aws.ToString(out.ARN), v)
	}
	assertLabels(t, f, "k", map[string][]string{"v0": {"AWSCURRENT"}, v: {"AWSPENDING"}})
	if val, ok := s.Values[v]; !ok || val != nil {
		t.Errorf("the new version should exist without a value, got %v, %v", val, ok)
	}

	before := f.Snapshot("k")
	_, err = f.RotateSecret(ctx, in)
	assertAPIError(t, err, &types.InvalidRequestException{}, "A previous rotation isn't complete. That rotation will be reattempted.")
	if after := f.Snapshot("k"); after != before {
		t.Errorf("refused rotation changed the secret:\n%s\n->\n%s", before, after)
	}
	// The incomplete rotation's own token resumes it, changing nothing
	// here; with RefuseResume it is refused like any other.
	resume := &secretsmanager.RotateSecretInput{SecretId: aws.String("k"), ClientRequestToken: aws.String(v), RotateImmediately: aws.Bool(true)}
	if out, err := f.RotateSecret(ctx, resume); err != nil || aws.ToString(out.VersionId) != v {
		t.Errorf("resuming RotateSecret: %v %+v", err, out)
	}
	f.RefuseResume = true
	_, err = f.RotateSecret(ctx, resume)
	assertAPIError(t, err, &types.InvalidRequestException{}, "A previous rotation isn't complete. That rotation will be reattempted.")
	f.RefuseResume = false
	if after := f.Snapshot("k"); after != before {
		t.Errorf("a resume changed the secret:\n%s\n->\n%s", before, after)
	}

	// Once the rotation finished (AWSPENDING on AWSCURRENT's version), the
	// next one may start, on a new version.
	f.Put(s, v, aws.String("one"), secretsfake.StageCurrent, secretsfake.StagePending)
	out2, err := f.RotateSecret(ctx, in)
	if err != nil {
		t.Fatalf("rotation after a complete one: %v", err)
	}
	if v2 := aws.ToString(out2.VersionId); v2 == v || s.Holder(secretsfake.StagePending) != v2 {
		t.Errorf("second rotation staged %q (AWSPENDING on %q), want a new version", v2, s.Holder(secretsfake.StagePending))
	}
	if got := f.RotateInputs(); len(got) != 5 || got[0] != in {
		t.Errorf("RotateInputs %v, want the 5 inputs", got)
	}
}

func TestBeforeRotateOnDescribeAndAfterStageChangeTheSecretUnderTheLock(t *testing.T) {
	f, s := newSecret(t)
	f.BeforeRotate = func(s *secretsfake.Secret) {
		s.Values["v-other"] = nil
		s.Detach(secretsfake.StagePending)
		s.Stages["v-other"] = []string{secretsfake.StagePending}
	}
	_, err := f.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("k")})
	assertAPIError(t, err, &types.InvalidRequestException{}, "A previous rotation isn't complete. That rotation will be reattempted.")

	var seen []int
	f.OnDescribe = func(n int, s *secretsfake.Secret) {
		seen = append(seen, n)
		if n == 2 {
			s.Detach(secretsfake.StagePending)
		}
	}
	assertLabels(t, f, "k", map[string][]string{"v0": {"AWSCURRENT"}, "v-other": {"AWSPENDING"}})
	assertLabels(t, f, "k", map[string][]string{"v0": {"AWSCURRENT"}})
	if !slices.Equal(seen, []int{1, 2}) {
		t.Errorf("OnDescribe saw calls %v, want [1 2]", seen)
	}
	if s.Holder(secretsfake.StagePending) != "" {
		t.Error("OnDescribe's change did not stick")
	}

	// AfterStage acts right after a label moved.
	f.AfterStage = func(s *secretsfake.Secret) { s.Values["v-other"] = aws.String("stored meanwhile") }
	if _, err := f.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("k"), VersionStage: aws.String("X"), MoveToVersionId: aws.String("v0"),
	}); err != nil {
		t.Fatal(err)
	}
	if v := s.Values["v-other"]; v == nil || *v != "stored meanwhile" {
		t.Errorf("AfterStage's change did not stick: %v", v)
	}
}

func TestReadOnlyRefusesWritesButRecordsThem(t *testing.T) {
	f, s := newSecret(t)
	f.ReadOnly = true
	before := f.Snapshot("k")
	_, err := put(f, "v1", "one", secretsfake.StagePending)
	assertAPIError(t, err, &types.InvalidRequestException{}, "test fake: operator commands never write the secret")
	err = move(f, secretsfake.StageCurrent, "v0", "")
	assertAPIError(t, err, &types.InvalidRequestException{}, "test fake: operator commands never move labels")
	if after := f.Snapshot("k"); after != before {
		t.Errorf("ReadOnly writes changed the secret:\n%s\n->\n%s", before, after)
	}
	// RotateSecret only asks Secrets Manager to rotate: ReadOnly allows it.
	if _, err := f.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(s.ARN)}); err != nil {
		t.Fatalf("RotateSecret under ReadOnly: %v", err)
	}
	if _, err := f.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	want := []string{"PutSecretValue", "UpdateSecretVersionStage", "RotateSecret"}
	if got := f.Writes(); !slices.Equal(got, want) {
		t.Errorf("Writes %v, want %v", got, want)
	}
	if got := f.Ops(); !slices.Equal(got, append(want, "GetSecretValue")) {
		t.Errorf("Ops %v", got)
	}
}

func TestScriptedFailures(t *testing.T) {
	f, _ := newSecret(t)
	errOnce1, errOnce2, errAlways := errors.New("once 1"), errors.New("once 2"), errors.New("always")
	get := func() error {
		_, err := f.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")})
		return err
	}
	f.FailNext(secretsfake.OpGetSecretValue, errOnce1)
	f.FailNext(secretsfake.OpGetSecretValue, errOnce2)
	for i, want := range []error{errOnce1, errOnce2, nil} {
		if err := get(); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("call %d: got %v, want %v", i+1, err, want)
		}
	}
	f.FailAlways(secretsfake.OpGetSecretValue, errAlways)
	f.FailNext(secretsfake.OpGetSecretValue, errOnce1)
	for i, want := range []error{errOnce1, errAlways, errAlways} {
		if err := get(); !errors.Is(err, want) {
			t.Errorf("call %d after FailAlways: got %v, want %v", i+1, err, want)
		}
	}
	f.FailAlways(secretsfake.OpGetSecretValue, nil)
	if err := get(); err != nil {
		t.Errorf("after FailAlways(nil): %v", err)
	}
	if f.Calls(secretsfake.OpGetSecretValue) != 7 || f.TotalCalls() != 7 || f.Calls(secretsfake.OpDescribeSecret) != 0 {
		t.Errorf("Calls %d, TotalCalls %d; want 7 and 7", f.Calls(secretsfake.OpGetSecretValue), f.TotalCalls())
	}
}

func TestDeleteForgetsNameAndARN(t *testing.T) {
	f, s := newSecret(t)
	f.Delete("k")
	for _, id := range []string{"k", s.ARN} {
		if f.Secret(id) != nil {
			t.Errorf("Secret(%q) still found", id)
		}
		_, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		assertAPIError(t, err, &types.ResourceNotFoundException{}, "Secrets Manager can't find the specified secret.")
	}
}

// recordingTB keeps what a knob reports instead of failing the test.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestKnobsNamingAnUnknownSecretReportIt(t *testing.T) {
	rec := &recordingTB{TB: t}
	f := secretsfake.New(rec)
	f.StagePending("ghost", "v1", nil)
	if got := f.Snapshot("ghost"); got != "" {
		t.Errorf("Snapshot of an unknown secret: %q", got)
	}
	f.Delete("ghost")
	if len(rec.errs) != 3 {
		t.Fatalf("want 3 reports, got %q", rec.errs)
	}
	for _, e := range rec.errs {
		if !strings.Contains(e, `"ghost"`) || !strings.Contains(e, "add it with Add first") {
			t.Errorf("report does not name the secret and the fix: %q", e)
		}
	}
}

func TestTagResourceTagsWhatDescribeSecretReports(t *testing.T) {
	f, s := newSecret(t)
	tag := func(k, v string) error {
		_, err := f.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("k"), Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}})
		return err
	}
	if err := tag("flowkey:kms-key-creation", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := tag("flowkey:kms-key-creation", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := tag("app", "flowkey"); err != nil {
		t.Fatal(err)
	}
	out, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.ARN)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, t := range out.Tags {
		got = append(got, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	if want := []string{"app=flowkey", "flowkey:kms-key-creation=v2"}; !slices.Equal(got, want) {
		t.Errorf("tags = %q, want %q", got, want)
	}
	f.ReadOnly = true
	assertAPIError(t, tag("x", "y"), &types.InvalidRequestException{}, "test fake: operator commands never tag the secret")
	if s.Tags["x"] != "" || !slices.Contains(f.Writes(), secretsfake.OpTagResource) {
		t.Errorf("ReadOnly TagResource: tags %v, writes %v", s.Tags, f.Writes())
	}
}
