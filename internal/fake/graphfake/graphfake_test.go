package graphfake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/flowkey/flowkey/internal/fake/graphfake"
	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
)

// These tests pin the behaviour the rotation and operator tests rely on,
// so that the fake cannot drift from it unnoticed.

const phone, other = "106540352242922", "106540352242923"

var (
	ctx  = context.Background()
	auth = graph.Auth{Token: graph.NewToken("test-token"), Version: "v23.0"}
)

// publicKey is a PEM public key and its PKIX DER. 1024 bits: the fake
// parses any RSA key, and larger ones are slow to generate.
func publicKey(t *testing.T) (string, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), der
}

func get(t *testing.T, g *graphfake.Fake, p string) *graph.Registration {
	t.Helper()
	reg, err := g.GetPublicKey(ctx, auth, p)
	if err != nil {
		t.Fatalf("get %s: %v", p, err)
	}
	return reg
}

func TestANewNumberHoldsNoKeyWithStatusMismatch(t *testing.T) {
	g := graphfake.New(phone)
	reg := get(t, g, phone)
	if reg.PublicKeyPEM != " " || reg.Status != graph.StatusMismatch || reg.PublicKey != nil || reg.KeyProblem != "" {
		t.Errorf("got %+v", reg)
	}
	if fp := g.HeldFingerprint(phone); fp != "" {
		t.Errorf("HeldFingerprint %q, want none", fp)
	}
	if got := g.Numbers(); !slices.Equal(got, []string{phone}) {
		t.Errorf("Numbers %v", got)
	}
}

func TestUploadIsReadBackAsAValidKey(t *testing.T) {
	g := graphfake.New(phone)
	pemText, der := publicKey(t)
	if err := g.UploadPublicKey(ctx, auth, phone, pemText); err != nil {
		t.Fatal(err)
	}
	reg := get(t, g, phone)
	if reg.Status != graph.StatusValid || reg.PublicKey == nil || string(reg.PublicDER) != string(der) || reg.KeyProblem != "" {
		t.Errorf("got %+v", reg)
	}
	if got, want := g.HeldFingerprint(phone), keypair.FingerprintOf(der).String(); got != want {
		t.Errorf("HeldFingerprint %s, want %s", got, want)
	}
}

func TestLagShowsThePreviousKeyForThatManyGets(t *testing.T) {
	g := graphfake.New(phone)
	oldPEM, oldDER := publicKey(t)
	newPEM, newDER := publicKey(t)
	g.Set(phone, oldPEM, graph.StatusValid)
	if err := g.UploadPublicKey(ctx, auth, phone, newPEM); err != nil {
		t.Fatal(err)
	}
	g.SetLag(phone, 2)
	for i, want := range [][]byte{oldDER, oldDER, newDER, newDER} {
		if reg := get(t, g, phone); string(reg.PublicDER) != string(want) {
			t.Errorf("GET %d: got the wrong key (previous: %v)", i+1, string(reg.PublicDER) == string(oldDER))
		}
	}
	// What Meta holds is the new key all along: the lag is in the reads.
	if g.HeldFingerprint(phone) != keypair.FingerprintOf(newDER).String() {
		t.Error("HeldFingerprint is not the uploaded key")
	}
	if g.Gets(phone) != 4 || g.Uploads(phone) != 1 {
		t.Errorf("counted %d gets and %d uploads, want 4 and 1", g.Gets(phone), g.Uploads(phone))
	}
}

func TestGetPublicKeyJudgesWhatItReturns(t *testing.T) {
	tests := []struct {
		name, pem, status string
		wantKey           bool
		wantKeyProblem    bool
		wantOmitted       bool // VALID without a key, as Meta's v23 example
	}{
		{name: "blank MISMATCH", pem: " ", status: graph.StatusMismatch},
		{name: "empty MISMATCH", pem: "", status: graph.StatusMismatch},
		{name: "blank VALID", pem: " ", status: graph.StatusValid, wantKeyProblem: true, wantOmitted: true},
		{name: "empty VALID", pem: "", status: graph.StatusValid, wantKeyProblem: true, wantOmitted: true},
		{name: "not PEM", pem: "garbage", status: graph.StatusValid, wantKeyProblem: true},
		{name: "PEM that is not PKIX", pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", status: graph.StatusValid, wantKeyProblem: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graphfake.New()
			g.Set(phone, tc.pem, tc.status)
			reg := get(t, g, phone)
			if (reg.PublicKey != nil) != tc.wantKey || (reg.KeyProblem != "") != tc.wantKeyProblem || reg.KeyOmitted != tc.wantOmitted || reg.PublicKeyPEM != tc.pem {
				t.Errorf("got %+v", reg)
			}
		})
	}
}

