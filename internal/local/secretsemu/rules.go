package secretsemu

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rotationRules is RotationRulesType.
type rotationRules struct {
	AutomaticallyAfterDays *int64  `json:"AutomaticallyAfterDays,omitempty"`
	Duration               *string `json:"Duration,omitempty"`
	ScheduleExpression     *string `json:"ScheduleExpression,omitempty"`
}

// schedule is a validated rotation schedule.
type schedule struct {
	every time.Duration // rate() and AutomaticallyAfterDays
	cron  *cronExpr
}

// Limits from the Secrets Manager API reference (RotationRulesType) and the
// user guide's "Rotation schedules".
const (
	minRotationInterval = 4 * time.Hour
	maxAfterDays        = 1000 // AutomaticallyAfterDays: 1..1000
	maxRateDays         = 999  // "The maximum rotation period is 999 days."
	day                 = 24 * time.Hour
)

var (
	rateRe     = regexp.MustCompile(`^rate\(\s*(\d+)\s+(hour|hours|day|days)\s*\)$`)
	cronRe     = regexp.MustCompile(`^cron\((.*)\)$`)
	durationRe = regexp.MustCompile(`^(\d+)h$`)
)

// validateRules checks rules as RotateSecret does and returns the schedule.
// now anchors the cron checks, which look a year ahead.
func validateRules(r rotationRules, now time.Time) (schedule, error) {
	if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
		return schedule{}, errInvalidParameter("You cannot specify both rotation frequency and schedule expression together.")
	}
	var sch schedule
	switch {
	case r.AutomaticallyAfterDays != nil:
		n := *r.AutomaticallyAfterDays
		if n < 1 || n > maxAfterDays {
			return schedule{}, errInvalidParameter(fmt.Sprintf(
				"RotationRules.AutomaticallyAfterDays is %d; it must be between 1 and %d days. For a schedule in hours use ScheduleExpression rate(N hours), N ≥ 4.", n, maxAfterDays))
		}
		sch.every = time.Duration(n) * day
	case r.ScheduleExpression != nil:
		expr := strings.TrimSpace(*r.ScheduleExpression)
		switch {
		case rateRe.MatchString(expr):
			m := rateRe.FindStringSubmatch(expr)
			n, err := strconv.ParseInt(m[1], 10, 64)
			unit := time.Hour
			if strings.HasPrefix(m[2], "day") {
				unit = day
			}
			if err != nil || n < 1 || (unit == day && n > maxRateDays) || (unit == time.Hour && n > maxRateDays*24) {
				return schedule{}, errInvalidParameter(fmt.Sprintf(
					"RotationRules.ScheduleExpression %q: the rate must be between 4 hours and %d days.", expr, maxRateDays))
			}
			sch.every = time.Duration(n) * unit
			if sch.every < minRotationInterval {
				return schedule{}, errInvalidParameter(fmt.Sprintf(
					"RotationRules.ScheduleExpression %q: you can rotate a secret at most every 4 hours; use rate(4 hours) or longer.", expr))
			}
		case cronRe.MatchString(expr):
			c, err := parseCron(cronRe.FindStringSubmatch(expr)[1])
			if err != nil {
				return schedule{}, errInvalidParameter(fmt.Sprintf("RotationRules.ScheduleExpression %q: %v.", expr, err))
			}
			if _, gap, ok := c.minGap(now); !ok {
				return schedule{}, errInvalidParameter(fmt.Sprintf(
					"RotationRules.ScheduleExpression %q matches no time in the coming year; check the day and month fields.", expr))
			} else if gap < minRotationInterval {
				return schedule{}, errInvalidParameter(fmt.Sprintf(
					"RotationRules.ScheduleExpression %q fires %s apart; you can rotate a secret at most every 4 hours.", expr, gap))
			}
			sch.cron = c
		default:
			return schedule{}, errInvalidParameter(fmt.Sprintf(
				"RotationRules.ScheduleExpression %q is neither rate(N hours|days) nor cron(Minutes Hours Day-of-month Month Day-of-week Year).", expr))
		}
	default:
		return schedule{}, errInvalidParameter(
			"RotationRules needs AutomaticallyAfterDays or ScheduleExpression, for example {\"ScheduleExpression\":\"rate(30 days)\",\"Duration\":\"4h\"}.")
	}
	if r.Duration != nil {
		if err := sch.checkWindow(*r.Duration, now); err != nil {
			return schedule{}, err
		}
	}
	return sch, nil
}

