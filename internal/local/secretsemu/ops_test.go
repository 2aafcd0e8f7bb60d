package secretsemu

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestCreateSecret(t *testing.T) {
	e := newEmu(t, Options{})
	arn, v1 := e.create(t, "flowkey/existing", "one")
	tests := []struct {
		name     string
		in       secretsmanager.CreateSecretInput
		wantCode string // "" for success
		wantMsg  string
		wantVer  string // expected VersionId, "" to skip, "-" for none
	}{
		{name: "string value", in: secretsmanager.CreateSecretInput{Name: aws.String("a/b_c+d=e.f@g-h"), SecretString: aws.String("s"), ClientRequestToken: aws.String(token("a"))}, wantVer: token("a")},
		{name: "binary value", in: secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte{0, 1, 2}}},
		{name: "no value yet", in: secretsmanager.CreateSecretInput{Name: aws.String("empty")}, wantVer: "-"},
		{name: "retried request", in: secretsmanager.CreateSecretInput{Name: aws.String("flowkey/existing"), SecretString: aws.String("one"), ClientRequestToken: aws.String(token("flowkey/existing-v1"))}, wantVer: v1},
		{name: "name taken", in: secretsmanager.CreateSecretInput{Name: aws.String("flowkey/existing"), SecretString: aws.String("two")},
			wantCode: "ResourceExistsException", wantMsg: "The operation failed because the secret flowkey/existing already exists."},
		{name: "name taken, same token, other value", in: secretsmanager.CreateSecretInput{Name: aws.String("flowkey/existing"), SecretString: aws.String("two"), ClientRequestToken: aws.String(token("flowkey/existing-v1"))},
			wantCode: "ResourceExistsException", wantMsg: "already exists"},
		{name: "bad name", in: secretsmanager.CreateSecretInput{Name: aws.String("has space")}, wantCode: "InvalidParameterException", wantMsg: `Invalid name "has space"`},
		{name: "both values", in: secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("s"), SecretBinary: []byte("b")},
			wantCode: "InvalidParameterException", wantMsg: "You can't specify both a binary secret value and a string secret value"},
		{name: "short token", in: secretsmanager.CreateSecretInput{Name: aws.String("short"), SecretString: aws.String("s"), ClientRequestToken: aws.String("tok-1")},
			wantCode: "InvalidParameterException", wantMsg: "ClientRequestToken is 5 characters; it must be 32 to 64"},
		{name: "value too large", in: secretsmanager.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(strings.Repeat("x", 65537))},
			wantCode: "InvalidParameterException", wantMsg: "SecretString is 65537 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.client.CreateSecret(ctxT(t), &tc.in)
			if tc.wantCode != "" {
				wantAPIError(t, err, tc.wantCode, tc.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("CreateSecret: %v", err)
			}
			if aws.ToString(out.Name) != aws.ToString(tc.in.Name) {
				t.Errorf("Name = %q", aws.ToString(out.Name))
			}
			want := `^arn:aws:secretsmanager:us-east-1:123456789012:secret:` + regexp.QuoteMeta(aws.ToString(tc.in.Name)) + `-[A-Za-z0-9]{6}$`
			if !regexp.MustCompile(want).MatchString(aws.ToString(out.ARN)) {
				t.Errorf("ARN = %q, want %s", aws.ToString(out.ARN), want)
			}
			switch tc.wantVer {
			case "":
				if len(aws.ToString(out.VersionId)) != 36 {
					t.Errorf("VersionId = %q, want a UUID", aws.ToString(out.VersionId))
				}
			case "-":
				if out.VersionId != nil {
					t.Errorf("VersionId = %q, want none for a secret without value", *out.VersionId)
				}
			default:
				if aws.ToString(out.VersionId) != tc.wantVer {
					t.Errorf("VersionId = %q, want %q", aws.ToString(out.VersionId), tc.wantVer)
				}
			}
		})
	}
	if got := e.value(t, arn, "AWSCURRENT"); got != "one" {
		t.Errorf("failed creates changed the existing secret: %q", got)
	}
	bin, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	if err != nil || !bytes.Equal(bin.SecretBinary, []byte{0, 1, 2}) || bin.SecretString != nil {
		t.Errorf("binary round trip: %v, %v, %v", err, bin.SecretBinary, bin.SecretString)
	}
}

