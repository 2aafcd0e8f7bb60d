package operator

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/flowkey/flowkey/internal/custody"
	"github.com/flowkey/flowkey/internal/fake/kmsfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

var kmsPrivates = sync.OnceValue(func() []*rsa.PrivateKey {
	out := make([]*rsa.PrivateKey, 2)
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

type kmsState struct {
	kms                    *kmsfake.Fake
	cur, prev, old, orphan *kmsfake.Key
}

// kmsStandard is the state after three rotations in KMS custody:
// AWSCURRENT and AWSPREVIOUS name KMS keys, every number holds the current
// one, the first rotation's key is pending deletion, and an enabled key
// that no version names still carries the secret's alias (left for the
// next finishSecret to retire).
func kmsStandard(t *testing.T, h *harness) *kmsState {
	t.Helper()
	st := &kmsState{kms: kmsfake.New(t)}
	st.kms.Now = func() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }
	tagged := func(token string, o kmsfake.KeyOptions) *kmsfake.Key {
		o.Tags = map[string]string{custody.TagSecretARN: h.arn, custody.TagRotationToken: token}
		k := st.kms.AddKey(o)
		st.kms.AddAlias(custody.AliasName(h.arn, token), k.ID)
		return k
	}
	st.old = tagged("v-old", kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
	st.kms.Update(func() {
		st.old.State, st.old.Deletion = types.KeyStatePendingDeletion, st.kms.Now().Add(7*24*time.Hour)
	})
	st.prev = tagged("v-prev", kmsfake.KeyOptions{Private: kmsPrivates()[1]})
	st.cur = tagged("v-cur", kmsfake.KeyOptions{Private: kmsPrivates()[0]})
	st.orphan = tagged("v-orphan", kmsfake.KeyOptions{Spec: types.KeySpecSymmetricDefault})
	h.cfg["key_custody"] = "kms"
	h.sm.Put(h.s, "v-prev", h.kmsDoc(t, st.prev), rotation.StageCurrent)
	h.sm.Put(h.s, "v-cur", h.kmsDoc(t, st.cur), rotation.StageCurrent, rotation.StagePending)
	h.sm.Put(h.s, "v-prev", h.s.Values["v-prev"], rotation.StagePrevious)
	h.s.Tags[custody.SecretTagCreation] = "v-cur"
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: st.cur.Public()}))
	for _, p := range phones[:3] {
		h.g.Set(p, pub, graph.StatusValid)
	}
	m, err := custody.New(st.kms, custody.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.op.opts.Custody = m
	return st
}

