package waclient

import (
	"strings"
	"testing"
	"time"
)

func noFailures(t *testing.T, s Stats) {
	t.Helper()
	if s.Failures != 0 {
		t.Fatalf("%d user-visible failures: %v\n%s", s.Failures, s.Causes, strings.Join(s.Examples, "\n"))
	}
}

func TestTrafficThroughAnHonestEndpointIsVerifiedRequestByRequest(t *testing.T) {
	f := newFixture(t, Options{Clients: 6, Seed: 1})
	s := f.rounds(t, 8)
	noFailures(t, s)
	if s.Requests != 48 || s.Sent != 48 || f.gw.posts != 48 {
		t.Errorf("requests %d, sent %d, posts seen %d; want 48 each", s.Requests, s.Sent, f.gw.posts)
	}
	if s.Verified+s.Expired != s.Requests {
		t.Errorf("%d verified + %d expired != %d requests", s.Verified, s.Expired, s.Requests)
	}
	// One fetch per client: the cache lasts beyond the test.
	if s.KeyFetches != 6 || f.graph.getCount() != 6 {
		t.Errorf("key fetches %d (graph saw %d), want 6", s.KeyFetches, f.graph.getCount())
	}
	if s.Status421 != 0 || s.Retries != 0 {
		t.Errorf("421s %d, retries %d; want none", s.Status421, s.Retries)
	}
	for _, a := range []string{"INIT", "data_exchange"} {
		if s.Actions[a] == 0 {
			t.Errorf("no %s in %v", a, s.Actions)
		}
	}
}

func TestTheMixReachesEveryActionAndTheFinalScreen(t *testing.T) {
	f := newFixture(t, Options{Clients: 4, Seed: 7, Mix: &Mix{Ping: 0.2, Back: 0.4, Expired: 0.3}})
	s := f.rounds(t, 25)
	noFailures(t, s)
	for _, a := range []string{"INIT", "data_exchange", "BACK", "ping"} {
		if s.Actions[a] == 0 {
			t.Errorf("no %s in %v", a, s.Actions)
		}
	}
	if s.Expired == 0 {
		t.Error("no expired-token 427 was seen")
	}
	// Sessions that reached SUCCESS started again with INIT.
	if s.Actions["INIT"] <= 4 {
		t.Errorf("%d INITs for 4 clients: no session finished", s.Actions["INIT"])
	}
}

// The rotation case: the client holds the old key, the endpoint only the
// new one. The 421 makes the client fetch the new key; the retry succeeds.
func TestA421ReFetchesTheKeyAndTheRetryWithTheNewKeySucceeds(t *testing.T) {
	keys := testKeys()
	f := newFixture(t, Options{Clients: 5, Seed: 2})
	noFailures(t, f.rounds(t, 1))
	f.gw.set("", keys[1])
	f.graph.serve(publicPEM(t, keys[1]), "VALID", false)
	before := f.pop.Stats()
	s := f.rounds(t, 1).Sub(before)
	noFailures(t, s)
	if s.Status421 != 5 || s.Retries != 5 || s.Recovered != 5 || s.KeyFetches != 5 || s.Sent != 10 {
		t.Errorf("got %s; want 5 421s, 5 retries all recovered, 5 fetches, 10 sent", s)
	}
	if old, fresh := fingerprint(t, keys[0]), fingerprint(t, keys[1]); len(s.Keys) != 2 || s.Keys[old] != 5 || s.Keys[fresh] != 5 {
		t.Errorf("POSTs by key %v; want 5 with the old key and 5 with the new", s.Keys)
	}
	// Afterwards the new key is cached: no more 421s.
	before = f.pop.Stats()
	if s := f.rounds(t, 2).Sub(before); s.Status421 != 0 || s.KeyFetches != 0 || s.Failures != 0 {
		t.Errorf("after the retry: %s; want no 421, fetch or failure", s)
	}
}

// When Meta still serves the key the endpoint cannot use, the retry fails
// too: that is what a user sees, and the simulator must say so.
func TestA421ThatPersistsIsAUserVisibleFailure(t *testing.T) {
	keys := testKeys()
	f := newFixture(t, Options{Clients: 3, Seed: 3})
	f.gw.set("", keys[1])
	s := f.rounds(t, 1)
	if s.Failures != 3 || s.Causes[CauseStill421] != 3 || s.Status421 != 6 || s.Retries != 3 || s.Recovered != 0 {
		t.Errorf("got %s; want 3 failures %q after 6 421s", s, CauseStill421)
	}
	if len(s.Examples) != 3 || !strings.Contains(s.Examples[0], "phone ") {
		t.Errorf("examples %q do not describe the failures", s.Examples)
	}
}

