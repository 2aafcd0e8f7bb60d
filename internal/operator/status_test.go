package operator

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/rotation"
)

func TestStatusOfAHealthySecretReadsEveryNumberOnceAndWritesNothing(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	r := h.status(t)
	if !r.OK || r.Overall != Healthy || r.Drifted != 0 || len(r.Reasons) != 0 || r.RotationInProgress {
		t.Fatalf("want healthy, got %+v", r)
	}
	if r.Versions.Current.VersionID != "v-cur" || r.Versions.Current.Fingerprint != keyCur.Fingerprint().String() ||
		r.Versions.Previous == nil || r.Versions.Previous.Fingerprint != keyPrev.Fingerprint().String() {
		t.Errorf("versions = %+v", r.Versions)
	}
	for _, n := range r.Numbers {
		if n.State != StateOK || n.Matches != rotation.StageCurrent || n.Fingerprint != keyCur.Fingerprint().String() || n.SignatureStatus != graph.StatusValid {
			t.Errorf("%+v, want ok on AWSCURRENT", n)
		}
	}
	_, gets := h.g.Counts()
	for _, p := range phones[:3] {
		if gets[p] != 1 {
			t.Errorf("%s read %d times, want 1", p, gets[p])
		}
	}
	h.assertNoWrites(t)
	if want := [][2]int{{3, 0}}; !slices.Equal(h.metrics.drift, want) {
		t.Errorf("drift metrics %v, want %v", h.metrics.drift, want)
	}
	if want := []string{"status ok=true uploaded=0 verified=0 failed=0"}; !slices.Equal(h.metrics.commands, want) {
		t.Errorf("command metrics %v, want %v", h.metrics.commands, want)
	}
}

