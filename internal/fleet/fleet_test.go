package fleet

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestTenantIDs(t *testing.T) {
	for _, id := range []string{"a", "0", "acme", "acme-2", "9lives", strings.Repeat("a", 63)} {
		if !ValidTenantID(id) {
			t.Errorf("%q rejected", id)
		}
	}
	for _, id := range []string{"", "-acme", "Acme", "acme_2", "acme/2", "acme 2", "acme.2", strings.Repeat("a", 64), "é"} {
		if ValidTenantID(id) {
			t.Errorf("%q accepted", id)
		}
	}
}

func TestSecretNamesAndTenants(t *testing.T) {
	if got := SecretName(DefaultSecretPrefix, "acme"); got != "flowkey/tenants/acme" {
		t.Errorf("SecretName = %q", got)
	}
	for name, want := range map[string]string{"flowkey/tenants/acme": "acme", "flowkey/tenants/": "", "flowkey/tenants/Acme": "", "other/acme": "", "flowkey/tenants/a/b": ""} {
		got, ok := TenantOf(DefaultSecretPrefix, name)
		if got != want && ok || ok != (want != "") {
			t.Errorf("TenantOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

// Every schedule is valid for Secrets Manager (a day every month has, a
// window inside the UTC day), never changes, and differs between fleets.
func TestSchedulesAreValidAndStable(t *testing.T) {
	for _, w := range []time.Duration{time.Hour, 2 * time.Hour, 12 * time.Hour} {
		for i := range 5000 {
			s := ScheduleFor("stack", fmt.Sprintf("t%d", i), w)
			if s.Day < 1 || s.Day > 28 || s.Hour < 0 || s.Hour+s.Window > 24 || s.Window != int(w/time.Hour) {
				t.Fatalf("window %s: %+v", w, s)
			}
		}
	}
	a, b := ScheduleFor("stack", "acme", DefaultWindow), ScheduleFor("stack", "acme", DefaultWindow)
	if a != b {
		t.Errorf("not stable: %+v %+v", a, b)
	}
	if got := a.Expression(); got != fmt.Sprintf("cron(0 %d %d * ? *)", a.Hour, a.Day) || a.Duration() != "2h" {
		t.Errorf("expression %q, duration %q", got, a.Duration())
	}
	same := 0
	for i := range 100 {
		if ScheduleFor("a", fmt.Sprint(i), DefaultWindow) == ScheduleFor("b", fmt.Sprint(i), DefaultWindow) {
			same++
		}
	}
	if same > 3 {
		t.Errorf("%d of 100 tenants share a slot across two fleets", same)
	}
}

// 2,000 tenants enrolled on one day spread over the 644 window starts as
// the package documentation says: about 3 per start, none crowded.
func TestSchedulesSpreadTheLoad(t *testing.T) {
	const n = 2000
	slots := map[Schedule]int{}
	for i := range n {
		slots[ScheduleFor("flowkey-prod", fmt.Sprintf("tenant-%d", i), DefaultWindow)]++
	}
	if len(slots) < 600 {
		t.Errorf("%d of 644 window starts used", len(slots))
	}
	busiest := 0
	for _, c := range slots {
		busiest = max(busiest, c)
	}
	mean := float64(n) / 644
	if limit := mean + 4*math.Sqrt(mean); float64(busiest) > limit {
		t.Errorf("busiest window start holds %d tenants, more than %.1f", busiest, limit)
	}
}

func TestNextWindowStart(t *testing.T) {
	s := Schedule{Day: 15, Hour: 9, Window: 2}
	for now, want := range map[time.Time]time.Time{
		time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC):  time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC):  time.Date(2026, 2, 15, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC): time.Date(2027, 1, 15, 9, 0, 0, 0, time.UTC),
	} {
		if got := s.Next(now); !got.Equal(want) {
			t.Errorf("Next(%s) = %s, want %s", now, got, want)
		}
	}
	// The longest gap between two starts is a 31-day month, inside OverdueAfter.
	jan := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	if gap := s.Next(jan).Sub(jan); gap != 31*24*time.Hour || gap+2*time.Hour >= OverdueAfter(2*time.Hour) {
		t.Errorf("gap %s, overdue after %s", gap, OverdueAfter(2*time.Hour))
	}
}

func TestWindows(t *testing.T) {
	for w, ok := range map[time.Duration]bool{time.Hour: true, 2 * time.Hour: true, 12 * time.Hour: true, 0: false, 30 * time.Minute: false, 90 * time.Minute: false, 13 * time.Hour: false} {
		if ValidWindow(w) != ok {
			t.Errorf("ValidWindow(%s) = %v", w, !ok)
		}
	}
}

func TestEnrollTokenIsDeterministic(t *testing.T) {
	a := EnrollToken("f", "acme", `{"waba_id":"1"}`)
	if a != EnrollToken("f", "acme", `{"waba_id":"1"}`) || a == EnrollToken("f", "acme", `{"waba_id":"2"}`) || a == EnrollToken("g", "acme", `{"waba_id":"1"}`) {
		t.Error("the token is not a function of fleet, tenant and configuration")
	}
	if len(a) != 36 {
		t.Errorf("token %q is not a UUID (Secrets Manager wants 32-64 characters)", a)
	}
}

func TestUnqualifiedFunctionARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator":         "arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator",
		"arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator:$LATEST": "arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator",
		"arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator:live":    "arn:aws:lambda:us-east-1:123456789012:function:flowkey-rotator",
		"arn:aws-cn:lambda:cn-north-1:123456789012:function:flowkey-rotator:7":   "arn:aws-cn:lambda:cn-north-1:123456789012:function:flowkey-rotator",
		"arn:aws:lambda:us-east-1:123456789012:layer:x":                          "",
		"flowkey-rotator": "",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:flowkey/key-AbCdEf": "",
	} {
		got, ok := UnqualifiedFunctionARN(in)
		if got != want || ok != (want != "") {
			t.Errorf("UnqualifiedFunctionARN(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestInPrefix(t *testing.T) {
	for id, want := range map[string]bool{
		"flowkey/tokens/acme": true,
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:flowkey/tokens/acme-AbCdEf": true,
		"flowkey/tokens/": false,
		"flowkey/token":   false,
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:other/acme-AbCdEf": false,
		"arn:aws:kms:us-east-1:123456789012:key/flowkey/tokens/x":                false,
	} {
		if InPrefix(id, DefaultTokenPrefix) != want {
			t.Errorf("InPrefix(%q) = %v", id, !want)
		}
	}
	if InPrefix("flowkey/tokens/acme", "") {
		t.Error("an empty prefix admits a secret")
	}
}
