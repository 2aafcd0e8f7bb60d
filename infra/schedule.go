package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Schedule expressions: the rotation's (Secrets Manager) and the status
// command's (EventBridge). Both are rate(...) or a six-field cron(...)
// in UTC. Besides checking them, the stack needs the longest time between
// two runs of each: the rotation-overdue alarm waits that long plus the
// window, and the status heartbeat that long twice.

// Immutable patterns; regexp.Regexp is safe for concurrent use.
var (
	rateRE = regexp.MustCompile(`^rate\(([0-9]+) (hour|hours|day|days)\)$`)
	cronRE = regexp.MustCompile(`^cron\((\S+( \S+){5})\)$`)
	// EventBridge's rate expressions also have minutes.
	statusRateRE = regexp.MustCompile(`^rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)$`)
	minuteRE     = regexp.MustCompile(`^[0-9]{1,2}$`)
)

// scheduleHours checks a Secrets Manager ScheduleExpression and returns the
// interval in hours of a rate in hours (0 for days and cron).
func scheduleHours(expr string) (int, error) {
	if m := rateRE.FindStringSubmatch(expr); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, fmt.Errorf("%q has an unreadable number", clip(expr))
		}
		singular := !strings.HasSuffix(m[2], "s")
		if (n == 1) != singular {
			return 0, fmt.Errorf("%q: write \"1 day\" but \"%d %ss\"", expr, n, strings.TrimSuffix(m[2], "s"))
		}
		if strings.HasPrefix(m[2], "hour") {
			if n < 4 {
				return 0, fmt.Errorf("%q is more often than every 4 hours, the Secrets Manager minimum", expr)
			}
			return n, nil
		}
		if n < 1 || n > 1000 {
			return 0, fmt.Errorf("%q is outside 1-1000 days", expr)
		}
		return 0, nil
	}
	if m := cronRE.FindStringSubmatch(expr); m != nil {
		if strings.Fields(m[1])[0] != "0" {
			return 0, fmt.Errorf("%q: Secrets Manager requires the minutes field to be 0", expr)
		}
		if _, err := cronGapHours(m[1]); err != nil {
			return 0, fmt.Errorf("%q: %w", expr, err)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("%q is neither rate(...) nor cron(...)", clip(expr))
}

// rotationGapHours is the longest time, in whole hours, between two
// scheduled rotation starts of a valid ScheduleExpression.
func rotationGapHours(expr string) (int, error) {
	if m := rateRE.FindStringSubmatch(expr); m != nil {
		n, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "day") {
			n *= 24
		}
		return n, nil
	}
	if m := cronRE.FindStringSubmatch(expr); m != nil {
		return cronGapHours(m[1])
	}
	return 0, fmt.Errorf("%q is neither rate(...) nor cron(...)", clip(expr))
}

// maxStatusGapHours bounds the status schedule: the heartbeat alarm must
// see a gap of at least one missed run, and CloudWatch evaluates at most
// 7 days (168 hourly periods).
const maxStatusGapHours = 167

// checkStatusSchedule checks an EventBridge ScheduleExpression for the
// status command, or "off". Every status makes one Graph call per number
// against Meta's management budget of about 200 calls per hour per WABA,
// which rotations share, so it may run at most once an hour: a rate of at
// least an hour, or a cron that fires at one fixed minute. It must also
// run at least every maxStatusGapHours, so that its heartbeat alarm can
// watch it.
func checkStatusSchedule(expr string) error {
	if strings.EqualFold(expr, StatusScheduleOff) {
		return nil
	}
	gap, err := statusGapHours(expr)
	if err != nil {
		return err
	}
	if gap > maxStatusGapHours {
		return fmt.Errorf("%q leaves up to %d hours between two runs; the heartbeat alarm on the status can watch at most %d", expr, gap, maxStatusGapHours)
	}
	return nil
}