// checkWindow applies the user guide's window rules: 1 to 24 hours, not
// into the next UTC day, not into the next rotation window.
func (sch schedule) checkWindow(d string, now time.Time) error {
	m := durationRe.FindStringSubmatch(d)
	n := 0
	if m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	if m == nil || n < 1 || n > 24 {
		return errInvalidParameter(fmt.Sprintf(
			"RotationRules.Duration %q: the window is a whole number of hours from 1h to 24h, for example \"4h\".", d))
	}
	window := time.Duration(n) * time.Hour
	switch {
	case sch.cron != nil:
		last, gap, _ := sch.cron.minGap(now)
		if time.Duration(last)*time.Hour+window > day {
			return errInvalidParameter(fmt.Sprintf(
				"RotationRules.Duration %q: a window opening at %02d:00 UTC would extend into the next UTC day.", d, last))
		}
		if window > gap {
			return errInvalidParameter(fmt.Sprintf(
				"RotationRules.Duration %q is longer than the %s between rotations; the window must not extend into the next one.", d, gap))
		}
	case window > sch.every:
		return errInvalidParameter(fmt.Sprintf(
			"RotationRules.Duration %q is longer than the %s between rotations; the window must not extend into the next one.", d, sch.every))
	}
	return nil
}

// next is the start of the next rotation window after t.
func (sch schedule) next(t time.Time) (time.Time, bool) {
	if sch.cron != nil {
		return sch.cron.next(t)
	}
	if sch.every > 0 {
		return t.Add(sch.every), true
	}
	return time.Time{}, false
}

// cronExpr is Secrets Manager's cron(Minutes Hours Day-of-month Month
// Day-of-week Year): minutes must be 0, the year must be *, exactly one of
// the day fields must be ?, and times are UTC.
type cronExpr struct {
	hours    uint32 // bit h
	months   uint16 // bit m, 1..12
	domAny   bool   // "?"
	dom      uint32 // bit d, 1..31
	domLast  bool   // "L"
	dowAny   bool   // "?"
	dow      uint8  // bit w, 1=SUN..7=SAT
	dowNth   [2]int // weekday, n for "w#n"
	dowLastW int    // weekday for "wL"
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
)

func parseCron(s string) (*cronExpr, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("a cron expression has 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), this one has %d", len(f))
	}
	if f[0] != "0" {
		return nil, fmt.Errorf("the minutes field is %q; it must be 0 because rotation windows open on the hour", f[0])
	}
	if f[5] != "*" {
		return nil, fmt.Errorf("the year field is %q; it must be * because schedules more than a year apart are not supported", f[5])
	}
	c := &cronExpr{}
	hours, err := parseField(f[1], 0, 23, nil)
	if err != nil {
		return nil, fmt.Errorf("hours field: %w", err)
	}
	c.hours = uint32(hours)
	months, err := parseField(f[3], 1, 12, monthNames)
	if err != nil {
		return nil, fmt.Errorf("month field: %w", err)
	}
	c.months = uint16(months)
	if (f[2] == "?") == (f[4] == "?") {
		return nil, fmt.Errorf("exactly one of day-of-month (%q) and day-of-week (%q) must be ?", f[2], f[4])
	}
	switch {
	case f[2] == "?":
		c.domAny = true
	case f[2] == "L":
		c.domLast = true
	default:
		dom, err := parseField(f[2], 1, 31, nil)
		if err != nil {
			return nil, fmt.Errorf("day-of-month field: %w", err)
		}
		c.dom = uint32(dom)
	}
	switch w := strings.ToUpper(f[4]); {
	case w == "?":
		c.dowAny = true
	case w == "L":
		c.dow = 1 << 7 // the last day of the week: Saturday
	case strings.Contains(w, "#"):
		a, b, _ := strings.Cut(w, "#")
		wd, err1 := parseValue(a, 1, 7, dayNames)
		n, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || n < 1 || n > 5 {
			return nil, fmt.Errorf("day-of-week %q: want weekday#n with n from 1 to 5, for example MON#1", f[4])
		}
		c.dowNth = [2]int{wd, n}
	case len(w) > 1 && strings.HasSuffix(w, "L"):
		wd, err := parseValue(strings.TrimSuffix(w, "L"), 1, 7, dayNames)
		if err != nil {
			return nil, fmt.Errorf("day-of-week %q: want weekdayL, for example FRIL or 6L", f[4])
		}
		c.dowLastW = wd
	default:
		dow, err := parseField(w, 1, 7, dayNames)
		if err != nil {
			return nil, fmt.Errorf("day-of-week field: %w", err)
		}
		c.dow = uint8(dow)
	}
	return c, nil
}