func TestStatusJudgesEachNumber(t *testing.T) {
	p := phones[2]
	tests := []struct {
		name     string
		rotating bool // AWSPENDING (keyPend) on a version of its own
		setup    func(h *harness)
		state    string
		matches  string
		reason   string
		graphErr bool
	}{
		{"changed behind flowkey's back", false, func(h *harness) { h.g.Set(p, keyForeign.PublicPEM(), graph.StatusValid) },
			StateDrifted, MatchNone, "Meta holds key " + keyForeign.Fingerprint().Short() + ", which matches no version of the secret", false},
		// MISMATCH, blank and keyless answers never count as a version's key.
		{"forced MISMATCH on the current key", false, func(h *harness) { h.g.Set(p, keyCur.PublicPEM(), graph.StatusMismatch) },
			StateUnknown, MatchUnknown, "Meta shows the AWSCURRENT key, but with signature status MISMATCH, not VALID, so the key it uses is unknown", false},
		{"blank key, as Meta shows a re-registered number", false, func(h *harness) { h.g.Set(p, " ", graph.StatusMismatch) },
			StateUnknown, MatchUnknown, "Meta answers signature status MISMATCH with no key, so the key it holds is unknown", false},
		// graph.Registration.KeyOmitted: a key Meta holds and did not show.
		{"VALID without a key", false, func(h *harness) { h.g.Set(p, "", graph.StatusValid) },
			StateUnknown, MatchUnknown, "Meta answers VALID but omits the key from its answer, so it holds a key flowkey cannot see and which one is unknown", false},
		{"unusable key", false, func(h *harness) {
			h.g.Set(p, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", graph.StatusValid)
		},
			StateDrifted, MatchNone, "Meta holds a key flowkey cannot use: business_public_key is not a valid PKIX public key", false},
		{"previous key, no rotation", false, func(h *harness) { h.g.Set(p, keyPrev.PublicPEM(), graph.StatusValid) },
			StateDrifted, rotation.StagePrevious, "Meta holds the AWSPREVIOUS key " + keyPrev.Fingerprint().Short() + ", whose private key leaves the secret at the next rotation", false},
		{"previous key during a rotation", true, func(h *harness) { h.g.Set(p, keyPrev.PublicPEM(), graph.StatusValid) },
			StateDrifted, rotation.StagePrevious, "a rotation is in progress and its setSecret uploads the new key to this number", false},
		{"pending key during a rotation", true, func(h *harness) { h.g.Set(p, keyPend.PublicPEM(), graph.StatusValid) },
			StateOK, rotation.StagePending, "", false},
		{"pending key with MISMATCH during a rotation", true, func(h *harness) { h.g.Set(p, keyPend.PublicPEM(), graph.StatusMismatch) },
			StateUnknown, MatchUnknown, "Meta shows the AWSPENDING key, but with signature status MISMATCH, not VALID", false},
		{"GET fails", false, func(h *harness) {
			h.g.Fault("get", p, graphErr("get", p, 503, 131000, 0, true))
		}, StateUnknown, MatchUnknown, "the GET of its key failed, so what Meta holds is unknown: graph get " + p + ": HTTP 503 code 131000", true},
		{"number deleted", false, func(h *harness) {
			h.g.Remove(p)
		}, StateGone, MatchUnknown, "Graph says the number does not exist for this business (deleted or moved); flowkey never writes to it; fix: remove it from config.phone_number_ids", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.standard(t, phones[:3]...)
			if tc.rotating {
				h.pending(t, "v-pend", keyPend)
			}
			tc.setup(h)
			r := h.status(t)
			n := numberOf(r, t, p)
			if n.State != tc.state || n.Matches != tc.matches || !strings.Contains(n.Reason, tc.reason) || (n.GraphError != nil) != tc.graphErr {
				t.Fatalf("got %+v\nwant state %s, matches %s, reason containing %q, graph error %v", n, tc.state, tc.matches, tc.reason, tc.graphErr)
			}
			for _, other := range phones[:2] {
				if o := numberOf(r, t, other); o.State != StateOK {
					t.Errorf("%s: %+v, want ok", other, o)
				}
			}
			if r.RotationInProgress != tc.rotating {
				t.Errorf("rotation_in_progress = %v", r.RotationInProgress)
			}
			wantDrift, wantOverall, wantReasons := 0, Healthy, 0
			if tc.state != StateOK {
				wantDrift, wantOverall, wantReasons = 1, Drifted, 1
				if last := r.Reasons[len(r.Reasons)-1]; !strings.HasPrefix(last, p+": ") {
					t.Errorf("last reason %q, want %s's", last, p)
				}
			}
			if tc.rotating {
				// Never healthy while a rotation is incomplete.
				wantOverall, wantReasons = RotationIncomplete, wantReasons+1
				if !strings.HasPrefix(r.Reasons[0], "a rotation is incomplete: AWSPENDING is on version v-pend") {
					t.Errorf("first reason %q", r.Reasons[0])
				}
			}
			if r.OK != (wantOverall == Healthy) || r.Overall != wantOverall || r.Drifted != wantDrift || len(r.Reasons) != wantReasons {
				t.Errorf("got ok=%v overall=%s drifted=%d reasons=%q; want overall %s, %d drifted, %d reasons", r.OK, r.Overall, r.Drifted, r.Reasons, wantOverall, wantDrift, wantReasons)
			}
			if wantUnknown := map[bool]int{true: 1}[tc.state == StateUnknown]; r.Unknown != wantUnknown {
				t.Errorf("unknown = %d, want %d", r.Unknown, wantUnknown)
			}
			if want := [][2]int{{3, wantDrift}}; !slices.Equal(h.metrics.drift, want) {
				t.Errorf("drift metrics %v, want %v", h.metrics.drift, want)
			}
			h.assertNoWrites(t)
		})
	}
}

func TestStatusGraphErrorFields(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.g.Fault("get", phones[0], graphErr("get", phones[0], 403, 10, 2494, false))
	r := h.status(t)
	b, _ := json.Marshal(numberOf(r, t, phones[0]).GraphError)
	want := `{"message":"graph get ` + phones[0] + `: HTTP 403 code 10 subcode 2494 (OAuthException): test failure [fbtrace_id AbCdEf] after 1 attempt` +
		`; fix: the token in the access token secret lacks a permission; give its system user whatsapp_business_management on this WABA (code 10 on this endpoint can also mean the number is not allowed to use Flows)","http_status":403,"code":10,"subcode":2494,"fbtrace_id":"AbCdEf","retryable":false}`
	if string(b) != want {
		t.Errorf("graph_error\n%s\nwant\n%s", b, want)
	}
}

