// Package scheduler holds the daemon's clock and queue: schedules (cron
// and @every), a job queue with a concurrency limit where two jobs never
// touch one unit at once, and a job history kept on disk.
package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule says when a job is due.
type Schedule interface {
	// Next is the first time strictly after t when the job is due.
	Next(t time.Time) time.Time
	String() string
}

// Parse reads a schedule: a five-field cron expression (minute hour
// day-of-month month day-of-week, with lists, ranges, steps and names),
// @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually), or
// @every DURATION (at least 1s).
func Parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || every < time.Second {
			return nil, fmt.Errorf("schedule %q: @every needs a duration of at least 1s, as @every 6h", spec)
		}
		return everySchedule{every}, nil
	}
	if alias, ok := map[string]string{"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
		"@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}[spec]; ok {
		s, err := parseCron(alias)
		if s != nil {
			s.spec = spec
		}
		return s, err
	}
	s, err := parseCron(spec)
	if err != nil {
		return nil, err
	}
	return s, nil
}

type everySchedule struct{ d time.Duration }

func (e everySchedule) Next(t time.Time) time.Time { return t.Add(e.d) }
func (e everySchedule) String() string             { return "@every " + e.d.String() }

// cron is a parsed expression: bit sets of allowed values.
type cron struct {
	spec                          string
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

func parseCron(spec string) (*cron, error) {
	f := strings.Fields(spec)
	if len(f) != 5 {
		return nil, fmt.Errorf("schedule %q: a cron expression has five fields (minute hour day month weekday), as \"0 3 * * *\"; or use @daily, @every 6h", spec)
	}
	c := &cron{spec: spec}
	var err error
	fields := []struct {
		name     string
		dst      *uint64
		min, max int
		names    []string
		nameBase int
		example  string
	}{
		{"minute", &c.minute, 0, 59, nil, 0, "*/15 * * * *"},
		{"hour", &c.hour, 0, 23, nil, 0, "0 3,15 * * *"},
		{"day of month", &c.dom, 1, 31, nil, 0, "0 3 1,15 * *"},
		{"month", &c.month, 1, 12, monthNames, 1, "0 3 1 jan,jul *"},
		{"day of week", &c.dow, 0, 7, dayNames, 0, "0 3 * * mon-fri"},
	}
	for i, fd := range fields {
		if *fd.dst, err = parseField(f[i], fd.min, fd.max, fd.names, fd.nameBase); err != nil {
			return nil, fmt.Errorf("schedule %q: %s: %w; a valid one: %q", spec, fd.name, err, fd.example)
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domStar, c.dowStar = f[2] == "*" || strings.HasPrefix(f[2], "*/"), f[4] == "*" || strings.HasPrefix(f[4], "*/")
	// A day that never comes (30 February) would make Next search forever.
	if c.dowStar && !c.anyDay() {
		return nil, fmt.Errorf("schedule %q: no month given has that day, so it would never run; a valid one: \"0 3 28 2 *\" (28 February)", spec)
	}
	return c, nil
}

// anyDay reports whether some allowed month has some allowed day.
func (c *cron) anyDay() bool {
	days := []int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= days[m-1]; d++ {
			if c.dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}

func parseField(s string, min, max int, names []string, nameBase int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q is not a positive number", stepS)
			}
			step = n
		}
		lo, hi := min, max
		switch {
		case rng == "*":
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, min, max, names, nameBase); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = value(b, min, max, names, nameBase); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %q runs backwards", rng)
				}
			} else if hasStep {
				hi = max
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func value(s string, min, max int, names []string, base int) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i + base, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min || v > max {
		return 0, fmt.Errorf("%q is not between %d and %d", s, min, max)
	}
	return v, nil
}

func (c *cron) String() string { return c.spec }

// dayMatches applies Vixie cron's rule: when both day fields are
// restricted, either may match.
func (c *cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}

// searchDays bounds Next's search: the longest wait between two runs of
// a valid expression is for 29 February across a century year that is no
// leap year (2096 to 2104).
const searchDays = 366 * 9

// Next is the first run strictly after t, in t's location. It goes day by
// day over wall-clock dates, so a clock change can neither hide a day nor
// make the search loop: a time that summer time skips runs that much
// later (02:30 becomes 03:30), and a time that repeats when summer time
// ends runs once, at its first instant.
func (c *cron) Next(t time.Time) time.Time {
	loc := t.Location()
	y, m, d := t.Date()
	// The day before too: its late times may be pushed past t by a gap.
	day := time.Date(y, m, d-1, 12, 0, 0, 0, loc)
	end := day.AddDate(0, 0, searchDays)
	for day.Before(end) {
		if c.month&(1<<int(day.Month())) == 0 {
			day = time.Date(day.Year(), day.Month()+1, 1, 12, 0, 0, 0, loc)
			continue
		}
		if c.dayMatches(day) {
			if at := c.firstOn(day, t); !at.IsZero() {
				return at
			}
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 12, 0, 0, 0, loc)
	}
	return time.Time{} // never: a weekday and date that do not meet within the search
}

// maxShift is the most a clock change moves a wall time; real zones shift
// by 30 minutes to 2 hours.
const maxShift = 3 * time.Hour

// firstOn is the earliest run on day's date that is after t, or zero.
func (c *cron) firstOn(day, t time.Time) time.Time {
	var best time.Time
	for h := 0; h < 24; h++ {
		if c.hour&(1<<h) == 0 {
			continue
		}
		// Wall order is instant order but for clock changes: once a run is
		// found, only the next few hours can hold an earlier instant.
		hourStart := wallTime(day, h, 0)
		if !best.IsZero() && hourStart.Sub(best) > maxShift {
			break
		}
		if hourStart.Add(time.Hour + maxShift).Before(t) {
			continue
		}
		for mi := 0; mi < 60; mi++ {
			if c.minute&(1<<mi) == 0 {
				continue
			}
			if at := wallTime(day, h, mi); at.After(t) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
	}
	return best
}

// wallTime places hour:minute of day's date in day's location. A time
// that summer time skips moves forward by the gap, and a repeated time
// gets its first instant, whichever of the two time.Date would pick.
func wallTime(day time.Time, h, mi int) time.Time {
	y, m, d := day.Date()
	at := time.Date(y, m, d, h, mi, 0, 0, day.Location())
	want := time.Date(y, m, d, h, mi, 0, 0, time.UTC)
	got := time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), 0, 0, time.UTC)
	if got.Before(want) { // skipped, and time.Date went back by the gap
		return at.Add(want.Sub(got))
	}
	if got.After(want) { // skipped, and time.Date went forward
		return at
	}
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if e := at.Add(-back); e.Hour() == h && e.Minute() == mi && e.Day() == d {
			return e
		}
	}
	return at
}

// Missed reports whether a run fell due between last and now: the daemon
// runs such a job once at start.
func Missed(s Schedule, last, now time.Time) bool {
	if last.IsZero() {
		return true
	}
	n := s.Next(last)
	return !n.IsZero() && !n.After(now)
}
