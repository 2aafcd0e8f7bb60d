package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/flowkey/flowkey/internal/graph"
)

func TestResolveNumbersReportsIncludedNumbersThatLeftTheWABA(t *testing.T) {
	doc, _ := json.Marshal(map[string]any{"schema_version": 1, "config": map[string]any{
		"waba_id":                  "102290129340398",
		"include_phone_number_ids": []string{phones[0], phones[1], "999999999999999"},
		"exclude_phone_number_ids": []string{phones[2]},
		"access_token_secret_id":   tokenSecret}})
	h := newHarness(t, string(doc), phones...)
	for _, p := range phones {
		h.g.AddWABA(graph.PhoneNumber{ID: p})
	}
	cur, err := h.rot.LoadDocument(context.Background(), h.arn, "", StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := h.rot.GraphAuth(context.Background(), cur.Config)
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.rot.ResolveNumbers(context.Background(), auth, cur.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.IDs, phones[:2]) || !slices.Equal(n.Gone, []string{"999999999999999"}) || n.Listed != 3 {
		t.Errorf("got %+v, want IDs %v, Gone [999999999999999], Listed 3", n, phones[:2])
	}
}

func TestLoadDocumentOfAnEmptyPendingVersionIsNotFound(t *testing.T) {
	h := newHarness(t, configOnly(phones...), phones...)
	h.sm.StagePending(h.arn, "v1", nil)
	_, err := h.rot.LoadDocument(context.Background(), h.arn, "v1", StagePending)
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("want ResourceNotFoundException in the chain, got %v", err)
	}
}

func TestVerifyJudgesANumberAsTestSecretDoes(t *testing.T) {
	h := newHarness(t, configOnly(phones[:2]...), phones[:2]...)
	if err := h.rotate(t, "v1"); err != nil {
		t.Fatal(err)
	}
	cur := h.doc(t, StageCurrent)
	auth, err := h.rot.GraphAuth(context.Background(), cur.Config)
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
