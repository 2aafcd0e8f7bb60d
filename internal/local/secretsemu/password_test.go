package secretsemu

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestGetRandomPassword(t *testing.T) {
	e := newEmu(t, Options{})
	get := func(in secretsmanager.GetRandomPasswordInput) string {
		t.Helper()
		out, err := e.client.GetRandomPassword(ctxT(t), &in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.RandomPassword)
	}
	classes := []string{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789", punctuation}
	for range 20 {
		pw := get(secretsmanager.GetRandomPasswordInput{})
		if len(pw) != 32 {
			t.Fatalf("default length %d, want 32", len(pw))
		}
		for _, c := range classes {
			if !strings.ContainsAny(pw, c) {
				t.Fatalf("%d-character password lacks one of %q, though RequireEachIncludedType is on by default", len(pw), c)
			}
		}
		if strings.Contains(pw, " ") {
			t.Fatal("a space without IncludeSpace")
		}
	}
	if pw := get(secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(4096), ExcludePunctuation: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludeCharacters: aws.String("abc0")}); len(pw) != 4096 ||
		strings.ContainsAny(pw, punctuation+classes[0]+"abc0 ") {
		t.Errorf("exclusions not honoured (length %d)", len(pw))
	}
	if pw := get(secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(200), ExcludeNumbers: aws.Bool(true), ExcludePunctuation: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludeLowercase: aws.Bool(true), IncludeSpace: aws.Bool(true)}); pw != strings.Repeat(" ", 200) {
		t.Errorf("only spaces allowed, got %q", pw)
	}
	if pw := get(secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(2), RequireEachIncludedType: aws.Bool(false)}); len(pw) != 2 {
		t.Errorf("length %d, want 2", len(pw))
	}
	bad := []struct {
		in   secretsmanager.GetRandomPasswordInput
		want string
	}{
		{secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(0)}, "PasswordLength is 0; use 1 to 4096."},
		{secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(4097)}, "use 1 to 4096"},
		{secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(3)}, "too short to include one character of each of the 4 included types"},
		{secretsmanager.GetRandomPasswordInput{ExcludeNumbers: aws.Bool(true), ExcludePunctuation: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludeLowercase: aws.Bool(true)}, "every character type is excluded"},
		{secretsmanager.GetRandomPasswordInput{ExcludeNumbers: aws.Bool(true), ExcludePunctuation: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludeCharacters: aws.String(classes[1])}, "every character type is excluded"},
	}
	for _, b := range bad {
		_, err := e.client.GetRandomPassword(ctxT(t), &b.in)
		wantAPIError(t, err, "InvalidParameterException", b.want)
	}
}