func TestSetKeyAndSetStatusChangeOnlyTheirPart(t *testing.T) {
	g := graphfake.New(phone)
	pemText, der := publicKey(t)
	g.SetKey(phone, pemText)
	if reg := get(t, g, phone); reg.Status != graph.StatusMismatch || string(reg.PublicDER) != string(der) {
		t.Errorf("after SetKey: %+v", reg)
	}
	g.SetStatus(phone, graph.StatusValid)
	if reg := get(t, g, phone); reg.Status != graph.StatusValid || string(reg.PublicDER) != string(der) {
		t.Errorf("after SetStatus: %+v", reg)
	}
}

func TestCallsThatFailAsGraphDoes(t *testing.T) {
	g := graphfake.New(phone)
	g.Set(other, " ", graph.StatusMismatch)
	g.Remove(other)
	tests := []struct {
		name                  string
		call                  func() error
		status, code, subcode int
	}{
		{name: "upload without a token", call: func() error {
			return g.UploadPublicKey(ctx, graph.Auth{Version: "v23.0"}, phone, "k")
		}, status: 401, code: 190},
		{name: "upload without a version", call: func() error {
			return g.UploadPublicKey(ctx, graph.Auth{Token: auth.Token}, phone, "k")
		}, status: 401, code: 190},
		{name: "upload to a removed number", call: func() error {
			return g.UploadPublicKey(ctx, auth, other, "k")
		}, status: 400, code: 100, subcode: 33},
		{name: "get of a removed number", call: func() error {
			_, err := g.GetPublicKey(ctx, auth, other)
			return err
		}, status: 400, code: 100, subcode: 33},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ge *graph.Error
			if err := tc.call(); !errors.As(err, &ge) || ge.HTTPStatus != tc.status || ge.Code != tc.code || ge.Subcode != tc.subcode || ge.Failure != graph.FailureGraph {
				t.Errorf("got %v, want HTTP %d code %d subcode %d", err, tc.status, tc.code, tc.subcode)
			}
		})
	}
	if reg := get(t, g, phone); reg.PublicKeyPEM != " " {
		t.Errorf("a refused upload changed the key: %+v", reg)
	}
	if got := g.Numbers(); !slices.Equal(got, []string{phone}) {
		t.Errorf("Numbers %v after Remove", got)
	}
}

func TestFaultsArePerOperationAndObjectAndReturnedInOrder(t *testing.T) {
	g := graphfake.New(phone, other)
	e1, e2, eList := errors.New("first"), errors.New("second"), errors.New("list")
	g.Fault(graphfake.OpGet, phone, e1, e2)
	g.Fault(graphfake.OpList, "waba", eList)
	g.AddWABA(graph.PhoneNumber{ID: phone})
	g.AddWABA(graph.PhoneNumber{ID: other})

	if _, err := g.GetPublicKey(ctx, auth, other); err != nil {
		t.Errorf("another number's GET failed: %v", err)
	}
	if err := g.UploadPublicKey(ctx, auth, phone, " "); err != nil {
		t.Errorf("another operation failed: %v", err)
	}
	for i, want := range []error{e1, e2, nil} {
		if _, err := g.GetPublicKey(ctx, auth, phone); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("GET %d: got %v, want %v", i+1, err, want)
		}
	}
	if _, err := g.PhoneNumbers(ctx, auth, "waba"); !errors.Is(err, eList) {
		t.Errorf("list: got %v, want %v", err, eList)
	}
	list, err := g.PhoneNumbers(ctx, auth, "waba")
	if err != nil || !slices.Equal(list, []graph.PhoneNumber{{ID: phone}, {ID: other}}) {
		t.Errorf("list: got %v, %v", list, err)
	}

	up, gets := g.Counts()
	if !maps.Equal(up, map[string]int{phone: 1}) || !maps.Equal(gets, map[string]int{phone: 3, other: 1}) {
		t.Errorf("Counts %v %v", up, gets)
	}
	if u, n := g.Totals(); u != 1 || n != 4 {
		t.Errorf("Totals %d %d, want 1 4", u, n)
	}
	g.ResetCounts()
	if u, n := g.Totals(); u != 0 || n != 0 {
		t.Errorf("Totals %d %d after ResetCounts", u, n)
	}
}
