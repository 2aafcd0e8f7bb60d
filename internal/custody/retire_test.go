package custody

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/fake/kmsfake"
)

func TestCheck(t *testing.T) {
	f := newFixture(t)
	ok := f.tagged("v1", kmsfake.KeyOptions{Private: rsaPool()[0]})
	if k, err := f.m.Check(ctx, ok.ARN, testSecret); err != nil || k.ID != ok.ID {
		t.Fatalf("Check = %+v, %v", k, err)
	}
	disabled := f.tagged("v2", kmsfake.KeyOptions{Private: rsaPool()[1], State: types.KeyStateDisabled})
	k, err := f.m.Check(ctx, disabled.ARN, testSecret)
	if u := asUnusable(t, err); k == nil || k.State != types.KeyStateDisabled || !strings.Contains(u.Fix, "aws kms enable-key --key-id "+disabled.ARN) {
		t.Errorf("Check = %+v, %v", k, err)
	}
	_, err = f.m.Check(ctx, "arn:aws:kms:us-east-1:111122223333:key/none", testSecret)
	if e := asError(t, err); !strings.Contains(e.Fix, "exists in the secret's account and region") {
		t.Errorf("missing key: %v", err)
	}
	other := "arn:aws:secretsmanager:eu-west-1:111122223333:secret:k-AbCdEf"
	if u := asUnusable(t, func() error { _, err := f.m.Check(ctx, ok.ARN, other); return err }()); !strings.Contains(u.Problem, "region us-east-1, but the secret is in account 111122223333, region eu-west-1") {
		t.Errorf("another region: %v", u)
	}
}

// TestRetire: each aliased key that is not kept ends pending deletion after
// the configured days, whatever state it was in; a key pending deletion,
// gone, or not tagged for the secret is left as it is; a second Retire
// changes nothing.
func TestRetire(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f := newFixture(t)
	f.kms.Now = func() time.Time { return now }
	keyOf := map[string]*kmsfake.Key{}
	for _, v := range []struct {
		token string
		state types.KeyState
	}{{"current", ""}, {"old", ""}, {"disabled", types.KeyStateDisabled}, {"pending", types.KeyStatePendingDeletion}} {
		keyOf[v.token] = f.tagged(v.token, kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault, State: v.state})
		f.kms.AddAlias(AliasName(testSecret, v.token), keyOf[v.token].ID)
	}
	foreign := f.kms.AddKey(kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
	f.kms.AddAlias(AliasName(testSecret, "hand-made"), foreign.ID)
	f.kms.AddAlias(AliasName(testSecret, "gone"), "00000000-0000-4000-8000-999999999999")
	f.kms.AddAlias("alias/someone-else", f.kms.AddKey(kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault}).ID)
	keep := func(id string) bool { return id == keyOf["current"].ID }

	done, err := f.m.Retire(ctx, testSecret, keep)
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"old", "disabled"} {
		if k := keyOf[token]; k.State != types.KeyStatePendingDeletion || !k.Deletion.Equal(now.Add(7*24*time.Hour)) {
			t.Errorf("%s: state %s, deletion %s", token, k.State, k.Deletion)
		}
	}
	if keyOf["current"].State != types.KeyStateEnabled || foreign.State != types.KeyStateEnabled {
		t.Error("a kept or foreign key was retired")
	}
	if f.kms.Calls(kmsfake.OpDisableKey) != 1 || f.kms.Calls(kmsfake.OpScheduleKeyDeletion) != 2 {
		t.Errorf("DisableKey %d, ScheduleKeyDeletion %d", f.kms.Calls(kmsfake.OpDisableKey), f.kms.Calls(kmsfake.OpScheduleKeyDeletion))
	}
	skipped := map[string]string{}
	for _, r := range done {
		skipped[strings.TrimPrefix(r.Alias, AliasPrefix(testSecret))] = r.Skipped
	}
	if skipped["pending"] != "already pending deletion" || skipped["gone"] != "the key no longer exists" || !strings.Contains(skipped["hand-made"], "not tagged") ||
		skipped["old"] != "" || len(done) != 5 {
		t.Errorf("report %v", skipped)
	}
	if !strings.Contains(f.logs.String(), `"msg":"custody key retired"`) || !strings.Contains(f.logs.String(), keyOf["old"].ARN) {
		t.Error("the retirement is not logged")
	}

	before := len(f.kms.Ops())
	if _, err := f.m.Retire(ctx, testSecret, keep); err != nil {
		t.Fatal(err)
	}
	for _, op := range f.kms.Ops()[before:] {
		if op == kmsfake.OpDisableKey || op == kmsfake.OpScheduleKeyDeletion {
			t.Errorf("a second Retire called %s", op)
		}
	}
}

