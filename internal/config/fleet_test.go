package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTheFleetIsOffByDefault(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fleet.On() || c.Fleet != (Fleet{}) {
		t.Errorf("fleet = %+v, want off and zero", c.Fleet)
	}
	e, err := LoadEndpoint(env(minimalEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	if e.Fleet.On() || e.Fleet != (EndpointFleet{}) {
		t.Errorf("endpoint fleet = %+v, want off and zero", e.Fleet)
	}
}

func TestFleetDefaultsAndEveryVariable(t *testing.T) {
	c, err := Load(env(map[string]string{EnvFleetName: "flowkey-prod"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Fleet{Name: "flowkey-prod", SecretPrefix: "flowkey/tenants/", TokenPrefix: "flowkey/tokens/", RotationWindow: 2 * time.Hour, StatusConcurrency: 8}
	if c.Fleet != want {
		t.Errorf("defaults %+v\nwant %+v", c.Fleet, want)
	}
	all := map[string]string{
		EnvFleetName: "flowkey-prod", EnvFleetSecretPrefix: "bsp/keys/", EnvFleetTokenPrefix: "bsp/tokens/", EnvFleetAppSecretPrefix: "bsp/apps/",
		EnvFleetKMSKeyID: "arn:aws:kms:us-east-1:111122223333:key/1234", EnvFleetRotationWindow: "3h", EnvFleetStatusConcurrency: "16",
	}
	c, err = Load(env(all))
	if err != nil {
		t.Fatal(err)
	}
	want = Fleet{Name: "flowkey-prod", SecretPrefix: "bsp/keys/", TokenPrefix: "bsp/tokens/", AppSecretPrefix: "bsp/apps/",
		KMSKeyID: "arn:aws:kms:us-east-1:111122223333:key/1234", RotationWindow: 3 * time.Hour, StatusConcurrency: 16}
	if !reflect.DeepEqual(c.Fleet, want) {
		t.Errorf("got %+v\nwant %+v", c.Fleet, want)
	}
	if got := len(FleetNames()); got != len(all) {
		t.Errorf("FleetNames() lists %d variables, Load reads %d", got, len(all))
	}
	for _, n := range FleetNames() {
		for _, m := range Names() {
			if n == m {
				t.Errorf("%s is in Names() and FleetNames()", n)
			}
		}
	}
}

func TestEndpointFleet(t *testing.T) {
	e, err := LoadEndpoint(env(with(minimalEndpoint, EnvFleetName, "flowkey-prod")))
	if err != nil {
		t.Fatal(err)
	}
	if want := (EndpointFleet{Name: "flowkey-prod", SecretPrefix: "flowkey/tenants/", RingCache: 256}); e.Fleet != want {
		t.Errorf("defaults %+v, want %+v", e.Fleet, want)
	}
	e, err = LoadEndpoint(env(with(minimalEndpoint, EnvFleetName, "f", EnvFleetSecretPrefix, "k/", EnvFleetAppSecretPrefix, "a/", EnvEndpointRingCache, "1000")))
	if err != nil {
		t.Fatal(err)
	}
	if want := (EndpointFleet{Name: "f", SecretPrefix: "k/", AppSecretPrefix: "a/", RingCache: 1000}); e.Fleet != want {
		t.Errorf("got %+v, want %+v", e.Fleet, want)
	}
	if len(EndpointFleetNames()) != 4 {
		t.Errorf("EndpointFleetNames() lists %d variables, LoadEndpoint reads 4 more", len(EndpointFleetNames()))
	}
}

func TestInvalidFleetValuesNameTheVariable(t *testing.T) {
	on := func(kv ...string) map[string]string {
		m := map[string]string{EnvFleetName: "flowkey-prod"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		env      map[string]string
		variable string
		want     string
	}{
		{"a fleet variable without a fleet", map[string]string{EnvFleetSecretPrefix: "x/"}, EnvFleetSecretPrefix, "is set while FLEET_NAME is empty"},
		{"name", on(EnvFleetName, "my fleet"), EnvFleetName, "letters, digits"},
		{"prefix without a slash", on(EnvFleetSecretPrefix, "flowkey/tenants"), EnvFleetSecretPrefix, `ending with "/"`},
		{"prefix with a space", on(EnvFleetTokenPrefix, "a b/"), EnvFleetTokenPrefix, `ending with "/"`},
		{"token prefix inside the tenants'", on(EnvFleetTokenPrefix, "flowkey/tenants/tokens/"), EnvFleetTokenPrefix, "overlaps FLEET_SECRET_PREFIX"},
		{"tenants' prefix inside the app secrets'", on(EnvFleetAppSecretPrefix, "flowkey/"), EnvFleetAppSecretPrefix, "overlaps FLEET_SECRET_PREFIX"},
		{"window in minutes", on(EnvFleetRotationWindow, "90m"), EnvFleetRotationWindow, "whole number of hours"},
		{"window too long", on(EnvFleetRotationWindow, "13h"), EnvFleetRotationWindow, "whole number of hours"},
		{"concurrency", on(EnvFleetStatusConcurrency, "0"), EnvFleetStatusConcurrency, "from 1 to 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tc.variable {
				t.Fatalf("want *Error for %s, got %v", tc.variable, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
				t.Errorf("error %q lacks %q or a fix", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, variable, value, want string }{
		{"ring cache", EnvEndpointRingCache, "0", "from 1 to 100000"},
		{"ring cache without a fleet", EnvEndpointRingCache, "", "is set while FLEET_NAME is empty"},
	} {
		t.Run("endpoint "+tc.name, func(t *testing.T) {
			m := with(minimalEndpoint, EnvFleetName, "f", tc.variable, tc.value)
			if tc.value == "" {
				m = with(minimalEndpoint, tc.variable, "12")
			}
			_, err := LoadEndpoint(env(m))
			var ce *Error
			if !errors.As(err, &ce) || ce.Variable != tc.variable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want *Error for %s with %q, got %v", tc.variable, tc.want, err)
			}
		})
	}
}
