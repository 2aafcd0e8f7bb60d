package rotation

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestVerifyJudgesANumberAsTestSecretDoes(t *testing.T) {
	h := newHarness(t, configOnly(phones[:2]...), phones[:2]...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	cur := h.doc(t, StageCurrent)
	auth, err := h.state.Auth(context.Background(), cur.Config)
	if err != nil {
		t.Fatal(err)
	}
	h.g.SetKey(phones[1], testPairs[3].PublicPEM())
	res := h.rot.Verify(context.Background(), auth, phones[:2], cur.Key)
	if res[0].Err != nil {
		t.Errorf("%s holds the current key, got %v", phones[0], res[0].Err)
	}
	var mm *MismatchError
	if !errors.As(res[1].Err, &mm) || res[1].Held != testPairs[3].Fingerprint().Short() {
		t.Errorf("%s holds another key: want a MismatchError naming it, got %+v", phones[1], res[1])
	}
	for _, r := range h.rot.Verify(context.Background(), auth, phones[:1], nil) {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "no key") {
			t.Errorf("verify against no key: got %v", r.Err)
		}
	}
}