func TestRetireReportsEveryFailureAndGoesOn(t *testing.T) {
	f := newFixture(t)
	for _, token := range []string{"a", "b"} {
		f.kms.AddAlias(AliasName(testSecret, token), f.tagged(token, kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault}).ID)
	}
	f.kms.FailNext(kmsfake.OpDisableKey, kmsfake.AccessDeniedException())
	done, err := f.m.Retire(ctx, testSecret, func(string) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "kms DisableKey") || len(done) != 2 || done[1].Err != nil || done[1].Key.ID == "" {
		t.Fatalf("Retire = %+v, %v", done, err)
	}
	if f.kms.Keys()[1].State != types.KeyStatePendingDeletion {
		t.Error("the failure of one key stopped the others")
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	a := f.tagged("a", kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
	b := f.tagged("b", kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault, State: types.KeyStatePendingDeletion})
	f.kms.AddAlias(AliasName(testSecret, "a"), a.ID)
	f.kms.AddAlias(AliasName(testSecret, "b"), b.ID)
	f.kms.AddAlias(AliasName(testSecret, "c"), "00000000-0000-4000-8000-999999999999")
	f.kms.AddAlias("alias/x", a.ID)
	f.kms.PageSize = 1
	got, err := f.m.List(ctx, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Key.ID != a.ID || got[1].Key.State != types.KeyStatePendingDeletion || !got[2].Gone || got[2].Err != nil {
		t.Errorf("List = %+v", got)
	}
}

func TestProveDecrypt(t *testing.T) {
	f := newFixture(t)
	k := f.tagged("v1", kmsfake.KeyOptions{Private: rsaPool()[0]})
	if err := f.m.ProveDecrypt(ctx, k.ARN, nil, k.PublicKey()); err != nil {
		t.Fatal(err)
	}
	err := f.m.ProveDecrypt(ctx, k.ARN, nil, &rsaPool()[1].PublicKey)
	if e := asError(t, err); e.Op != "Decrypt" || code(err) != codeInvalidCipher {
		t.Errorf("another key's public key: %v", err)
	}
	f.kms.Update(func() { k.State = types.KeyStateDisabled })
	if err := f.m.ProveDecrypt(ctx, k.ARN, nil, k.PublicKey()); code(err) != codeDisabled || !strings.Contains(err.Error(), "is disabled") {
		t.Errorf("disabled key: %v", err)
	}
}

func TestDecrypter(t *testing.T) {
	f := newFixture(t)
	k := f.tagged("v1", kmsfake.KeyOptions{Private: rsaPool()[0]})
	var waits []time.Duration
	d := NewDecrypter(f.kms, DecrypterOptions{Logger: f.m.opts.Logger, Sleep: func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }})
	aes := []byte("0123456789abcdef")
	block, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.PublicKey(), aes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := d.Decrypt(ctx, k.ARN, block); err != nil || !bytes.Equal(out, aes) {
		t.Fatalf("Decrypt = %v", err)
	}

	f.kms.FailNext(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
	if out, err := d.Decrypt(ctx, k.ARN, block); err != nil || !bytes.Equal(out, aes) || len(waits) != 1 || waits[0] > 50*time.Millisecond {
		t.Fatalf("throttled once: %v, waits %v", err, waits)
	}
	f.kms.FailNext(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
	f.kms.FailNext(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
	if _, err := d.Decrypt(ctx, k.ARN, block); !IsThrottled(err) || asError(t, err).Throttled != 1 {
		t.Fatalf("throttled twice: %v", err)
	}
	// A minute left and an hour's wait: no time for a retry, and no chance
	// that a loaded machine runs the deadline out before the first request.
	slow := NewDecrypter(f.kms, DecrypterOptions{Logger: f.m.opts.Logger, RetryWait: time.Hour, Sleep: func(_ context.Context, w time.Duration) error { waits = append(waits, w); return nil }})
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	f.kms.FailNext(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
	calls := f.kms.Calls(kmsfake.OpDecrypt)
	if _, err := slow.Decrypt(short, k.ARN, block); !IsThrottled(err) || f.kms.Calls(kmsfake.OpDecrypt) != calls+1 {
		t.Errorf("no time for a retry: %v, %d calls", err, f.kms.Calls(kmsfake.OpDecrypt)-calls)
	}

	before := f.logs.String()
	other, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &rsaPool()[1].PublicKey, aes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decrypt(ctx, k.ARN, other); code(err) != codeInvalidCipher || f.logs.String() != before {
		t.Errorf("another key's block: %v; logged %q", err, strings.TrimPrefix(f.logs.String(), before))
	}
	f.kms.Update(func() { k.State = types.KeyStateDisabled })
	if _, err := d.Decrypt(ctx, k.ARN, block); code(err) != codeDisabled || !strings.Contains(f.logs.String(), `"code":"DisabledException"`) {
		t.Errorf("disabled key: %v; logs %s", err, f.logs.String())
	}
	if strings.Contains(f.logs.String(), "0123456789abcdef") {
		t.Error("plaintext logged")
	}
}
