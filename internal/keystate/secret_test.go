package keystate

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(f *fixture)
		id      string
		wantErr string // the whole error; "" for success
		enabled bool
	}{
		{name: "by name, rotation on", id: "flowkey/key", enabled: true},
		{name: "by ARN", id: "arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key-AbCdEf", enabled: true},
		{name: "rotation never configured", id: "flowkey/key", setup: func(f *fixture) { f.s.RotationEnabled = nil }},
		{name: "rotation turned off", id: "flowkey/key", setup: func(f *fixture) { f.s.RotationEnabled = aws.Bool(false) }},
		{name: "call fails", id: "flowkey/key", setup: func(f *fixture) { f.sm.FailNext(secretsfake.OpDescribeSecret, errBoom) },
			wantErr: "describe secret flowkey/key: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.sm.Put(f.s, "v0", doc(t, nil, pairs[0]), StageCurrent)
			f.sm.Put(f.s, "v1", nil, StagePending)
			if tc.setup != nil {
				tc.setup(f)
			}
			sec, err := f.r.Describe(context.Background(), tc.id)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || sec != nil {
					t.Fatalf("got %v, %v; want error %q", sec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"v0": {StageCurrent}, "v1": {StagePending}}
			if sec.ARN != f.arn || sec.RotationEnabled != tc.enabled || !maps.EqualFunc(sec.Stages, want, equalStrings) {
				t.Errorf("got %+v, want ARN %s, RotationEnabled %v, Stages %v", sec, f.arn, tc.enabled, want)
			}
		})
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestDescribeOfAMissingSecretWrapsNotFound(t *testing.T) {
	f := newFixture(t, Options{})
	_, err := f.r.Describe(context.Background(), "flowkey/nope")
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.HasPrefix(err.Error(), "describe secret flowkey/nope: ") {
		t.Errorf("got %v, want describe secret flowkey/nope: wrapping ResourceNotFoundException", err)
	}
}

func TestDescribeWithoutAnARNKeepsTheIDAskedFor(t *testing.T) {
	r, err := New(stubSecrets{describe: &secretsmanager.DescribeSecretOutput{}}, graphfake.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := r.Describe(context.Background(), "flowkey/key")
	if err != nil || sec.ARN != "flowkey/key" || sec.RotationEnabled {
		t.Errorf("got %+v, %v; want ARN flowkey/key, rotation off", sec, err)
	}
}

func TestVersionWith(t *testing.T) {
	// Two versions carrying one label cannot happen in AWS; the answer
	// must still be the same on every call.
	stages := func() map[string][]string {
		return map[string][]string{
			"v-c": {StageCurrent},
			"v-a": {StagePrevious, StageCurrent},
			"v-b": {StagePending, StageCurrent},
			"v-d": {},
			"v-e": {StagePending},
		}
	}
	tests := []struct{ label, want string }{
		{StageCurrent, "v-a"},
		{StagePending, "v-b"},
		{StagePrevious, "v-a"},
		{"FLOWKEY_VERIFIED", ""},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.label, func(t *testing.T) {
			for i := range 200 {
				// A new map each time, so Go's iteration order varies.
				s := &Secret{Stages: stages()}
				if got := s.VersionWith(tc.label); got != tc.want {
					t.Fatalf("call %d: VersionWith(%q) = %q, want %q", i, tc.label, got, tc.want)
				}
			}
		})
	}
	if got := (&Secret{}).VersionWith(StageCurrent); got != "" {
		t.Errorf("no versions: got %q", got)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, version, stage string
		wantKey              bool
		wantErr              string // a prefix of the error; "" for success
		wantAs               func(error) bool
	}{
		{name: "current by label", stage: StageCurrent, wantKey: true},
		{name: "by version and label", version: "v0", stage: StageCurrent, wantKey: true},
		{name: "config only", version: "v-cfg", stage: StagePrevious},
		{name: "by version, whatever its labels", version: "v-unlabelled", wantKey: true},
		{name: "label on another version", version: "v0", stage: StagePending,
			wantErr: "read AWSPENDING version v0: ", wantAs: isNotFound},
		{name: "no value yet", version: "v1", stage: StagePending,
			wantErr: "read AWSPENDING version v1: ", wantAs: isNotFound},
		{name: "no such label", stage: "FLOWKEY_VERIFIED",
			wantErr: "read FLOWKEY_VERIFIED version : ", wantAs: isNotFound},
		{name: "invalid document", version: "v-bad", stage: "BAD",
			wantErr: "BAD version v-bad of arn:aws:secretsmanager:us-east-1:111122223333:secret:flowkey/key-AbCdEf: ", wantAs: isDocError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.sm.Put(f.s, "v0", doc(t, nil, pairs[0]), StageCurrent)
			f.sm.Put(f.s, "v1", nil, StagePending)
			f.sm.Put(f.s, "v-cfg", doc(t, nil, nil), StagePrevious)
			f.sm.Put(f.s, "v-unlabelled", doc(t, nil, pairs[0]))
			f.sm.Put(f.s, "v-bad", aws.String(`{"schema_version":1,"config":{"phone_number_ids":["1"]},"extra":1}`), "BAD")
			d, err := f.r.Load(context.Background(), f.arn, tc.version, tc.stage)
			if tc.wantErr != "" {
				if err == nil || d != nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !tc.wantAs(err) {
					t.Fatalf("got %v, %v; want an error starting %q", d, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (d.Key != nil) != tc.wantKey {
				t.Errorf("key %v, want a key: %v", d.Key, tc.wantKey)
			}
			if d.Key != nil && d.Key.Pair().Fingerprint() != pairs[0].Fingerprint() {
				t.Errorf("read key %s, want %s", d.Key, pairs[0])
			}
		})
	}
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

func isDocError(err error) bool {
	var de *secretdoc.Error
	return errors.As(err, &de)
}

func TestLoadDocumentOfAnEmptyPendingVersionIsNotFound(t *testing.T) {
	f := newFixture(t, Options{})
	f.sm.Put(f.s, "v0", doc(t, nil, nil), StageCurrent)
	f.sm.StagePending(f.arn, "v1", nil)
	_, err := f.r.Load(context.Background(), f.arn, "v1", StagePending)
	if !isNotFound(err) {
		t.Fatalf("want ResourceNotFoundException in the chain, got %v", err)
	}
}

func TestLoadErrorsThatTheFakeCannotMake(t *testing.T) {
	tests := []struct {
		name    string
		sm      stubSecrets
		want    string
		wantDoc bool // the error wraps *secretdoc.Error
	}{
		{"binary secret", stubSecrets{get: &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v9")}},
			"read AWSCURRENT version v9: SecretString: is empty (the version holds SecretBinary or nothing); fix: store the flowkey JSON document as SecretString", true},
		{"call fails", stubSecrets{err: errBoom}, "read AWSCURRENT version v9: boom", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.sm, graphfake.New(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Load(context.Background(), "flowkey/key", "v9", StageCurrent)
			if err == nil || err.Error() != tc.want || isDocError(err) != tc.wantDoc {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDescribeReadsTheTags(t *testing.T) {
	f := newFixture(t, Options{})
	f.sm.Put(f.s, "v0", doc(t, nil, pairs[0]), StageCurrent)
	sec, err := f.r.Describe(context.Background(), "flowkey/key")
	if err != nil || sec.Tags != nil {
		t.Fatalf("untagged: %v, tags %v", err, sec.Tags)
	}
	f.s.Tags["flowkey:kms-key-creation"] = "v0"
	sec, err = f.r.Describe(context.Background(), "flowkey/key")
	if err != nil || len(sec.Tags) != 1 || sec.Tags["flowkey:kms-key-creation"] != "v0" {
		t.Fatalf("tags = %v, %v", sec.Tags, err)
	}
}
