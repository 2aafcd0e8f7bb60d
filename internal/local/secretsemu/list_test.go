package secretsemu

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fleet creates secrets a minute apart, so creation order is defined.
func fleet(t *testing.T, e *emu) {
	t.Helper()
	for _, s := range []struct {
		name, desc string
		tags       map[string]string
	}{
		{"flowkey/waba-1", "WhatsApp Flows key of WABA one", map[string]string{"app": "flowkey", "env": "prod"}},
		{"flowkey/waba-2", "WhatsApp Flows key of WABA two", map[string]string{"app": "flowkey", "env": "staging"}},
		{"flowkey/graph-token", "Graph system user token", map[string]string{"app": "flowkey"}},
		{"other/db", "database password", nil},
	} {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(s.name), Description: aws.String(s.desc), SecretString: aws.String("value of " + s.name)}
		for k, v := range s.tags {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		if _, err := e.client.CreateSecret(ctxT(t), in); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
	}
}

func names(list []types.SecretListEntry) []string {
	var out []string
	for _, s := range list {
		out = append(out, aws.ToString(s.Name))
	}
	return out
}

func TestListSecretsFilters(t *testing.T) {
	e := newEmu(t, Options{})
	fleet(t, e)
	f := func(key types.FilterNameStringType, values ...string) types.Filter {
		return types.Filter{Key: key, Values: values}
	}
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"no filter: every secret, oldest first", nil, []string{"flowkey/waba-1", "flowkey/waba-2", "flowkey/graph-token", "other/db"}},
		{"name is a case-sensitive prefix", []types.Filter{f("name", "flowkey/waba")}, []string{"flowkey/waba-1", "flowkey/waba-2"}},
		{"name, other case", []types.Filter{f("name", "Flowkey")}, nil},
		{"values of one filter are alternatives", []types.Filter{f("name", "other", "flowkey/graph")}, []string{"flowkey/graph-token", "other/db"}},
		{"negated name", []types.Filter{f("name", "!flowkey")}, []string{"other/db"}},
		{"tag-key prefix", []types.Filter{f("tag-key", "en")}, []string{"flowkey/waba-1", "flowkey/waba-2"}},
		{"negated tag-key: no such tag", []types.Filter{f("tag-key", "!env")}, []string{"flowkey/graph-token", "other/db"}},
		{"tag-value prefix", []types.Filter{f("tag-value", "stag")}, []string{"flowkey/waba-2"}},
		{"tag-value is case-sensitive", []types.Filter{f("tag-value", "Prod")}, nil},
		{"filters must all match", []types.Filter{f("tag-key", "app"), f("tag-value", "prod")}, []string{"flowkey/waba-1"}},
		{"description is a case-insensitive prefix", []types.Filter{f("description", "whatsapp flows")}, []string{"flowkey/waba-1", "flowkey/waba-2"}},
		{"all: words of every attribute, any case", []types.Filter{f("all", "Token")}, []string{"flowkey/graph-token"}},
		{"all: a value splits into words", []types.Filter{f("all", "dataBase/staging")}, []string{"flowkey/waba-2", "other/db"}},
		{"primary-region is the emulator's region", []types.Filter{f("primary-region", "us-east")}, []string{"flowkey/waba-1", "flowkey/waba-2", "flowkey/graph-token", "other/db"}},
		{"no secret is owned by a service", []types.Filter{f("owning-service", "rds")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.client.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{Filters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(out.SecretList); !slices.Equal(got, tc.want) {
				t.Errorf("ListSecrets = %v, want %v", got, tc.want)
			}
			if out.NextToken != nil {
				t.Errorf("NextToken = %q on the only page", *out.NextToken)
			}
		})
	}
}

func TestListSecretsEntries(t *testing.T) {
	e := newEmu(t, Options{})
	created := e.clock.Now()
	out, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
		Name: aws.String("flowkey/key"), Description: aws.String("d"), KmsKeyId: aws.String("alias/flowkey"),
		SecretString: aws.String("v"), ClientRequestToken: aws.String(token("k1")),
		Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("flowkey")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.client.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{})
	if err != nil || len(l.SecretList) != 1 {
		t.Fatalf("ListSecrets = %v, %v", l, err)
	}
	s := l.SecretList[0]
	if aws.ToString(s.ARN) != aws.ToString(out.ARN) || aws.ToString(s.Description) != "d" || aws.ToString(s.KmsKeyId) != "alias/flowkey" ||
		s.CreatedDate == nil || !s.CreatedDate.Equal(created) || s.DeletedDate != nil {
		t.Errorf("entry = %+v", s)
	}
	if len(s.Tags) != 1 || aws.ToString(s.Tags[0].Key) != "app" || aws.ToString(s.Tags[0].Value) != "flowkey" {
		t.Errorf("Tags = %+v", s.Tags)
	}
	if want := map[string][]string{token("k1"): {"AWSCURRENT"}}; !equalStages(s.SecretVersionsToStages, want) {
		t.Errorf("SecretVersionsToStages = %v, want %v", s.SecretVersionsToStages, want)
	}
}