func TestDescribeSecret(t *testing.T) {
	e := newEmu(t, Options{Region: "eu-west-1", AccountID: "111122223333"})
	created := e.clock.Now()
	out, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String("flowkey/key"), SecretString: aws.String("v"), Description: aws.String("the business key"),
		KmsKeyId: aws.String("alias/flowkey"), ClientRequestToken: aws.String(token("k1")),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	partial := strings.TrimSuffix(arn, arn[len(arn)-7:])
	for _, id := range []string{"flowkey/key", arn, partial} {
		t.Run(id, func(t *testing.T) {
			d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(d.ARN) != arn || aws.ToString(d.Name) != "flowkey/key" || aws.ToString(d.Description) != "the business key" || aws.ToString(d.KmsKeyId) != "alias/flowkey" {
				t.Errorf("identity fields: %+v", d)
			}
			if !strings.HasPrefix(arn, "arn:aws:secretsmanager:eu-west-1:111122223333:secret:flowkey/key-") {
				t.Errorf("ARN %q ignores Region/AccountID", arn)
			}
			if d.RotationEnabled != nil || d.RotationLambdaARN != nil || d.RotationRules != nil || d.LastRotatedDate != nil || d.NextRotationDate != nil {
				t.Errorf("rotation fields set on a secret that never rotated: %+v", d)
			}
			if d.CreatedDate == nil || !d.CreatedDate.Equal(created) || d.LastChangedDate == nil || d.DeletedDate != nil || d.LastAccessedDate != nil {
				t.Errorf("dates: created %v changed %v deleted %v accessed %v", d.CreatedDate, d.LastChangedDate, d.DeletedDate, d.LastAccessedDate)
			}
			if want := map[string][]string{token("k1"): {"AWSCURRENT"}}; !equalStages(d.VersionIdsToStages, want) {
				t.Errorf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
			}
		})
	}
	e.clock.Add(30 * time.Hour)
	e.value(t, arn, "AWSCURRENT")
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if want := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC); d.LastAccessedDate == nil || !d.LastAccessedDate.Equal(want) {
		t.Errorf("LastAccessedDate = %v, want the day of the last GetSecretValue, %v", d.LastAccessedDate, want)
	}
	for _, id := range []string{"flowkey/nope", arn + "x", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:flowkey"} {
		_, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}
}

func equalStages(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		v, w = slices.Sorted(slices.Values(v)), slices.Sorted(slices.Values(w))
		if !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestGetSecretValue(t *testing.T) {
	e := newEmu(t, Options{})
	arn, v1 := e.create(t, "s", "one")
	v2 := token("v2")
	e.put(t, arn, v2, "two")
	e.put(t, arn, token("v3"), "three", "CUSTOM")
	tests := []struct {
		name         string
		versionID    *string
		stage        *string
		want         string
		wantVersion  string
		wantCode     string
		wantContains string
	}{
		{name: "default is AWSCURRENT", want: "two", wantVersion: v2},
		{name: "AWSPREVIOUS", stage: aws.String("AWSPREVIOUS"), want: "one", wantVersion: v1},
		{name: "custom label", stage: aws.String("CUSTOM"), want: "three"},
		{name: "by version id", versionID: aws.String(v1), want: "one"},
		{name: "id and stage agree", versionID: aws.String(v2), stage: aws.String("AWSCURRENT"), want: "two"},
		{name: "id and stage disagree", versionID: aws.String(v1), stage: aws.String("AWSCURRENT"),
			wantCode: "InvalidRequestException", wantContains: "You provided a VersionStage that is not associated to the provided VersionId."},
		{name: "unknown stage", stage: aws.String("NOPE"),
			wantCode: "ResourceNotFoundException", wantContains: "Secrets Manager can't find the specified secret value for staging label: NOPE"},
		{name: "unknown version", versionID: aws.String(token("nope")),
			wantCode: "ResourceNotFoundException", wantContains: "for VersionId: " + token("nope")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: tc.versionID, VersionStage: tc.stage})
			if tc.wantCode != "" {
				wantAPIError(t, err, tc.wantCode, tc.wantContains)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.SecretString) != tc.want || aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "s" || out.CreatedDate == nil {
				t.Errorf("got %+v", out)
			}
			if tc.wantVersion != "" && aws.ToString(out.VersionId) != tc.wantVersion {
				t.Errorf("VersionId = %s, want %s", aws.ToString(out.VersionId), tc.wantVersion)
			}
		})
	}
	_, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	if _, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("novalue")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("novalue")})
	wantAPIError(t, err, "ResourceNotFoundException", "for staging label: AWSCURRENT")
}