func TestCryptographicMistakesOfTheEndpointAreCaught(t *testing.T) {
	tests := []struct{ bug, cause string }{
		{"iv-not-inverted", CauseUndecryptable},
		{"wrong-answer", CauseWrongAnswer},
		{"status-500", "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.bug, func(t *testing.T) {
			f := newFixture(t, Options{Clients: 3, Seed: 4, Mix: &Mix{}})
			f.gw.set(tt.bug, testKeys()[0])
			s := f.rounds(t, 1)
			if s.Failures != 3 || s.Causes[tt.cause] != 3 || s.Verified != 0 || s.Retries != 0 {
				t.Errorf("got %s; want 3 failures %q and no retry", s, tt.cause)
			}
		})
	}
}

// Meta signs with the app secret; an endpoint that checks a different one
// answers 432, which WhatsApp does not retry.
func TestRequestsAreSignedWithTheAppSecretAsMetaSignsThem(t *testing.T) {
	f := newFixture(t, Options{Clients: 2, Seed: 5, AppSecret: []byte("another app's secret")})
	s := f.rounds(t, 1)
	if s.Failures != 2 || s.Causes["HTTP 432"] != 2 || s.Retries != 0 {
		t.Errorf("got %s; want 2 failures HTTP 432, no retry", s)
	}
	if got := Sign([]byte("key"), []byte("The quick brown fox jumps over the lazy dog")); got != "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8" {
		t.Errorf("Sign = %s, not HMAC-SHA256's known answer", got)
	}
}

func TestBothShapesOfTheKeyAnswerAreAcceptedAndUnusableKeysRefused(t *testing.T) {
	pemKey := publicPEM(t, testKeys()[0])
	tests := []struct {
		name, pem, status string
		flat              bool
		wantCause         string
	}{
		{"Graph's data[]", pemKey, "VALID", false, ""},
		{"the guide's flat object", pemKey, "VALID", true, ""},
		{"no key registered", "", "", false, CauseKeyFetch},
		{"MISMATCH with the blank key", " ", "MISMATCH", false, CauseKeyFetch},
		{"a key that is not PEM", "AAA", "VALID", true, CauseKeyFetch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{Clients: 2, Seed: 6})
			f.graph.serve(tt.pem, tt.status, tt.flat)
			s := f.rounds(t, 1)
			if tt.wantCause == "" {
				noFailures(t, s)
				return
			}
			if s.Failures != 2 || s.Causes[tt.wantCause] != 2 || s.Sent != 0 {
				t.Errorf("got %s; want 2 %q failures and nothing sent", s, tt.wantCause)
			}
		})
	}
}

// Key lifetimes are drawn per fetch from the seed, within the bounds; once
// a lifetime has passed the client fetches again.
func TestKeysAreCachedForASeededRandomTimeWithinTheBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := newFixture(t, Options{Clients: 20, Seed: 8, MinKeyTTL: time.Second, MaxKeyTTL: time.Minute, Now: clock})
	f.rounds(t, 1)
	var expiries []time.Duration
	for _, c := range f.pop.clients {
		ttl := c.expires.Sub(now)
		if ttl < time.Second || ttl > time.Minute {
			t.Errorf("client %d caches for %s, outside [1s, 1m]", c.id, ttl)
		}
		expiries = append(expiries, ttl)
	}
	again := newFixture(t, Options{Clients: 20, Seed: 8, MinKeyTTL: time.Second, MaxKeyTTL: time.Minute, Now: clock})
	again.rounds(t, 1)
	var short, long int
	for i, c := range again.pop.clients {
		if c.expires.Sub(now) != expiries[i] {
			t.Errorf("client %d: %s with the same seed, was %s", i, c.expires.Sub(now), expiries[i])
		}
		if expiries[i] < 8*time.Second {
			short++
		} else {
			long++
		}
	}
	if short == 0 || long == 0 {
		t.Errorf("%d short and %d long caches: the draw is not spread", short, long)
	}
	// Moving the clock past every lifetime makes every client fetch again.
	now = now.Add(time.Minute)
	before := f.pop.Stats()
	if s := f.rounds(t, 1).Sub(before); s.KeyFetches != 20 {
		t.Errorf("%d fetches after every lifetime passed, want 20", s.KeyFetches)
	}
}

func TestRateSpacesTheRequestsOfARound(t *testing.T) {
	f := newFixture(t, Options{Clients: 6, Seed: 9, Rate: 100})
	began := time.Now()
	noFailures(t, f.rounds(t, 1))
	// Five gaps of 10 ms: a lower bound, whatever the machine's speed.
	if took := time.Since(began); took < 50*time.Millisecond {
		t.Errorf("a round of 6 at 100/s took %s, want at least 50ms", took)
	}
}

func TestNewNamesEveryMissingOption(t *testing.T) {
	_, err := New(Options{})
	for _, name := range []string{"EndpointURL", "GraphURL", "GraphToken", "AppSecret", "Phones"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New(Options{}) = %v, want it to name %s", err, name)
		}
	}
}