func TestListSecretsPagesAndPlannedDeletion(t *testing.T) {
	e := newEmu(t, Options{})
	var want []string
	// Created in reverse order of their names: s6 first, s0 last.
	for i := 6; i >= 0; i-- {
		name := "s" + strconv.Itoa(i)
		e.create(t, name, "v")
		want = append(want, name)
		e.clock.Add(time.Second)
	}
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("s3")}); err != nil {
		t.Fatal(err)
	}
	live := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return n == "s3" })
	collect := func(in *secretsmanager.ListSecretsInput) (got []string, pages int) {
		p := secretsmanager.NewListSecretsPaginator(e.client, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.SecretList) > 3 {
				t.Errorf("a page of %d secrets, MaxResults 3", len(out.SecretList))
			}
			got = append(got, names(out.SecretList)...)
			pages++
		}
		return got, pages
	}
	if got, pages := collect(&secretsmanager.ListSecretsInput{MaxResults: aws.Int32(3)}); !slices.Equal(got, live) || pages != 2 {
		t.Errorf("paginator: %v in %d pages, want %v in 2", got, pages, live)
	}
	got, pages := collect(&secretsmanager.ListSecretsInput{MaxResults: aws.Int32(3), IncludePlannedDeletion: aws.Bool(true)})
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("with IncludePlannedDeletion: %v in %d pages, want %v in 3", got, pages, want)
	}
	rev := slices.Clone(live)
	slices.Reverse(rev)
	desc, _ := collect(&secretsmanager.ListSecretsInput{MaxResults: aws.Int32(3), SortOrder: types.SortOrderTypeDesc})
	if !slices.Equal(desc, rev) {
		t.Errorf("SortOrder desc: %v, want %v", desc, rev)
	}
	byName, _ := collect(&secretsmanager.ListSecretsInput{MaxResults: aws.Int32(3), SortBy: types.SortByTypeName})
	if !slices.Equal(byName, rev) {
		t.Errorf("SortBy name: %v, want %v", byName, rev)
	}
}

