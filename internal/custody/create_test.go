package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/fake/kmsfake"
)

func TestAliasNames(t *testing.T) {
	p := AliasPrefix(testSecret)
	if !strings.HasPrefix(p, "alias/flowkey/") || len(p) != len("alias/flowkey/")+16+1 || !strings.HasSuffix(p, "/") {
		t.Errorf("AliasPrefix = %q", p)
	}
	if AliasName(testSecret, "v1") != p+"v1" || AliasPrefix(testSecret+"x") == p {
		t.Error("AliasName is not the prefix and the version, or two secrets share a prefix")
	}
}

func TestEnsureCreatesOneTaggedKeyAfterRecordingIt(t *testing.T) {
	f := newFixture(t)
	req := f.request("v1")
	record := req.Record
	req.Record = func(ctx context.Context) error {
		if f.kms.Calls(kmsfake.OpCreateKey) != 0 {
			t.Error("the secret was tagged after CreateKey")
		}
		return record(ctx)
	}
	got, err := f.m.Ensure(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	k := f.kms.Key(got.Key.ID)
	if got.How != Created || f.records != 1 || f.recorded != "v1" || len(f.kms.Keys()) != 1 {
		t.Fatalf("How %s, records %d, keys %d", got.How, f.records, len(f.kms.Keys()))
	}
	if k.Tags[TagSecretARN] != testSecret || k.Tags[TagRotationToken] != "v1" || len(k.Tags) != 2 || !k.Bypass {
		t.Errorf("tags %v, bypass %v", k.Tags, k.Bypass)
	}
	if f.kms.Aliases()[AliasName(testSecret, "v1")] != k.ID {
		t.Errorf("aliases %v", f.kms.Aliases())
	}
	if !bytes.Equal(got.PublicDER, k.Public()) || got.Key.ARN != k.ARN || got.Key.State != types.KeyStateEnabled {
		t.Error("Ensured is not the created key")
	}
	if !strings.Contains(k.Description, testSecret) || !strings.Contains(k.Description, "v1") {
		t.Errorf("description %q", k.Description)
	}
	if f.kms.Calls(kmsfake.OpListKeys) != 0 {
		t.Error("a first attempt scanned the account's keys")
	}
}

// TestKeyPolicy: the account administers (kms:PutKeyPolicy keeps the key
// manageable) but cannot use the key; the rotator manages and proves but
// cannot change the policy; the endpoint only decrypts; Decrypt is bound
// to RSAES_OAEP_SHA_256.
func TestKeyPolicy(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.DecryptRoleARNs = []string{endpoint, "arn:aws:iam::111122223333:role/other"} })
	raw, err := f.m.Policy(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Sid       string
			Principal struct{ AWS any }
			Action    []string
			Condition struct {
				StringEquals map[string]string
				ArnEquals    map[string][]string
			}
		}
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	// Every statement is the account's; a role is one by aws:PrincipalArn
	// (a role named as principal would be stored as its unique ID, lost
	// when the role is re-created), and the account statement has none.
	const account = "arn:aws:iam::111122223333:root"
	byPrincipal := map[string][]string{}
	for _, s := range doc.Statement {
		if s.Principal.AWS != account {
			t.Errorf("statement %s has principal %v, want the account with aws:PrincipalArn", s.Sid, s.Principal.AWS)
		}
		principals := s.Condition.ArnEquals["aws:PrincipalArn"]
		if len(principals) == 0 {
			principals = []string{account}
		}
		for _, p := range principals {
			byPrincipal[p] = append(byPrincipal[p], s.Action...)
		}
		if slices.Contains(s.Action, "kms:Decrypt") && s.Condition.StringEquals["kms:EncryptionAlgorithm"] != EncryptionAlgorithm {
			t.Errorf("statement %s allows Decrypt without the algorithm condition", s.Sid)
		}
	}
	root := byPrincipal[account]
	for _, use := range []string{"kms:Decrypt", "kms:Encrypt", "kms:CreateGrant", "kms:ReEncryptFrom", "kms:*"} {
		if slices.Contains(root, use) || slices.Contains(byPrincipal[endpoint], use) && use != "kms:Decrypt" {
			t.Errorf("%s granted beyond the rotator and the decrypt roles", use)
		}
	}
	if !slices.Contains(root, "kms:PutKeyPolicy") || !slices.Contains(root, "kms:CancelKeyDeletion") {
		t.Errorf("the account cannot manage the key: %v", root)
	}
	if want := []string{"kms:Decrypt"}; !slices.Equal(byPrincipal[endpoint], want) || !slices.Equal(byPrincipal["arn:aws:iam::111122223333:role/other"], want) {
		t.Errorf("decrypt roles: %v", byPrincipal)
	}
	rot := byPrincipal[rotatorRole]
	for _, a := range []string{"kms:DescribeKey", "kms:GetPublicKey", "kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:CreateAlias", "kms:ListResourceTags"} {
		if !slices.Contains(rot, a) {
			t.Errorf("rotator lacks %s", a)
		}
	}
	if slices.Contains(rot, "kms:PutKeyPolicy") {
		t.Error("the rotator may change the policy")
	}
	if _, err := f.m.Policy("flowkey/whatsapp-flows-key"); err == nil {
		t.Error("a secret name gave a policy")
	}
}