// TestGraphErrorCodeIsGraphsOnly: code is what graph.Error.GraphCode
// reports, so 0 appears for Meta's code 0 and never for a failure that
// carried no code (a transport failure, an error object without a code).
func TestGraphErrorCodeIsGraphsOnly(t *testing.T) {
	p := phones[0]
	tests := []struct {
		name string
		err  *graph.Error
		code string // the JSON of code; "" for absent
	}{
		{"Graph code 0", &graph.Error{Op: "get", Object: p, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 0, Attempts: 1}, "0"},
		{"Graph code 190", &graph.Error{Op: "get", Object: p, Failure: graph.FailureGraph, HTTPStatus: 401, Code: 190, Type: "OAuthException", Attempts: 1}, "190"},
		{"transport timeout", &graph.Error{Op: "get", Object: p, Failure: graph.FailureTransport, Transport: graph.TransportTimeout, Attempts: 3, Retryable: true}, ""},
		{"error object without a code", &graph.Error{Op: "get", Object: p, Failure: graph.FailureHTTP, HTTPStatus: 403, Type: "OAuthException", Message: "denied", Attempts: 1}, ""},
		{"HTTP 502 page", &graph.Error{Op: "get", Object: p, Failure: graph.FailureHTTP, HTTPStatus: 502, Attempts: 3, Retryable: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.standard(t, phones[:3]...)
			h.g.Fault("get", p, tc.err)
			n := numberOf(h.status(t), t, p)
			if n.GraphError == nil {
				t.Fatalf("no graph_error: %+v", n)
			}
			var fields map[string]json.RawMessage
			b, _ := json.Marshal(n.GraphError)
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			if got := string(fields["code"]); got != tc.code {
				t.Errorf("code = %q, want %q, in %s", got, tc.code, b)
			}
		})
	}
}

func TestStatusInWABAModeListsTheWABAEveryTimeAndReportsGoneNumbers(t *testing.T) {
	h := newHarness(t, map[string]any{"waba_id": wabaID, "exclude_phone_number_ids": []string{phones[4]}})
	h.standard(t, phones[0], phones[1], phones[4])
	for _, p := range phones[:2] {
		h.g.AddWABA(graph.PhoneNumber{ID: p})
	}
	if r := h.status(t); !r.OK || len(r.Numbers) != 2 || r.WABAID != wabaID {
		t.Fatalf("want 2 healthy numbers, got %+v", r)
	}
	// A number joins the WABA: it holds no key yet, so what it holds is
	// unknown until the next rotation or resync.
	h.g.AddWABA(graph.PhoneNumber{ID: phones[2]}, graph.PhoneNumber{ID: phones[4]})
	h.g.Set(phones[2], " ", graph.StatusMismatch)
	r := h.status(t)
	if n := numberOf(r, t, phones[2]); n.State != StateUnknown || n.Matches != MatchUnknown {
		t.Errorf("new number: %+v", n)
	}
	if slices.ContainsFunc(r.Numbers, func(n NumberStatus) bool { return n.PhoneNumberID == phones[4] }) {
		t.Error("an excluded number was reported")
	}

	// With an include list, a listed number that left the WABA is gone and
	// never read.
	h2 := newHarness(t, map[string]any{"waba_id": wabaID, "include_phone_number_ids": []string{phones[0], phones[3]}})
	h2.standard(t, phones[0], phones[3])
	h2.g.AddWABA(graph.PhoneNumber{ID: phones[0]}, graph.PhoneNumber{ID: phones[1]})
	r = h2.status(t)
	n := numberOf(r, t, phones[3])
	if n.State != StateGone || !strings.Contains(n.Reason, "listed in config.include_phone_number_ids but no longer in WABA "+wabaID+"; flowkey never writes to it") {
		t.Errorf("left number: %+v", n)
	}
	if _, gets := h2.g.Counts(); gets[phones[3]] != 0 || gets[phones[1]] != 0 {
		t.Errorf("reads %v: a gone or not included number was read", gets)
	}
	if r.OK || r.Drifted != 1 || len(r.Numbers) != 2 {
		t.Errorf("want drifted by the gone number only, got %+v", r)
	}
}

func TestStatusOfAConfigurationOnlySecret(t *testing.T) {
	h := newHarness(t, nil)
	h.sm.Put(h.s, "v0", h.doc(t, nil), rotation.StageCurrent)
	for _, p := range phones[:3] {
		h.g.Set(p, " ", graph.StatusMismatch)
	}
	r := h.status(t)
	if r.OK || len(r.Reasons) != 4 || r.Reasons[0] != `AWSCURRENT version v0 holds no key yet (configuration only): start the first rotation with {"command":"rotate"}` {
		t.Errorf("reasons %q", r.Reasons)
	}
}