func TestListSecretsRejectsBadInput(t *testing.T) {
	e := newEmu(t, Options{})
	tooMany := make([]types.Filter, 11)
	for i := range tooMany {
		tooMany[i] = types.Filter{Key: "name", Values: []string{"x"}}
	}
	tests := []struct {
		name     string
		in       secretsmanager.ListSecretsInput
		code     string
		wantText string
	}{
		{"MaxResults 0", secretsmanager.ListSecretsInput{MaxResults: aws.Int32(0)}, "InvalidParameterException", "MaxResults is 0; use 1 to 100."},
		{"MaxResults 101", secretsmanager.ListSecretsInput{MaxResults: aws.Int32(101)}, "InvalidParameterException", "use 1 to 100"},
		{"a token from elsewhere", secretsmanager.ListSecretsInput{NextToken: aws.String("2")}, "InvalidNextTokenException", "did not come from a ListSecrets response"},
		{"a token of BatchGetSecretValue", secretsmanager.ListSecretsInput{NextToken: pageToken("BatchGetSecretValue", 2)}, "InvalidNextTokenException", "did not come from a ListSecrets response"},
		{"unknown filter key", secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "tag", Values: []string{"x"}}}}, "InvalidParameterException", `Filters[0].Key "tag" is not one of`},
		{"no values", secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "name"}}}, "InvalidParameterException", "Values has 0 entries; give 1 to 10"},
		{"value with a bad character", secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "name", Values: []string{"a*"}}}}, "InvalidParameterException", "is not a filter value"},
		{"11 filters", secretsmanager.ListSecretsInput{Filters: tooMany}, "InvalidParameterException", "Filters has 11 entries; the maximum is 10."},
		{"bad SortOrder", secretsmanager.ListSecretsInput{SortOrder: "up"}, "InvalidParameterException", `SortOrder "up"`},
		{"bad SortBy", secretsmanager.ListSecretsInput{SortBy: "size"}, "InvalidParameterException", `SortBy "size"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.ListSecrets(ctxT(t), &tc.in)
			wantAPIError(t, err, tc.code, tc.wantText)
		})
	}
}

func TestBatchGetSecretValueByID(t *testing.T) {
	e := newEmu(t, Options{})
	fleet(t, e)
	if _, err := e.client.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("other/db")}); err != nil {
		t.Fatal(err)
	}
	d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("flowkey/waba-2")})
	out, err := e.client.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{
		SecretIdList: []string{"flowkey/waba-1", aws.ToString(d.ARN), "missing", "other/db", "empty"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 2 || aws.ToString(out.SecretValues[0].SecretString) != "value of flowkey/waba-1" ||
		aws.ToString(out.SecretValues[1].Name) != "flowkey/waba-2" || !slices.Equal(out.SecretValues[1].VersionStages, []string{"AWSCURRENT"}) ||
		out.SecretValues[1].VersionId == nil || out.SecretValues[1].CreatedDate == nil {
		t.Errorf("SecretValues = %+v", out.SecretValues)
	}
	want := []struct{ id, code, msg string }{
		{"missing", "ResourceNotFoundException", msgSecretNotFound},
		{"other/db", "InvalidRequestException", msgMarkedForDeletion},
		{"empty", "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"},
	}
	if len(out.Errors) != len(want) {
		t.Fatalf("Errors = %+v, want %d", out.Errors, len(want))
	}
	for i, w := range want {
		got := out.Errors[i]
		if aws.ToString(got.SecretId) != w.id || aws.ToString(got.ErrorCode) != w.code || aws.ToString(got.Message) != w.msg {
			t.Errorf("Errors[%d] = %s %s %q, want %s %s %q", i, aws.ToString(got.SecretId), aws.ToString(got.ErrorCode), aws.ToString(got.Message), w.id, w.code, w.msg)
		}
	}
	if d, _ := e.client.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("flowkey/waba-1")}); d.LastAccessedDate == nil {
		t.Error("BatchGetSecretValue did not record the access, as GetSecretValue does")
	}
}

func TestBatchGetSecretValueByFilterPages(t *testing.T) {
	e := newEmu(t, Options{})
	var want []string
	for i := range 5 {
		name := "flowkey/waba-" + strconv.Itoa(i)
		e.create(t, name, "key "+strconv.Itoa(i))
		want = append(want, "key "+strconv.Itoa(i))
		e.clock.Add(time.Second)
	}
	e.create(t, "other", "x")
	p := secretsmanager.NewBatchGetSecretValuePaginator(e.client, &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: "name", Values: []string{"flowkey/"}}}, MaxResults: aws.Int32(2),
	})
	var got []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out.SecretValues {
			got = append(got, aws.ToString(v.SecretString))
		}
		if len(out.Errors) != 0 {
			t.Errorf("Errors = %+v", out.Errors)
		}
		pages++
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paginator: %v in %d pages, want %v in 3", got, pages, want)
	}
}

func TestBatchGetSecretValueRejectsBadInput(t *testing.T) {
	e := newEmu(t, Options{})
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = "s" + strconv.Itoa(i)
	}
	byName := []types.Filter{{Key: "name", Values: []string{"s"}}}
	tests := []struct {
		name string
		in   secretsmanager.BatchGetSecretValueInput
		code string
		want string
	}{
		{"neither", secretsmanager.BatchGetSecretValueInput{}, "InvalidParameterException", "You must include Filters or SecretIdList, but not both."},
		{"both", secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"}, Filters: byName}, "InvalidParameterException", "You must include Filters or SecretIdList, but not both."},
		{"21 ids", secretsmanager.BatchGetSecretValueInput{SecretIdList: ids}, "InvalidParameterException", "SecretIdList has 21 entries; the maximum is 20."},
		{"MaxResults with ids", secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a"}, MaxResults: aws.Int32(2)}, "InvalidParameterException", "page a request with Filters"},
		{"MaxResults 21", secretsmanager.BatchGetSecretValueInput{Filters: byName, MaxResults: aws.Int32(21)}, "InvalidParameterException", "MaxResults is 21; use 1 to 20."},
		{"a ListSecrets token", secretsmanager.BatchGetSecretValueInput{Filters: byName, NextToken: pageToken("ListSecrets", 1)}, "InvalidNextTokenException", "did not come from a BatchGetSecretValue response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.BatchGetSecretValue(ctxT(t), &tc.in)
			wantAPIError(t, err, tc.code, tc.want)
		})
	}
}