func TestPutSecretValueStagesAndIdempotency(t *testing.T) {
	e := newEmu(t, Options{})
	arn, v1 := e.create(t, "s", "one")
	v2, v3 := token("v2"), token("v3")

	out, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(v2), SecretString: aws.String("two")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != v2 || !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) || aws.ToString(out.ARN) != arn {
		t.Errorf("PutSecretValue = %+v", out)
	}
	if want := map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}; !equalStages(e.stages(t, arn), want) {
		t.Fatalf("stages %v, want %v", e.stages(t, arn), want)
	}

	t.Run("same token, same value: no-op", func(t *testing.T) {
		out, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(v2), SecretString: aws.String("two"), VersionStages: []string{"OTHER"}})
		if err != nil || aws.ToString(out.VersionId) != v2 {
			t.Fatalf("retry: %v %+v", err, out)
		}
		if want := map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}; !equalStages(e.stages(t, arn), want) {
			t.Errorf("a retried request changed labels: %v", e.stages(t, arn))
		}
	})
	t.Run("same token, different value: ResourceExistsException", func(t *testing.T) {
		_, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(v2), SecretString: aws.String("hunter2-secret")})
		wantAPIError(t, err, "ResourceExistsException", "already exists with a different value")
		if strings.Contains(err.Error(), "hunter2-secret") {
			t.Errorf("the error quotes the secret value: %v", err)
		}
		if got := e.value(t, arn, "AWSCURRENT"); got != "two" {
			t.Errorf("value changed to %q", got)
		}
	})
	t.Run("AWSCURRENT again: AWSPREVIOUS follows, old AWSPREVIOUS is dropped", func(t *testing.T) {
		e.put(t, arn, v3, "three")
		if want := map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}}; !equalStages(e.stages(t, arn), want) {
			t.Errorf("stages %v, want %v (v1 has no label left)", e.stages(t, arn), want)
		}
	})
	t.Run("custom labels move without touching AWSCURRENT", func(t *testing.T) {
		e.put(t, arn, token("v4"), "four", "AWSPENDING", "BLUE")
		e.put(t, arn, token("v5"), "five", "BLUE")
		want := map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}, token("v4"): {"AWSPENDING"}, token("v5"): {"BLUE"}}
		if !equalStages(e.stages(t, arn), want) {
			t.Errorf("stages %v, want %v", e.stages(t, arn), want)
		}
		if got := e.value(t, arn, "AWSCURRENT"); got != "three" {
			t.Errorf("AWSCURRENT = %q", got)
		}
	})
	t.Run("no value", func(t *testing.T) {
		_, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token("v6"))})
		wantAPIError(t, err, "InvalidParameterException", "set SecretString or SecretBinary")
	})
	t.Run("empty VersionStages", func(t *testing.T) {
		_, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token("v7")), SecretString: aws.String("x"), VersionStages: []string{}})
		wantAPIError(t, err, "InvalidParameterException", "VersionStages has 0 labels")
	})
	t.Run("unknown secret", func(t *testing.T) {
		_, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("nope"), ClientRequestToken: aws.String(token("v8")), SecretString: aws.String("x")})
		wantAPIError(t, err, "ResourceNotFoundException", "can't find the specified secret")
	})
}