func TestCanCreateNamesTheMissingVariables(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.RotatorRoleARN, o.DecryptRoleARNs = "", nil })
	_, err := f.m.Ensure(ctx, f.request("v1"))
	e := asError(t, err)
	if !strings.Contains(e.Problem, EnvRotatorRoleARN+" and "+EnvDecryptRoleARNs+" not set") || !strings.Contains(e.Fix, `"secrets_manager"`) {
		t.Errorf("error = %v", err)
	}
	if len(f.kms.Keys()) != 0 {
		t.Error("a key was created without a policy")
	}
}

func TestEnsureAgainUsesTheAliasedKey(t *testing.T) {
	f := newFixture(t)
	first, err := f.m.Ensure(ctx, f.request("v1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.m.Ensure(ctx, f.request("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if again.How != FoundByAlias || again.Key.ID != first.Key.ID || f.records != 1 || f.kms.Calls(kmsfake.OpCreateKey) != 1 {
		t.Errorf("again: How %s, same %v, records %d, CreateKey %d", again.How, again.Key.ID == first.Key.ID, f.records, f.kms.Calls(kmsfake.OpCreateKey))
	}
}

// TestCrashBetweenCreateKeyAndCreateAlias: the next attempt finds the key
// by its tags (the secret's record says a creation may have happened) and
// aliases it: exactly one key.
func TestCrashBetweenCreateKeyAndCreateAlias(t *testing.T) {
	f := newFixture(t)
	f.kms.CrashAfter(kmsfake.OpCreateKey)
	if !f.ensureCrashing(t, f.request("v1")) {
		t.Fatal("no crash")
	}
	if len(f.kms.Aliases()) != 0 || len(f.kms.Keys()) != 1 || f.recorded != "v1" {
		t.Fatalf("after the crash: %d aliases, %d keys, recorded %q", len(f.kms.Aliases()), len(f.kms.Keys()), f.recorded)
	}
	f.tagged("v0", kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault}) // another version's key is not taken
	got, err := f.m.Ensure(ctx, f.request("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.How != FoundByTags || got.Key.ID != f.kms.Keys()[0].ID || f.kms.Calls(kmsfake.OpCreateKey) != 1 || f.records != 1 {
		t.Errorf("How %s, CreateKey %d, records %d", got.How, f.kms.Calls(kmsfake.OpCreateKey), f.records)
	}
	if f.kms.Aliases()[AliasName(testSecret, "v1")] != got.Key.ID || len(liveIDs(f.kms)) != 1 {
		t.Errorf("aliases %v, live RSA keys %v", f.kms.Aliases(), liveIDs(f.kms))
	}
}

// TestCrashBeforeCreateKey: the record is written, no key exists; the next
// attempt scans, finds nothing, and creates the one key.
func TestCrashBeforeCreateKey(t *testing.T) {
	f := newFixture(t)
	f.kms.FailNext(kmsfake.OpCreateKey, errors.New("connection reset"))
	if _, err := f.m.Ensure(ctx, f.request("v1")); err == nil {
		t.Fatal("no error")
	}
	got, err := f.m.Ensure(ctx, f.request("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.How != Created || len(f.kms.Keys()) != 1 || f.kms.Calls(kmsfake.OpListKeys) != 1 {
		t.Errorf("How %s, keys %d, scans %d", got.How, len(f.kms.Keys()), f.kms.Calls(kmsfake.OpListKeys))
	}
}

func TestAScanThatFailsCreatesNothing(t *testing.T) {
	f := newFixture(t)
	f.recorded = "v1"
	f.kms.FailAlways(kmsfake.OpListKeys, kmsfake.AccessDeniedException())
	_, err := f.m.Ensure(ctx, f.request("v1"))
	if err == nil || !strings.Contains(err.Error(), "no key is created while that is unknown") || len(f.kms.Keys()) != 0 {
		t.Errorf("err = %v, keys %d", err, len(f.kms.Keys()))
	}
}

func TestARecordThatFailsCreatesNothing(t *testing.T) {
	f := newFixture(t)
	req := f.request("v1")
	req.Record = func(context.Context) error { return errors.New("AccessDeniedException: secretsmanager:TagResource") }
	_, err := f.m.Ensure(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "record the key creation on the secret (tag flowkey:kms-key-creation=v1) before creating the key") {
		t.Errorf("err = %v", err)
	}
	if f.kms.Calls(kmsfake.OpCreateKey) != 0 {
		t.Error("CreateKey ran without the record")
	}
}

// TestConcurrentAttemptsLeaveOneLiveKey: an attempt whose CreateAlias loses
// to another attempt's retires its own key and uses the alias's.
func TestConcurrentAttemptsLeaveOneLiveKey(t *testing.T) {
	f := newFixture(t)
	winner := f.tagged("v1", kmsfake.KeyOptions{Private: rsaPool()[3]})
	f.kms.AddAlias(AliasName(testSecret, "v1"), winner.ID)
	// The other attempt aliased its key just after this one looked.
	f.kms.FailNext(kmsfake.OpDescribeKey, &types.NotFoundException{Message: aws.String("Alias is not found.")})
	got, err := f.m.Ensure(ctx, f.request("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Key.ID != winner.ID || !slices.Equal(liveIDs(f.kms), []string{winner.ID}) {
		t.Errorf("got %s, live %v, want only %s", got.Key.ID, liveIDs(f.kms), winner.ID)
	}
	if !strings.Contains(f.logs.String(), "another attempt of the same version aliased its own key first") {
		t.Error("the retirement of the losing key is not logged")
	}
}

func TestEnsureRefusesAnAliasedKeyItCannotUse(t *testing.T) {
	other := "arn:aws:secretsmanager:us-east-1:111122223333:secret:other-AbCdEf"
	for name, tc := range map[string]struct {
		key  kmsfake.KeyOptions
		tags map[string]string
		want string
	}{
		"disabled":         {kmsfake.KeyOptions{State: types.KeyStateDisabled}, nil, "is disabled, so it cannot decrypt"},
		"pending deletion": {kmsfake.KeyOptions{State: types.KeyStatePendingDeletion}, nil, "is pending deletion"},
		"RSA_3072":         {kmsfake.KeyOptions{Spec: types.KeySpecRsa3072}, nil, "is KeySpec RSA_3072, KeyUsage ENCRYPT_DECRYPT"},
		"signing key":      {kmsfake.KeyOptions{Usage: types.KeyUsageTypeSignVerify}, nil, "KeyUsage SIGN_VERIFY"},
		"another account":  {kmsfake.KeyOptions{Account: "444455556666"}, nil, "is in account 444455556666, region us-east-1, but the secret is in account 111122223333"},
		"another secret's": {kmsfake.KeyOptions{}, map[string]string{TagSecretARN: other, TagRotationToken: "v1"}, "names a key that is not tagged"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if tc.key.Spec == "" && tc.key.Usage == "" {
				tc.key.Private = rsaPool()[0]
			}
			var k *kmsfake.Key
			if tc.tags != nil {
				tc.key.Tags = tc.tags
				k = f.kms.AddKey(tc.key)
			} else {
				k = f.tagged("v1", tc.key)
			}
			f.kms.AddAlias(AliasName(testSecret, "v1"), k.ID)
			_, err := f.m.Ensure(ctx, f.request("v1"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if f.kms.Calls(kmsfake.OpCreateKey) != 0 || f.records != 0 {
				t.Error("a second key was created for the version")
			}
		})
	}
}

// TestSweepRetiresTheUnaliasedKeyOfAnAbandonedVersion: a version whose
// createSecret crashed before aliasing was then abandoned; the next
// version's createSecret retires that key, unless a version names it.
func TestSweepRetiresTheUnaliasedKeyOfAnAbandonedVersion(t *testing.T) {
	for _, kept := range []bool{false, true} {
		f := newFixture(t)
		orphan := f.tagged("v0", kmsfake.KeyOptions{Private: rsaPool()[2]})
		f.recorded = "v0"
		req := f.request("v1")
		req.Keep = func(id string) bool { return kept && id == orphan.ID }
		if _, err := f.m.Ensure(ctx, req); err != nil {
			t.Fatal(err)
		}
		if retired := orphan.State == types.KeyStatePendingDeletion; retired == kept {
			t.Errorf("kept %v: orphan state %s", kept, orphan.State)
		}
		if len(f.kms.Keys()) != 2 || f.recorded != "v1" {
			t.Errorf("keys %d, recorded %q", len(f.kms.Keys()), f.recorded)
		}
	}
}

func TestThrottlingIsRetriedWithBackoffThenReported(t *testing.T) {
	f := newFixture(t)
	f.kms.FailNext(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
	f.kms.FailNext(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
	if _, err := f.m.Ensure(ctx, f.request("v1")); err != nil {
		t.Fatal(err)
	}
	if len(f.sleeps) != 2 || f.sleeps[1] < f.sleeps[0]/2 || f.sleeps[0] > 250*1e6 || len(f.kms.Keys()) != 1 {
		t.Errorf("sleeps %v, keys %d", f.sleeps, len(f.kms.Keys()))
	}

	f = newFixture(t)
	f.kms.FailAlways(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
	_, err := f.m.Ensure(ctx, f.request("v1"))
	e := asError(t, err)
	if e.Op != "CreateKey" || e.Throttled != 9 || !IsThrottled(err) || !strings.Contains(e.Problem, "throttled by KMS (ThrottlingException) 9 times") ||
		!strings.Contains(e.Fix, "RSA request quota is shared") || len(f.kms.Keys()) != 0 {
		t.Errorf("error = %v (throttled %d), keys %d", err, e.Throttled, len(f.kms.Keys()))
	}

	// Within a deadline shorter than the next wait, it gives up at once.
	// The wait is an hour and the deadline a minute, so a loaded machine
	// cannot run the deadline out before the first request.
	f = newFixture(t, func(o *Options) { o.Backoff, o.MaxBackoff = time.Hour, time.Hour })
	f.kms.FailAlways(kmsfake.OpDescribeKey, kmsfake.ThrottlingException())
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = f.m.Ensure(short, f.request("v1"))
	if e := asError(t, err); e.Throttled != 1 || len(f.sleeps) != 0 {
		t.Errorf("throttled %d, sleeps %v", e.Throttled, f.sleeps)
	}
}