func (h *harness) kmsDoc(t *testing.T, k *kmsfake.Key) *string {
	t.Helper()
	d := h.doc(t, nil)
	doc, err := secretdoc.Parse([]byte(*d))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Key, err = secretdoc.NewKMSKey(k.ARN, k.Public(), time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	out, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return aws.String(string(out))
}

func kmsKeyOf(t *testing.T, r *StatusReport, arn string) KMSKeyStatus {
	return byID(t, r.KMSKeys, func(k KMSKeyStatus) string { return k.KeyARN }, arn)
}

func TestStatusReportsEveryKMSKeyOfTheSecret(t *testing.T) {
	h := newHarness(t, nil)
	st := kmsStandard(t, h)
	r := h.status(t)
	if !r.OK || len(r.KMSKeys) != 4 {
		t.Fatalf("status %s %v, %d KMS keys: %+v", r.Overall, r.Reasons, len(r.KMSKeys), r.KMSKeys)
	}
	cur := kmsKeyOf(t, r, st.cur.ARN)
	if !slices.Equal(cur.Labels, []string{rotation.StageCurrent}) || cur.State != "Enabled" || cur.Alias != custody.AliasName(h.arn, "v-cur") {
		t.Errorf("AWSCURRENT's key: %+v", cur)
	}
	if prev := kmsKeyOf(t, r, st.prev.ARN); !slices.Equal(prev.Labels, []string{rotation.StagePrevious}) || prev.State != "Enabled" {
		t.Errorf("AWSPREVIOUS's key: %+v", prev)
	}
	old := kmsKeyOf(t, r, st.old.ARN)
	if old.State != "PendingDeletion" || old.DeletionDate == nil || !old.DeletionDate.Equal(st.old.Deletion) || len(old.Labels) != 0 {
		t.Errorf("retired key: %+v", old)
	}
	if o := kmsKeyOf(t, r, st.orphan.ARN); o.State != "Enabled" || len(o.Labels) != 0 {
		t.Errorf("unnamed key: %+v", o)
	}
	if v := r.Versions.Current; v.KeyCustody != "kms" || v.KMSKeyARN != st.cur.ARN {
		t.Errorf("AWSCURRENT version %+v", v)
	}
	for _, op := range st.kms.Ops() {
		if op != kmsfake.OpDescribeKey && op != kmsfake.OpListAliases {
			t.Errorf("status called %s", op)
		}
	}
	h.assertNoWrites(t)
}

// TestStatusIsNotHealthyWhenALabelledKMSKeyCannotDecrypt: a labelled
// version's key disabled or scheduled for deletion behind flowkey's back,
// or gone, is a reason: the endpoint cannot decrypt with it.
func TestStatusIsNotHealthyWhenALabelledKMSKeyCannotDecrypt(t *testing.T) {
	for name, tc := range map[string]struct {
		fault func(st *kmsState)
		want  string
	}{
		"AWSPREVIOUS disabled": {func(st *kmsState) { st.prev.State = types.KeyStateDisabled }, "the KMS key of AWSPREVIOUS cannot decrypt"},
		"AWSCURRENT pending deletion": {func(st *kmsState) {
			st.cur.State, st.cur.Deletion = types.KeyStatePendingDeletion, st.kms.Now().Add(24*time.Hour)
		}, "the KMS key of AWSCURRENT cannot decrypt, so the endpoint cannot use it: kms key " + "arn:"},
		"AWSPREVIOUS denied": {func(st *kmsState) { st.prev.Denied = true }, "AccessDeniedException"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			st := kmsStandard(t, h)
			st.kms.Update(func() { tc.fault(st) })
			r := h.status(t)
			if r.OK || r.Overall != Drifted || !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Fatalf("status %s, reasons %q; want %q", r.Overall, r.Reasons, tc.want)
			}
		})
	}
}

func TestStatusOfAPEMSecretAsksKMSNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	fk := kmsfake.New(t)
	m, err := custody.New(fk, custody.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.op.opts.Custody = m
	if r := h.status(t); !r.OK || r.KMSKeys != nil || len(fk.Ops()) != 0 {
		t.Errorf("status %s, KMS keys %v, KMS calls %v", r.Overall, r.KMSKeys, fk.Ops())
	}
}

func TestSetConfigSwitchesTheKeyCustody(t *testing.T) {
	h := writable(t)
	r := setConfig(t, h, `{"phone_number_ids":["106540352242922","106540352242923","106540352242924"],"access_token_secret_id":"`+tokenSecret+`","key_custody":"kms"}`, false)
	if !r.OK || r.Outcome != OutcomeUpdated || !strings.Contains(r.Message, "Key custody changes from secrets_manager to kms") {
		t.Fatalf("set-config = %s: %s", r.Outcome, r.Message)
	}
	if d := h.currentDoc(t); d.Config.Custody() != secretdoc.CustodyKMS || d.Key.InKMS() || d.Key.Pair() == nil {
		t.Errorf("AWSCURRENT: custody %q, key in KMS %v: the key stays until the next rotation", d.Config.Custody(), d.Key.InKMS())
	}
}

// TestSetConfigNeverLeavesKMSCustodyByOmission: a configuration without
// key_custody means PEM custody, so for a secret in KMS custody it must be
// said explicitly.
func TestSetConfigNeverLeavesKMSCustodyByOmission(t *testing.T) {
	h := newHarness(t, nil)
	h.sm.ReadOnly = false
	kmsStandard(t, h)
	before := h.sm.Snapshot(h.arn)
	r := setConfig(t, h, newNumbers, false)
	if r.OK || r.Outcome != OutcomeRefused || !strings.Contains(r.Message, `Add "key_custody":"kms" to keep KMS custody`) || h.sm.Snapshot(h.arn) != before {
		t.Fatalf("set-config = %s: %s", r.Outcome, r.Message)
	}
	r = setConfig(t, h, strings.TrimSuffix(newNumbers, "}")+`,"key_custody":"secrets_manager"}`, true)
	if !r.OK || !strings.Contains(r.Message, "Key custody changes from kms to secrets_manager") {
		t.Errorf("an explicit move: %s: %s", r.Outcome, r.Message)
	}
}