func TestStatusFailsWhenItCannotReadTheNumbers(t *testing.T) {
	h := newHarness(t, map[string]any{"waba_id": wabaID})
	h.standard(t)
	h.g.Fault("list", wabaID, graphErr("list", wabaID, 400, 190, 463, false))
	_, err := h.run(t, Command{Name: CommandStatus})
	if err == nil || !strings.HasPrefix(err.Error(), "status: list phone numbers of WABA "+wabaID+": graph list "+wabaID+": HTTP 400 code 190 subcode 463") {
		t.Fatalf("got %v", err)
	}
	h2 := newHarness(t, nil)
	h2.standard(t)
	h2.sm.Delete(tokenSecret)
	if _, err := h2.run(t, Command{Name: CommandStatus}); err == nil || !strings.Contains(err.Error(), "read access token secret "+tokenSecret) {
		t.Fatalf("got %v", err)
	}
	if want := []string{"status ok=false uploaded=0 verified=0 failed=0"}; !slices.Equal(h2.metrics.commands, want) {
		t.Errorf("command metrics %v, want %v", h2.metrics.commands, want)
	}
}

func TestStatusResultShape(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t, phones[:3]...)
	h.g.Set(phones[1], keyForeign.PublicPEM(), graph.StatusValid)
	out, err := h.run(t, Command{Name: CommandStatus})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	b, _ := json.Marshal(out)
	_ = json.Unmarshal(b, &got)
	for _, k := range []string{"command", "ok", "overall", "reasons", "secret_arn", "rotation_in_progress", "versions", "numbers", "drifted", "unknown"} {
		if _, ok := got[k]; !ok {
			t.Errorf("field %q missing from %s", k, b)
		}
	}
	n := got["numbers"].([]any)[1].(map[string]any)
	for _, k := range []string{"phone_number_id", "state", "matches", "fingerprint_sha256", "signature_status", "reason"} {
		if _, ok := n[k]; !ok {
			t.Errorf("field %q missing from number %v", k, n)
		}
	}
	v := got["versions"].(map[string]any)
	for _, k := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version %q missing from %v", k, v)
		}
	}
}

// The reproductions, as status sees them: a read cannot prove
// where the pending key is, so a status during an incomplete rotation is
// never healthy, and MISMATCH or blank answers never count as a version's
// key.
func TestStatusIsNeverHealthyDuringAnIncompleteRotation(t *testing.T) {
	t.Run("a lagging GET shows the AWSCURRENT key on every number", func(t *testing.T) {
		h := newHarness(t, nil)
		h.standard(t, phones[:3]...)
		h.pending(t, "v-pend", keyPend)
		r := h.status(t)
		if r.OK || r.Overall != RotationIncomplete || !r.RotationInProgress || r.Drifted != 0 || len(r.Reasons) != 1 {
			t.Fatalf("got ok=%v overall=%s drifted=%d reasons=%q", r.OK, r.Overall, r.Drifted, r.Reasons)
		}
		for _, s := range []string{"never remove AWSPENDING from it", `{"command":"rotate"}`, "a read can lag behind an upload"} {
			if !strings.Contains(r.Reasons[0], s) {
				t.Errorf("reason %q lacks %q", r.Reasons[0], s)
			}
		}
	})
	t.Run("the first rotation failed under MISMATCH", func(t *testing.T) {
		h := newHarness(t, nil)
		h.sm.Put(h.s, "v0", h.doc(t, nil), rotation.StageCurrent)
		h.pending(t, "v1", keyPend)
		for _, p := range phones[:3] {
			h.g.Set(p, " ", graph.StatusMismatch)
		}
		r := h.status(t)
		if r.OK || r.Overall != RotationIncomplete || r.Unknown != 3 || r.Drifted != 3 {
			t.Fatalf("got ok=%v overall=%s unknown=%d drifted=%d", r.OK, r.Overall, r.Unknown, r.Drifted)
		}
		for _, n := range r.Numbers {
			if n.State != StateUnknown || n.Matches != MatchUnknown {
				t.Errorf("%+v, want unknown: a blank MISMATCH may hide the pending key", n)
			}
		}
	})
}