// statusGapHours checks a status schedule (not "off") and returns the
// number of consecutive hourly periods, at most, without a run.
func statusGapHours(expr string) (int, error) {
	if m := statusRateRE.FindStringSubmatch(expr); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%q needs a whole number of at least 1", clip(expr))
		}
		unit := strings.TrimSuffix(m[2], "s")
		if (n == 1) != (m[2] == unit) {
			return 0, fmt.Errorf("%q: write \"1 %s\" but \"%d %ss\"", expr, unit, n, unit)
		}
		switch unit {
		case "minute":
			if n < 60 {
				return 0, fmt.Errorf("%q is more often than hourly: each status costs one Graph call per number", expr)
			}
			return (n + 59) / 60, nil
		case "hour":
			return n, nil
		}
		return 24 * n, nil
	}
	if m := cronRE.FindStringSubmatch(expr); m != nil {
		f := strings.Fields(m[1])
		if minute, err := strconv.Atoi(f[0]); err != nil || !minuteRE.MatchString(f[0]) || minute > 59 {
			return 0, fmt.Errorf("%q: the minutes field must be one number from 0 to 59, so that the status runs at most hourly", expr)
		}
		// EventBridge rejects a day-of-month together with a day-of-week.
		if (f[2] == "?") == (f[4] == "?") {
			return 0, fmt.Errorf("%q: exactly one of day-of-month (3rd field) and day-of-week (5th field) must be \"?\"", expr)
		}
		gap, err := cronGapHours(m[1])
		if err != nil {
			return 0, fmt.Errorf("%q: %w", expr, err)
		}
		return gap, nil
	}
	if expr == "" {
		return 0, errors.New("is empty")
	}
	return 0, fmt.Errorf("%q is neither rate(...), cron(...) nor off", clip(expr))
}

// cronGapHours returns the longest time, in whole hours, between two
// firings of a six-field cron (minutes hours day-of-month month
// day-of-week year, UTC) whose minutes field is one number: it walks
// every hour of eight years, leap years and every weekday of every month
// included. The year field is checked but not applied: it ends a schedule,
// it does not space its runs.
func cronGapHours(fields string) (int, error) {
	f := strings.Fields(fields)
	if len(f) != 6 {
		return 0, fmt.Errorf("has %d fields, want 6", len(f))
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		return 0, errors.New("the minutes field must be one number to compute the interval")
	}
	hours, err := cronSet(f[1], 0, 23, nil)
	if err != nil {
		return 0, fmt.Errorf("hours field: %w", err)
	}
	months, err := cronSet(f[3], 1, 12, monthNames)
	if err != nil {
		return 0, fmt.Errorf("month field: %w", err)
	}
	day, err := cronDays(f[2], f[4])
	if err != nil {
		return 0, err
	}
	if _, err := cronSet(f[5], 1970, 2199, nil); err != nil {
		return 0, fmt.Errorf("year field: %w", err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const span = 8 * 366 * 24
	last, gap := -1, 0
	for h := range span {
		t := start.Add(time.Duration(h) * time.Hour)
		if !hours[t.Hour()] || !months[int(t.Month())] || !day(t) {
			continue
		}
		if last >= 0 && h-last > gap {
			gap = h - last
		}
		last = h
	}
	if gap == 0 {
		return 0, errors.New("fires less than twice in eight years")
	}
	return gap, nil
}

var (
	monthNames = []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}
	dayNames   = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}
	// Day-of-week forms: 6L (the last Friday), 2#1 (the first Monday).
	lastWeekdayRE = regexp.MustCompile(`^([1-7A-Z]{1,3})L$`)
	nthWeekdayRE  = regexp.MustCompile(`^([1-7A-Z]{1,3})#([1-5])$`)
	// Day-of-month forms: 15W (the weekday nearest the 15th), LW.
	nearestWeekdayRE = regexp.MustCompile(`^([0-9]{1,2})W$`)
)

// cronDays returns whether a day matches the day-of-month and day-of-week
// fields, one of which is "?".
func cronDays(dom, dow string) (func(time.Time) bool, error) {
	switch {
	case dom == "?" && dow == "?":
		return nil, errors.New(`day-of-month and day-of-week cannot both be "?"`)
	case dom != "?" && dow != "?":
		return nil, errors.New(`one of day-of-month and day-of-week must be "?"`)
	case dom == "?":
		return weekdayMatcher(dow)
	}
	return monthDayMatcher(dom)
}