// TestUpdateSecretVersionStage is long for its table: one case per way a
// label moves or AWS refuses to move it.
func TestUpdateSecretVersionStage(t *testing.T) {
	type call struct {
		stage, remove, move string // version names: v1 (current), v2, v3 (previous chain below)
	}
	tests := []struct {
		name     string
		call     call
		want     map[string][]string
		wantCode string
		wantMsg  string
	}{
		{name: "move AWSCURRENT: AWSPREVIOUS follows", call: call{"AWSCURRENT", "v3", "v1"},
			want: map[string][]string{"v1": {"AWSCURRENT"}, "v3": {"AWSPREVIOUS"}, "v4": {"AWSPENDING"}}},
		{name: "roll back to AWSPREVIOUS", call: call{"AWSCURRENT", "v3", "v2"},
			want: map[string][]string{"v2": {"AWSCURRENT"}, "v3": {"AWSPREVIOUS"}, "v4": {"AWSPENDING"}}},
		{name: "finishSecret: AWSCURRENT to the pending version", call: call{"AWSCURRENT", "v3", "v4"},
			want: map[string][]string{"v3": {"AWSPREVIOUS"}, "v4": {"AWSCURRENT", "AWSPENDING"}}},
		{name: "AWSCURRENT without RemoveFromVersionId", call: call{"AWSCURRENT", "", "v1"},
			wantCode: "InvalidParameterException", wantMsg: "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version v3, so you must explicitly reference that version in RemoveFromVersionId."},
		{name: "RemoveFromVersionId not the holder", call: call{"AWSCURRENT", "v2", "v1"},
			wantCode: "InvalidParameterException", wantMsg: "if you specify RemoveFromVersionId, it must be set to the version that currently has the staging label AWSCURRENT"},
		{name: "custom label onto a version", call: call{"BLUE", "", "v1"},
			want: map[string][]string{"v1": {"BLUE"}, "v2": {"AWSPREVIOUS"}, "v3": {"AWSCURRENT"}, "v4": {"AWSPENDING"}}},
		{name: "AWSPENDING held elsewhere needs RemoveFromVersionId", call: call{"AWSPENDING", "", "v1"},
			wantCode: "InvalidParameterException", wantMsg: "Staging label AWSPENDING is currently attached to version v4"},
		{name: "clear a stuck rotation: remove AWSPENDING", call: call{"AWSPENDING", "v4", ""},
			want: map[string][]string{"v2": {"AWSPREVIOUS"}, "v3": {"AWSCURRENT"}}},
		{name: "AWSCURRENT can't be removed outright", call: call{"AWSCURRENT", "v3", ""},
			wantCode: "InvalidParameterException", wantMsg: "You can't remove the staging label AWSCURRENT"},
		{name: "move to the holder is a no-op", call: call{"AWSCURRENT", "v3", "v3"},
			want: map[string][]string{"v2": {"AWSPREVIOUS"}, "v3": {"AWSCURRENT"}, "v4": {"AWSPENDING"}}},
		{name: "unknown version", call: call{"BLUE", "", "nope"},
			wantCode: "ResourceNotFoundException", wantMsg: "for VersionId: nope"},
		{name: "neither id", call: call{"BLUE", "", ""},
			wantCode: "InvalidParameterException", wantMsg: "Set MoveToVersionId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmu(t, Options{})
			ids := map[string]string{"v1": token("v1"), "v2": token("v2"), "v3": token("v3"), "v4": token("v4"), "nope": token("nope")}
			names := map[string]string{}
			for k, v := range ids {
				names[v] = k
			}
			if _, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("1"), ClientRequestToken: aws.String(ids["v1"])}); err != nil {
				t.Fatal(err)
			}
			e.put(t, "s", ids["v2"], "2")
			e.put(t, "s", ids["v3"], "3")
			e.put(t, "s", ids["v4"], "4", "AWSPENDING")
			in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("s"), VersionStage: aws.String(tc.call.stage)}
			if tc.call.remove != "" {
				in.RemoveFromVersionId = aws.String(ids[tc.call.remove])
			}
			if tc.call.move != "" {
				in.MoveToVersionId = aws.String(ids[tc.call.move])
			}
			before := e.stages(t, "s")
			_, err := e.client.UpdateSecretVersionStage(ctxT(t), in)
			if tc.wantCode != "" {
				msg := tc.wantMsg
				for k, v := range ids {
					msg = strings.ReplaceAll(msg, "version "+k, "version "+v)
					msg = strings.ReplaceAll(msg, "VersionId: "+k, "VersionId: "+v)
				}
				wantAPIError(t, err, tc.wantCode, msg)
				if after := e.stages(t, "s"); !equalStages(after, before) {
					t.Errorf("a rejected call changed labels: %v → %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for id, st := range e.stages(t, "s") {
				got[names[id]] = st
			}
			if !equalStages(got, tc.want) {
				t.Errorf("stages %v, want %v", got, tc.want)
			}
		})
	}
}

func TestListSecretVersionIds(t *testing.T) {
	e := newEmu(t, Options{})
	arn, v1 := e.create(t, "s", "1")
	e.put(t, arn, token("v2"), "2")
	e.put(t, arn, token("v3"), "3") // v1 loses its last label: deprecated
	out, err := e.client.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionIDs(out.Versions); !slices.Equal(got, []string{token("v2"), token("v3")}) || aws.ToString(out.ARN) != arn || out.NextToken != nil {
		t.Errorf("versions %v next %v", got, out.NextToken)
	}
	out, err = e.client.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(true)})
	if err != nil || !slices.Equal(versionIDs(out.Versions), []string{v1, token("v2"), token("v3")}) {
		t.Errorf("IncludeDeprecated: %v %v", err, versionIDs(out.Versions))
	}
	var pages [][]string
	var next *string
	for {
		out, err := e.client.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(2), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, versionIDs(out.Versions))
		if next = out.NextToken; next == nil {
			break
		}
	}
	if len(pages) != 2 || len(pages[0]) != 2 || len(pages[1]) != 1 {
		t.Errorf("pages %v, want 2+1", pages)
	}
	_, err = e.client.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("s"), NextToken: aws.String("garbage")})
	wantAPIError(t, err, "InvalidNextTokenException", "garbage")
}

