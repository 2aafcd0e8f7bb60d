package keystate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

func TestResolveNumbers(t *testing.T) {
	const gone = "999999999999999"
	tests := []struct {
		name    string
		cfg     secretdoc.Config
		waba    []string // what the WABA lists
		fail    error    // the listing fails with it
		want    Numbers
		wantErr string
	}{
		{name: "phone_number_ids as they stand", cfg: secretdoc.Config{PhoneNumberIDs: []string{phones[2], phones[0]}},
			waba: phones, want: Numbers{IDs: []string{phones[2], phones[0]}}},
		{name: "every number of the WABA", cfg: secretdoc.Config{WABAID: wabaID},
			waba: phones, want: Numbers{IDs: phones, Listed: 3}},
		{name: "include", cfg: secretdoc.Config{WABAID: wabaID, IncludePhoneNumberIDs: []string{phones[1]}},
			waba: phones, want: Numbers{IDs: phones[1:2], Listed: 3}},
		{name: "exclude", cfg: secretdoc.Config{WABAID: wabaID, ExcludePhoneNumberIDs: []string{phones[1]}},
			waba: phones, want: Numbers{IDs: []string{phones[0], phones[2]}, Listed: 3}},
		{name: "include and exclude, in the WABA's order", cfg: secretdoc.Config{WABAID: wabaID,
			IncludePhoneNumberIDs: []string{phones[2], phones[0], phones[1]}, ExcludePhoneNumberIDs: []string{phones[1]}},
			waba: phones, want: Numbers{IDs: []string{phones[0], phones[2]}, Listed: 3}},
		{name: "an included number that left", cfg: secretdoc.Config{WABAID: wabaID, IncludePhoneNumberIDs: []string{gone, phones[0]}},
			waba: phones, want: Numbers{IDs: phones[:1], Gone: []string{gone}, Listed: 3}},
		{name: "nothing left is not an error", cfg: secretdoc.Config{WABAID: wabaID, ExcludePhoneNumberIDs: phones},
			waba: phones, want: Numbers{IDs: []string{}, Listed: 3}},
		{name: "an empty WABA", cfg: secretdoc.Config{WABAID: wabaID}, want: Numbers{IDs: []string{}}},
		{name: "the listing fails", cfg: secretdoc.Config{WABAID: wabaID}, fail: errBoom,
			wantErr: "list phone numbers of WABA " + wabaID + ": boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graphfake.New()
			for _, id := range tc.waba {
				g.AddWABA(graph.PhoneNumber{ID: id})
			}
			if tc.fail != nil {
				g.Fault(graphfake.OpList, wabaID, tc.fail)
			}
			r, err := New(stubSecrets{}, g, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.ResolveNumbers(context.Background(), graph.Auth{}, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.fail) {
					t.Fatalf("got %+v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.IDs, tc.want.IDs) || !slices.Equal(got.Gone, tc.want.Gone) || got.Listed != tc.want.Listed {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveNumbersReturnsACopyOfTheConfiguredList(t *testing.T) {
	r, err := New(stubSecrets{}, graphfake.New(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := secretdoc.Config{PhoneNumberIDs: slices.Clone(phones)}
	n, err := r.ResolveNumbers(context.Background(), graph.Auth{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.IDs[0] = "1"
	if cfg.PhoneNumberIDs[0] != phones[0] {
		t.Error("changing the result changed the configuration")
	}
}

func TestResolveNumbersReportsIncludedNumbersThatLeftTheWABA(t *testing.T) {
	f := newFixture(t, Options{})
	f.sm.Put(f.s, "v0", doc(t, map[string]any{
		"waba_id":                  wabaID,
		"include_phone_number_ids": []string{phones[0], phones[1], "999999999999999"},
		"exclude_phone_number_ids": []string{phones[2]},
		"access_token_secret_id":   tokenSecret}, nil), StageCurrent)
	for _, p := range phones {
		f.g.AddWABA(graph.PhoneNumber{ID: p})
	}
	cur, err := f.r.Load(context.Background(), f.arn, "", StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := f.r.Auth(context.Background(), cur.Config)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.r.ResolveNumbers(context.Background(), auth, cur.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.IDs, phones[:2]) || !slices.Equal(n.Gone, []string{"999999999999999"}) || n.Listed != 3 {
		t.Errorf("got %+v, want IDs %v, Gone [999999999999999], Listed 3", n, phones[:2])
	}
}

// wabaOf returns n distinct phone numbers of a WABA.
func wabaOf(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("1065403522%05d", i)
	}
	return ids
}

func TestResolveNumbersRefusesMoreThanOneSecretMayCover(t *testing.T) {
	tests := []struct {
		name    string
		cfg     secretdoc.Config
		waba    int
		wantIDs int
		wantErr string
	}{
		{name: "the maximum", cfg: secretdoc.Config{WABAID: wabaID}, waba: secretdoc.MaxPhoneNumbers, wantIDs: secretdoc.MaxPhoneNumbers},
		{name: "one more", cfg: secretdoc.Config{WABAID: wabaID}, waba: secretdoc.MaxPhoneNumbers + 1,
			wantErr: "config.waba_id WABA " + wabaID + " has 101 phone numbers after the include and exclude lists, more than the 100 one secret may cover; fix: split the numbers across secrets, at most 100 each"},
		{name: "narrowed by exclude", cfg: secretdoc.Config{WABAID: wabaID, ExcludePhoneNumberIDs: wabaOf(50)}, waba: 150, wantIDs: 100},
		{name: "phone_number_ids built in code", cfg: secretdoc.Config{PhoneNumberIDs: wabaOf(secretdoc.MaxPhoneNumbers + 1)},
			wantErr: "config.phone_number_ids lists 101 phone numbers, more than the 100 one secret may cover; fix: split"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graphfake.New()
			for _, id := range wabaOf(tc.waba) {
				g.AddWABA(graph.PhoneNumber{ID: id})
			}
			r, err := New(stubSecrets{}, g, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.ResolveNumbers(context.Background(), graph.Auth{}, tc.cfg)
			if tc.wantErr != "" {
				var ie *InputError
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !errors.As(err, &ie) || len(got.IDs) != 0 {
					t.Fatalf("got %d IDs, %v; want no IDs and an *InputError starting %q", len(got.IDs), err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got.IDs) != tc.wantIDs {
				t.Fatalf("got %d IDs, %v; want %d", len(got.IDs), err, tc.wantIDs)
			}
		})
	}
}