// parseField reads a list of *, n, a-b, */s, a/s, a-b/s into a bit set.
func parseField(s string, lo, hi int, names []string) (uint64, error) {
	var set uint64
	for part := range strings.SplitSeq(s, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("%q: the increment after / must be a whole number ≥ 1", part)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err error
			if a, err = parseValue(x, lo, hi, names); err != nil {
				return 0, err
			}
			if b, err = parseValue(y, lo, hi, names); err != nil {
				return 0, err
			}
			if a > b {
				return 0, fmt.Errorf("%q: the range runs backwards", part)
			}
		default:
			var err error
			if a, err = parseValue(rng, lo, hi, names); err != nil {
				return 0, err
			}
			if !hasStep {
				b = a
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func parseValue(s string, lo, hi int, names []string) (int, error) {
	if i := slices.Index(names, strings.ToUpper(s)); i >= 0 {
		return lo + i, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
	}
	return n, nil
}

// matchesDay reports whether the cron fires on the UTC date of t.
func (c *cronExpr) matchesDay(t time.Time) bool {
	if c.months&(1<<int(t.Month())) == 0 {
		return false
	}
	d := t.Day()
	lastDay := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if !c.domAny {
		if c.domLast {
			return d == lastDay
		}
		return c.dom&(1<<d) != 0
	}
	wd := int(t.Weekday()) + 1 // 1=SUN
	switch {
	case c.dowNth[0] != 0:
		return wd == c.dowNth[0] && (d-1)/7+1 == c.dowNth[1]
	case c.dowLastW != 0:
		return wd == c.dowLastW && d+7 > lastDay
	}
	return c.dow&(1<<wd) != 0
}

// horizon is how far ahead the cron is evaluated: every allowed expression
// fires within a year, and a little more covers leap days and month ends.
const horizon = 400 * day

// next returns the first firing time strictly after t.
func (c *cronExpr) next(t time.Time) (time.Time, bool) {
	t = t.UTC()
	d0 := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	for d := d0; d.Sub(d0) <= horizon; d = d.AddDate(0, 0, 1) {
		if !c.matchesDay(d) {
			continue
		}
		for h := range 24 {
			if c.hours&(1<<h) == 0 {
				continue
			}
			if at := d.Add(time.Duration(h) * time.Hour); at.After(t) {
				return at, true
			}
		}
	}
	return time.Time{}, false
}

// minGap returns the latest hour the cron opens a window at, and the
// shortest time between two consecutive firings over the coming year.
// ok is false when it never fires.
func (c *cronExpr) minGap(now time.Time) (lastHour int, gap time.Duration, ok bool) {
	for h := range 24 {
		if c.hours&(1<<h) != 0 {
			lastHour = h
		}
	}
	prev, ok := c.next(now)
	if !ok {
		return 0, 0, false
	}
	gap = horizon
	for {
		at, more := c.next(prev)
		if !more || at.Sub(now) > horizon {
			return lastHour, gap, true
		}
		gap = min(gap, at.Sub(prev))
		prev = at
	}
}
