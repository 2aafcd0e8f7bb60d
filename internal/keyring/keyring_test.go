package keyring_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flowkey/flowkey/internal/fake/secretsfake"
	"github.com/flowkey/flowkey/internal/keyring"
)

func TestNewNeedsAClientAndASecret(t *testing.T) {
	if _, err := keyring.New(nil, keyring.Options{SecretID: "x"}); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := keyring.New(secretsfake.New(t), keyring.Options{}); err == nil {
		t.Fatal("empty SecretID accepted")
	}
}

func TestLoadsTheThreeLabelsAndReadsEachVersionOnce(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v-current", p[0], secretsfake.StageCurrent)
	f.put("v-pending", p[1], secretsfake.StagePending)
	f.put("v-previous", p[2], secretsfake.StagePrevious)
	f.put("v-old", p[3], "FLOWKEY_VERIFIED") // no live label: not loaded
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.wantCalls(1, 3)
	f.mustDecrypt(block(t, p[1]), keyring.LabelPending)
	f.mustDecrypt(block(t, p[2]), keyring.LabelPrevious)
	f.wantCalls(1, 3)
	// Three TTL refreshes: DescribeSecret each time, never GetSecretValue again.
	for range 3 {
		f.clock.Advance(ttl)
		res := f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
		if !res.Refreshed {
			t.Fatal("a decrypt after the TTL did not refresh")
		}
	}
	f.wantCalls(4, 3)
	// p[3] is in no live label: a miss (one refresh), then ErrNoKey.
	f.clock.Advance(floor)
	res, err := f.decrypt(block(t, p[3]))
	if !errors.Is(err, keyring.ErrNoKey) || res.Plaintext != nil || res.Label != "" {
		t.Fatalf("got %+v, %v; want ErrNoKey", res, err)
	}
	if res.RSAOps != 3 || !res.Refreshed {
		t.Fatalf("a miss tried %d keys, refreshed %v; want 3 keys and a refresh", res.RSAOps, res.Refreshed)
	}
	f.wantCalls(5, 3)
	f.assertNoKeyMaterial()
}

func TestAVersionHoldingTwoLabelsIsOneKeyUnderItsBestLabel(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	// After finishSecret, AWSPENDING may stay on the new current version.
	f.put("v2", p[1], secretsfake.StageCurrent, secretsfake.StagePending)
	f.put("v1", p[0], secretsfake.StagePrevious)
	res := f.mustDecrypt(block(t, p[1]), keyring.LabelCurrent)
	if res.VersionID != "v2" || res.RSAOps != 1 {
		t.Fatalf("got %+v", res)
	}
	f.wantCalls(1, 2)
}

func TestLabelsMovingArePickedUpWithoutReadingAgain(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.put("v2", p[1], secretsfake.StagePending) // setSecret has uploaded p[1]
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.mustDecrypt(block(t, p[1]), keyring.LabelPending)

	// finishSecret: the pending version is promoted, the old one demoted.
	f.sm.Put(f.s, "v2", f.s.Values["v2"], secretsfake.StageCurrent)
	f.sm.Put(f.s, "v1", f.s.Values["v1"], secretsfake.StagePrevious)
	f.clock.Advance(ttl)
	f.mustDecrypt(block(t, p[1]), keyring.LabelCurrent)
	f.mustDecrypt(block(t, p[0]), keyring.LabelPrevious)
	f.wantCalls(2, 2)

	// A second rotation: v3 becomes current, v2 previous, v1 leaves every label.
	f.put("v3", p[2], secretsfake.StagePending, secretsfake.StageCurrent)
	f.sm.Put(f.s, "v2", f.s.Values["v2"], secretsfake.StagePrevious)
	f.clock.Advance(ttl)
	f.mustDecrypt(block(t, p[2]), keyring.LabelCurrent)
	f.mustDecrypt(block(t, p[1]), keyring.LabelPrevious)
	f.clock.Advance(floor)
	if _, err := f.decrypt(block(t, p[0])); !errors.Is(err, keyring.ErrNoKey) {
		t.Fatalf("a key that left every label still decrypts: %v", err)
	}
	f.wantCalls(4, 3)
}

func TestVersionsWithoutAKeyAreSkippedAndLoggedByVersionID(t *testing.T) {
	const canary = "CANARY-FROM-A-BROKEN-VERSION"
	tests := []struct {
		name    string
		value   *string
		logged  string // part of the log line
		readsOf int    // GetSecretValue calls of the version over three refreshes
	}{
		{"not JSON", aws.String("-----BEGIN PRIVATE KEY-----\n" + canary), `"fields":["document"]`, 1},
		{"a key field that is not PEM", aws.String(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]},"key":{"private_key_pem":"` + canary + `","public_key_pem":"x","fingerprint_sha256":"x","created_at":"2026-11-25T10:00:00Z","generated_by":"imported"}}`),
			`"fields":["key.private_key_pem","key.public_key_pem","key.fingerprint_sha256"]`, 1},
		{"configuration only", aws.String(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`), "configuration-only version", 1},
		{"no value yet (between RotateSecret and createSecret)", nil, "no value yet", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := pairs()
			f.put("v-good", p[0], secretsfake.StageCurrent)
			f.sm.Put(f.s, "v-bad", tc.value, secretsfake.StagePending)
			for range 3 {
				f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
				f.clock.Advance(ttl)
			}
			if _, get := f.calls(); get != 1+tc.readsOf {
				t.Fatalf("GetSecretValue %d times, want %d", get, 1+tc.readsOf)
			}
			var line string
			for l := range strings.Lines(f.logs.String()) {
				if strings.Contains(l, `"version_id":"v-bad"`) {
					line = l
					break
				}
			}
			if !strings.Contains(line, tc.logged) || !strings.Contains(line, `"label":"AWSPENDING"`) {
				t.Fatalf("no log line names v-bad with %s:\n%s", tc.logged, f.logs.String())
			}
			if strings.Contains(f.logs.String(), canary) {
				t.Fatal("the logs quote the broken version's content")
			}
			f.assertNoKeyMaterial()
		})
	}
}

func TestAPendingVersionIsReadOnceItHoldsAValue(t *testing.T) {
	f := newFixture(t)
	p := pairs()
	f.put("v1", p[0], secretsfake.StageCurrent)
	f.sm.Put(f.s, "v2", nil, secretsfake.StagePending) // RotateSecret has run, createSecret not yet
	f.mustDecrypt(block(t, p[0]), keyring.LabelCurrent)
	f.s.Values["v2"] = doc(t, p[1]) // createSecret stores the pending key
	f.clock.Advance(floor)
	res := f.mustDecrypt(block(t, p[1]), keyring.LabelPending)
	if !res.Refreshed {
		t.Fatal("the miss did not refresh")
	}
}

func TestEmptyRing(t *testing.T) {
	f := newFixture(t)
	f.sm.Put(f.s, "v1", aws.String(`{"schema_version":1,"config":{"phone_number_ids":["106540352242922"]}}`), secretsfake.StageCurrent)
	if err := f.ring.Refresh(context.Background()); !errors.Is(err, keyring.ErrEmpty) {
		t.Fatalf("Refresh: %v", err)
	}
	res, err := f.decrypt(block(t, pairs()[0]))
	if !errors.Is(err, keyring.ErrEmpty) || res.RSAOps != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
	// The miss waited out the floor and looked once more; the
	// configuration-only version is not read again.
	f.wantCalls(2, 1)
	if got := time.Duration(f.slept.Load()); got != floor {
		t.Errorf("waited %s, want one floor", got)
	}
}
