package rotation

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/fake/secretsfake"
)

// stepCrashing runs one step and reports whether it crashed (kmsfake.Crash):
// the function died right after a KMS call did its work.
func (h *kmsHarness) stepCrashing(t *testing.T, step, token string) (crashed bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(kmsfake.Crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	if err := h.step(step, token); err != nil {
		t.Logf("%s: %v", step, err)
	}
	return false
}

// finish runs the rest of a rotation whose createSecret just succeeded.
func (h *kmsHarness) finish(t *testing.T, token string) {
	t.Helper()
	for _, s := range []string{StepSet, StepTest, StepFinish} {
		if err := h.step(s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	h.assertInvariant(t)
}

// TestCrashesInCreateSecretLeaveExactlyOneKey: a createSecret that dies
// between CreateKey and CreateAlias, between CreateAlias and PutSecretValue,
// or whose PutSecretValue fails, is repeated by Secrets Manager; the repeat
// stores the key the first attempt made, and no other key exists.
func TestCrashesInCreateSecretLeaveExactlyOneKey(t *testing.T) {
	for name, fault := range map[string]func(h *kmsHarness) (crash bool){
		"crash between CreateKey and CreateAlias":      func(h *kmsHarness) bool { h.kms.CrashAfter(kmsfake.OpCreateKey); return true },
		"crash between CreateAlias and PutSecretValue": func(h *kmsHarness) bool { h.kms.CrashAfter(kmsfake.OpCreateAlias); return true },
		"PutSecretValue fails": func(h *kmsHarness) bool {
			h.sm.FailNext(secretsfake.OpPutSecretValue, errors.New("InternalServiceError"))
			return false
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newKMSHarness(t, configKMS(phones...), phones...)
			h.sm.StagePending(h.arn, "v1", nil)
			crash := fault(h)
			if crashed := h.stepCrashing(t, StepCreate, "v1"); crashed != crash {
				t.Fatalf("crashed = %v, want %v", crashed, crash)
			}
			if h.kms.Calls(kmsfake.OpCreateKey) != 1 || len(h.kms.Keys()) != 1 {
				t.Fatalf("after the fault: %d CreateKey, %d keys", h.kms.Calls(kmsfake.OpCreateKey), len(h.kms.Keys()))
			}
			if err := h.step(StepCreate, "v1"); err != nil {
				t.Fatalf("repeated createSecret: %v", err)
			}
			if h.kms.Calls(kmsfake.OpCreateKey) != 1 || h.liveKeys() != 1 || h.kmsKey(t, StagePending).ID != h.kms.Keys()[0].ID {
				t.Errorf("%d CreateKey, %d live keys; the pending version must name the first attempt's key", h.kms.Calls(kmsfake.OpCreateKey), h.liveKeys())
			}
			if h.kms.Aliases()[custody.AliasName(h.arn, "v1")] != h.kms.Keys()[0].ID {
				t.Errorf("aliases %v", h.kms.Aliases())
			}
			h.finish(t, "v1")
		})
	}
}

// TestThrottlingDuringARotation: KMS throttling is retried with backoff;
// when it persists, the step fails with a clear error and no key is
// stranded: the repeat finds the state it left and makes one key.
func TestThrottlingDuringARotation(t *testing.T) {
	t.Run("createSecret, then it passes", func(t *testing.T) {
		h := newKMSHarness(t, configKMS(phones...), phones...)
		h.kms.FailNext(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
		h.kms.FailNext(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
		if err := h.rotate(t, "v1"); err != nil {
			t.Fatal(err)
		}
		if h.sleeps != 2 || h.liveKeys() != 1 {
			t.Errorf("%d backoffs, %d live keys", h.sleeps, h.liveKeys())
		}
	})
	t.Run("createSecret, persistently", func(t *testing.T) {
		h := newKMSHarness(t, configKMS(phones...), phones...)
		h.kms.FailAlways(kmsfake.OpCreateKey, kmsfake.ThrottlingException())
		h.sm.StagePending(h.arn, "v1", nil)
		err := h.step(StepCreate, "v1")
		var ce *custody.Error
		if !errors.As(err, &ce) || !custody.IsThrottled(err) || !strings.Contains(err.Error(), "throttled by KMS (ThrottlingException)") || !strings.Contains(err.Error(), "fix: retry later") {
			t.Fatalf("err = %v", err)
		}
		if len(h.kms.Keys()) != 0 || h.sm.Secret(h.arn).Values["v1"] != nil {
			t.Fatal("a throttled createSecret left a key or a value")
		}
		h.kms.FailAlways(kmsfake.OpCreateKey, nil)
		if err := h.step(StepCreate, "v1"); err != nil {
			t.Fatal(err)
		}
		h.finish(t, "v1")
		if h.liveKeys() != 1 {
			t.Errorf("%d live keys", h.liveKeys())
		}
	})
	t.Run("testSecret's proof, persistently", func(t *testing.T) {
		h := newKMSHarness(t, configKMS(phones...), phones...)
		if err := h.rotate(t, "v1"); err != nil {
			t.Fatal(err)
		}
		current := h.doc(t, StageCurrent).Key.FingerprintSHA256
		h.kms.FailAlways(kmsfake.OpDecrypt, kmsfake.ThrottlingException())
		err := h.rotate(t, "v2")
		var se *StepError
		if !errors.As(err, &se) || se.Step != StepTest || !strings.Contains(err.Error(), "throttled by KMS") {
			t.Fatalf("err = %v", err)
		}
		for _, p := range phones {
			if h.g.HeldFingerprint(p) != current {
				t.Errorf("%s is not back on the current key", p)
			}
		}
		h.assertInvariant(t)
		h.kms.FailAlways(kmsfake.OpDecrypt, nil)
		for _, s := range []string{StepCreate, StepSet, StepTest, StepFinish} {
			if err := h.step(s, "v2"); err != nil {
				t.Fatalf("retry %s: %v", s, err)
			}
		}
		if h.liveKeys() != 2 {
			t.Errorf("%d live keys after two rotations", h.liveKeys())
		}
	})
}

// TestAKeyThatCannotDecrypt: a pending key disabled or scheduled for
// deletion behind flowkey's back is never uploaded (setSecret) and fails
// testSecret, which rolls back, with an error that names the key and the fix.
func TestAKeyThatCannotDecrypt(t *testing.T) {
	for name, tc := range map[string]struct {
		state types.KeyState
		want  string
	}{
		"disabled":         {types.KeyStateDisabled, "is disabled, so it cannot decrypt"},
		"pending deletion": {types.KeyStatePendingDeletion, "cancel the deletion with `aws kms cancel-key-deletion"},
	} {
		t.Run(name+" before setSecret", func(t *testing.T) {
			h := newKMSHarness(t, configKMS(phones...), phones...)
			if err := h.rotate(t, "v1"); err != nil {
				t.Fatal(err)
			}
			h.g.ResetCounts()
			h.sm.StagePending(h.arn, "v2", nil)
			if err := h.step(StepCreate, "v2"); err != nil {
				t.Fatal(err)
			}
			k := h.kmsKey(t, StagePending)
			h.kms.Update(func() { k.State = tc.state })
			err := h.step(StepSet, "v2")
			if err == nil || !strings.Contains(err.Error(), "the AWSPENDING key cannot decrypt, so nothing was uploaded") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
			if up, _ := h.g.Totals(); up != 0 {
				t.Errorf("%d uploads of a key that cannot decrypt", up)
			}
		})
		t.Run(name+" before testSecret", func(t *testing.T) {
			h := newKMSHarness(t, configKMS(phones...), phones...)
			if err := h.rotate(t, "v1"); err != nil {
				t.Fatal(err)
			}
			current := h.doc(t, StageCurrent).Key.FingerprintSHA256
			h.sm.StagePending(h.arn, "v2", nil)
			for _, s := range []string{StepCreate, StepSet} {
				if err := h.step(s, "v2"); err != nil {
					t.Fatal(err)
				}
			}
			k := h.kmsKey(t, StagePending)
			h.kms.Update(func() { k.State = tc.state })
			err := h.step(StepTest, "v2")
			var se *StepError
			if !errors.As(err, &se) || len(se.Failed) != len(phones) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v", err)
			}
			for _, p := range phones {
				if h.g.HeldFingerprint(p) != current {
					t.Errorf("%s was not rolled back", p)
				}
			}
			h.assertInvariant(t)
		})
	}
}

// TestAKeyFlowkeyMustNotUse: an alias pointed at a key of the wrong spec or
// usage, and a version naming a key in another account, are refused with
// an error that says why; no second key is made.
func TestAKeyFlowkeyMustNotUse(t *testing.T) {
	for name, opts := range map[string]kmsfake.KeyOptions{
		"SIGN_VERIFY key":       {Usage: types.KeyUsageTypeSignVerify, Private: rsaPool()[0]},
		"SYMMETRIC_DEFAULT key": {Spec: types.KeySpecSymmetricDefault},
	} {
		t.Run(name, func(t *testing.T) {
			h := newKMSHarness(t, configKMS(phones...), phones...)
			opts.Tags = map[string]string{custody.TagSecretARN: h.arn, custody.TagRotationToken: "v1"}
			h.kms.AddAlias(custody.AliasName(h.arn, "v1"), h.kms.AddKey(opts).ID)
			h.sm.StagePending(h.arn, "v1", nil)
			err := h.step(StepCreate, "v1")
			if err == nil || !strings.Contains(err.Error(), "flowkey needs RSA_2048, ENCRYPT_DECRYPT") || h.kms.Calls(kmsfake.OpCreateKey) != 0 {
				t.Fatalf("err = %v, CreateKey %d", err, h.kms.Calls(kmsfake.OpCreateKey))
			}
		})
	}
	t.Run("key in another account", func(t *testing.T) {
		h := newKMSHarness(t, configKMS(phones...), phones...)
		if err := h.rotate(t, "v1"); err != nil {
			t.Fatal(err)
		}
		h.sm.StagePending(h.arn, "v2", nil)
		if err := h.step(StepCreate, "v2"); err != nil {
			t.Fatal(err)
		}
		// A hand edit points the pending version at another account's key.
		s := h.sm.Secret(h.arn)
		*s.Values["v2"] = strings.ReplaceAll(*s.Values["v2"], ":111122223333:key/", ":444455556666:key/")
		h.g.ResetCounts()
		err := h.step(StepSet, "v2")
		if err == nil || !strings.Contains(err.Error(), "names a KMS key in account 444455556666, region us-east-1, but the secret is in account 111122223333") {
			t.Fatalf("err = %v", err)
		}
		if up, _ := h.g.Totals(); up != 0 {
			t.Errorf("%d uploads", up)
		}
	})
	t.Run("no custody roles configured", func(t *testing.T) {
		h := newKMSHarness(t, configKMS(phones...), phones...)
		m, err := custody.New(h.kms, custody.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h.rot.opts.Custody = m
		h.sm.StagePending(h.arn, "v1", nil)
		err = h.step(StepCreate, "v1")
		if err == nil || !strings.Contains(err.Error(), "CUSTODY_KEY_ROTATOR_ROLE_ARN and CUSTODY_KEY_DECRYPT_ROLE_ARNS not set") || len(h.kms.Keys()) != 0 {
			t.Fatalf("err = %v", err)
		}
	})
}
