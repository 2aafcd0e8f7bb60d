package operator

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The rotation-overdue alarm watches what status publishes: the time since
// the last successful rotation, or since the secret was made when it never
// rotated, published once per status before any call to Meta.
func TestStatusPublishesTheAgeOfTheLastRotation(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name               string
		lastRotated, made  time.Duration // ago; 0 for none
		breakToken         bool
		wantAge            time.Duration // 0: nothing published
		wantReportedInDays float64
	}{
		{name: "rotated 30 days ago", lastRotated: 30 * day, made: 90 * day, wantAge: 30 * day, wantReportedInDays: 30},
		{name: "never rotated: since creation", made: 2 * day, wantAge: 2 * day, wantReportedInDays: 2},
		{name: "no dates: nothing", wantAge: 0},
		{name: "published although the token cannot be read", lastRotated: 40 * day, breakToken: true, wantAge: 40 * day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.standard(t)
			start := time.Now()
			if tc.lastRotated > 0 {
				h.s.LastRotatedDate = aws.Time(start.Add(-tc.lastRotated))
			}
			if tc.made > 0 {
				h.s.CreatedDate = aws.Time(start.Add(-tc.made))
			}
			if tc.breakToken {
				h.sm.Delete(tokenSecret)
			}
			out, err := h.run(t, Command{Name: CommandStatus})
			if tc.breakToken != (err != nil) {
				t.Fatalf("status error %v", err)
			}
			elapsed := time.Since(start)
			switch {
			case tc.wantAge == 0 && len(h.metrics.ages) != 0:
				t.Fatalf("published %v without a date", h.metrics.ages)
			case tc.wantAge == 0:
				return
			case len(h.metrics.ages) != 1:
				t.Fatalf("published %d ages, want exactly 1", len(h.metrics.ages))
			}
			if got := h.metrics.ages[0]; got < tc.wantAge || got > tc.wantAge+elapsed {
				t.Errorf("published age %v, want %v (+ at most %v)", got, tc.wantAge, elapsed)
			}
			if tc.breakToken {
				return
			}
			r := out.(*StatusReport)
			if r.DaysSinceLastRotation == nil || *r.DaysSinceLastRotation < tc.wantReportedInDays || *r.DaysSinceLastRotation > tc.wantReportedInDays+0.01 {
				t.Errorf("days_since_last_rotation %v, want %v", r.DaysSinceLastRotation, tc.wantReportedInDays)
			}
		})
	}
}

// Only status publishes the age: rotate and resync never do.
func TestOnlyStatusPublishesTheRotationAge(t *testing.T) {
	h := newHarness(t, nil)
	h.standard(t)
	h.s.LastRotatedDate = aws.Time(time.Now().Add(-time.Hour))
	if _, err := h.run(t, Command{Name: CommandResync, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if len(h.metrics.ages) != 0 {
		t.Errorf("resync published the rotation age %v", h.metrics.ages)
	}
}