func versionIDs(vs []types.SecretVersionsListEntry) []string {
	var ids []string
	for _, v := range vs {
		ids = append(ids, aws.ToString(v.VersionId))
	}
	return ids
}

func TestDeleteSecret(t *testing.T) {
	e := newEmu(t, Options{Invoker: InvokerFunc(func(context.Context, string, []byte) ([]byte, error) {
		t.Error("a deleted secret was rotated")
		return nil, nil
	})})
	arn, _ := e.create(t, "soft", "v")
	out, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), RecoveryWindowInDays: aws.Int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	wantDeletion := e.clock.Now().Add(7 * 24 * time.Hour)
	if out.DeletionDate == nil || !out.DeletionDate.Equal(wantDeletion) || aws.ToString(out.Name) != "soft" {
		t.Errorf("DeleteSecret = %+v, want deletion at %v", out, wantDeletion)
	}
	d, err := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("soft")})
	if err != nil || d.DeletedDate == nil || !d.DeletedDate.Equal(wantDeletion) {
		t.Errorf("DescribeSecret of a secret pending deletion: %v %+v", err, d)
	}
	const marked = "You can't perform this operation on the secret because it was marked for deletion."
	calls := map[string]func() error{
		"GetSecretValue": func() error {
			_, err := e.client.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("soft")})
			return err
		},
		"PutSecretValue": func() error {
			_, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("soft"), SecretString: aws.String("x")})
			return err
		},
		"UpdateSecretVersionStage": func() error {
			_, err := e.client.UpdateSecretVersionStage(ctxT(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("soft"), VersionStage: aws.String("X"), MoveToVersionId: aws.String(token("soft-v1"))})
			return err
		},
		"RotateSecret": func() error {
			_, err := e.client.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("soft")})
			return err
		},
		"CancelRotateSecret": func() error {
			_, err := e.client.CancelRotateSecret(ctxT(t), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("soft")})
			return err
		},
		// A second scheduled deletion; a forced one removes the secret
		// (TestForcedDeleteOfAScheduledSecretRemovesIt).
		"DeleteSecret": func() error {
			_, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("soft"), RecoveryWindowInDays: aws.Int64(10)})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantAPIError(t, call(), "InvalidRequestException", marked)
		})
	}
	_, err = e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("soft")})
	wantAPIError(t, err, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")

	e.create(t, "hard", "v")
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("hard"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("hard")})
	wantAPIError(t, err, "ResourceNotFoundException", "can't find the specified secret")
	e.create(t, "hard", "again") // the name is free at once

	bad := []struct {
		in   secretsmanager.DeleteSecretInput
		want string
	}{
		{secretsmanager.DeleteSecretInput{SecretId: aws.String("hard"), RecoveryWindowInDays: aws.Int64(6)}, "must be between 7 and 30 days"},
		{secretsmanager.DeleteSecretInput{SecretId: aws.String("hard"), RecoveryWindowInDays: aws.Int64(31)}, "must be between 7 and 30 days"},
		{secretsmanager.DeleteSecretInput{SecretId: aws.String("hard"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)}, "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."},
	}
	for _, b := range bad {
		_, err := e.client.DeleteSecret(ctxT(t), &b.in)
		wantAPIError(t, err, "InvalidParameterException", b.want)
	}
	if got := e.value(t, "hard", "AWSCURRENT"); got != "again" {
		t.Errorf("rejected deletes changed the secret: %q", got)
	}
	out, err = e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("hard")})
	if err != nil || !out.DeletionDate.Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("default recovery window: %v %+v", err, out)
	}
}

func TestTheFirstValueOfAnEmptySecretBecomesCurrentWhateverItsLabels(t *testing.T) {
	e := newEmu(t, Options{})
	if _, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	tok := "e0d1db6c-1e5b-5247-af7f-df9e462ab3b5"
	out, err := e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("empty"), ClientRequestToken: aws.String(tok),
		SecretString: aws.String("seed"), VersionStages: []string{"flowkey-seed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out.VersionStages, "AWSCURRENT") || !slices.Contains(out.VersionStages, "flowkey-seed") {
		t.Errorf("first version got %v, want AWSCURRENT and flowkey-seed", out.VersionStages)
	}
	// A second value with explicit labels does not take AWSCURRENT.
	out, err = e.client.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("empty"), ClientRequestToken: aws.String("f0d1db6c-1e5b-5247-af7f-df9e462ab3b5"),
		SecretString: aws.String("other"), VersionStages: []string{"flowkey-seed2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(out.VersionStages, "AWSCURRENT") {
		t.Errorf("second version took AWSCURRENT: %v", out.VersionStages)
	}
}
