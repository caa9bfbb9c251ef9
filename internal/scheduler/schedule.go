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
	}{
		{"minute", &c.minute, 0, 59, nil, 0}, {"hour", &c.hour, 0, 23, nil, 0}, {"day of month", &c.dom, 1, 31, nil, 0},
		{"month", &c.month, 1, 12, monthNames, 1}, {"day of week", &c.dow, 0, 7, dayNames, 0},
	}
	for i, fd := range fields {
		if *fd.dst, err = parseField(f[i], fd.min, fd.max, fd.names, fd.nameBase); err != nil {
			return nil, fmt.Errorf("schedule %q: %s: %w", spec, fd.name, err)
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domStar, c.dowStar = f[2] == "*" || strings.HasPrefix(f[2], "*/"), f[4] == "*" || strings.HasPrefix(f[4], "*/")
	// A day that never comes (30 February) would make Next search forever.
	if c.dowStar && !c.anyDay() {
		return nil, fmt.Errorf("schedule %q: that day of the month never occurs in the months given", spec)
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

// Next walks forward field by field in t's location. Times that a
// daylight-saving jump skips are run at the first instant after the jump;
// times that repeat run once.
func (c *cron) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<int(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if c.hour&(1<<t.Hour()) == 0 {
			next := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			if h := t.Hour() + 1; h < 24 && next.Hour() != h && c.hour&(1<<h) != 0 {
				// Summer time skipped hour h, which is due: run right
				// after the jump, as cron does.
				first := 0
				for c.minute&(1<<first) == 0 {
					first++
				}
				if at := time.Date(t.Year(), t.Month(), t.Day(), h, first, 0, 0, loc); at.After(t) {
					return at
				}
			}
			if !next.After(t) { // a repeated hour at the end of summer time
				next = t.Add(time.Hour).Truncate(time.Hour)
			}
			t = next
			continue
		}
		if c.minute&(1<<t.Minute()) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{} // never: a weekday and date that do not meet within five years
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