func lastDay(t time.Time) int { return time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day() }

func monthDayMatcher(dom string) (func(time.Time) bool, error) {
	switch dom {
	case "L":
		return func(t time.Time) bool { return t.Day() == lastDay(t) }, nil
	case "LW":
		return func(t time.Time) bool { return t.Day() == nearestWeekday(t, lastDay(t)) }, nil
	}
	if m := nearestWeekdayRE.FindStringSubmatch(dom); m != nil {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > 31 {
			return nil, fmt.Errorf("day-of-month field: %q is outside 1-31", dom)
		}
		return func(t time.Time) bool { return t.Day() == nearestWeekday(t, min(n, lastDay(t))) }, nil
	}
	days, err := cronSet(dom, 1, 31, nil)
	if err != nil {
		return nil, fmt.Errorf("day-of-month field: %w", err)
	}
	return func(t time.Time) bool { return days[t.Day()] }, nil
}

// nearestWeekday is the weekday nearest day n of t's month, within the month.
func nearestWeekday(t time.Time, n int) int {
	d := time.Date(t.Year(), t.Month(), n, 0, 0, 0, 0, time.UTC)
	switch d.Weekday() {
	case time.Saturday:
		if n == 1 {
			return 3
		}
		return n - 1
	case time.Sunday:
		if n == lastDay(t) {
			return n - 2
		}
		return n + 1
	}
	return n
}

func weekdayMatcher(dow string) (func(time.Time) bool, error) {
	weekday := func(s string) (int, error) {
		set, err := cronSet(s, 1, 7, dayNames)
		for d := range set {
			if set[d] {
				return d, err
			}
		}
		return 0, fmt.Errorf("day-of-week field: %q is not one day", s)
	}
	if m := lastWeekdayRE.FindStringSubmatch(dow); m != nil {
		d, err := weekday(m[1])
		if err != nil {
			return nil, err
		}
		return func(t time.Time) bool { return int(t.Weekday())+1 == d && t.Day()+7 > lastDay(t) }, nil
	}
	if m := nthWeekdayRE.FindStringSubmatch(dow); m != nil {
		d, err := weekday(m[1])
		if err != nil {
			return nil, err
		}
		nth, _ := strconv.Atoi(m[2])
		return func(t time.Time) bool { return int(t.Weekday())+1 == d && (t.Day()-1)/7+1 == nth }, nil
	}
	days, err := cronSet(dow, 1, 7, dayNames)
	if err != nil {
		return nil, fmt.Errorf("day-of-week field: %w", err)
	}
	return func(t time.Time) bool { return days[int(t.Weekday())+1] }, nil
}

// cronSet parses a cron field of numbers lo-hi (or names for lo..): "*",
// "n", "a-b", steps "*/s", "n/s", "a-b/s", and comma-separated lists.
func cronSet(field string, lo, hi int, names []string) ([]bool, error) {
	set := make([]bool, hi+1)
	value := func(s string) (int, error) {
		for i, name := range names {
			if strings.EqualFold(s, name) {
				return lo + i, nil
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q is not a value from %d to %d", s, lo, hi)
		}
		return n, nil
	}
	for _, part := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			s, err := strconv.Atoi(stepText)
			if err != nil || s < 1 {
				return nil, fmt.Errorf("%q has no positive step", part)
			}
			step = s
		}
		from, to := lo, hi
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
		case isRange:
			var err error
			if from, err = value(a); err != nil {
				return nil, err
			}
			if to, err = value(b); err != nil {
				return nil, err
			}
			if to < from {
				return nil, fmt.Errorf("%q is a range that wraps around", part)
			}
		default:
			n, err := value(rng)
			if err != nil {
				return nil, err
			}
			from = n
			if !hasStep {
				to = n
			}
		}
		for v := from; v <= to; v += step {
			set[v] = true
		}
	}
	return set, nil
}
