package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention is a grandfather-father-son policy: how many of the newest
// points to keep, and how many hourly, daily, ... ones. Zero everywhere
// means keep everything.
type Retention struct {
	Last    int `json:"last,omitempty"`
	Hourly  int `json:"hourly,omitempty"`
	Daily   int `json:"daily,omitempty"`
	Weekly  int `json:"weekly,omitempty"`
	Monthly int `json:"monthly,omitempty"`
	Yearly  int `json:"yearly,omitempty"`
}

// IsZero reports whether r keeps everything.
func (r Retention) IsZero() bool { return r == Retention{} }

// Validate refuses negative counts: a negative --keep-last would otherwise
// read as "keep none" and forget all but the newest point.
func (r Retention) Validate() error {
	for _, f := range []struct {
		k string
		n int
	}{{"last", r.Last}, {"hourly", r.Hourly}, {"daily", r.Daily}, {"weekly", r.Weekly}, {"monthly", r.Monthly}, {"yearly", r.Yearly}} {
		if f.n < 0 {
			return fmt.Errorf("--keep-%s %d: a count of points to keep cannot be negative", f.k, f.n)
		}
	}
	return nil
}

// ParseRetention reads the label form "last=3,daily=7,weekly=4".
func ParseRetention(v string) (Retention, error) {
	var r Retention
	fields := map[string]*int{"last": &r.Last, "hourly": &r.Hourly, "daily": &r.Daily, "weekly": &r.Weekly, "monthly": &r.Monthly, "yearly": &r.Yearly}
	for _, part := range splitList(v) {
		k, val, ok := strings.Cut(part, "=")
		k = strings.TrimPrefix(strings.TrimSpace(k), "keep-")
		dst, known := fields[k]
		if !ok || !known {
			return Retention{}, fmt.Errorf("retention %q: write it like last=3,daily=7,weekly=4 (last, hourly, daily, weekly, monthly, yearly)", v)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return Retention{}, fmt.Errorf("retention %q: %s must be a count, not %q", v, k, val)
		}
		*dst = n
	}
	return r, nil
}

// String gives the label form back.
func (r Retention) String() string {
	var parts []string
	for _, f := range []struct {
		k string
		n int
	}{{"last", r.Last}, {"hourly", r.Hourly}, {"daily", r.Daily}, {"weekly", r.Weekly}, {"monthly", r.Monthly}, {"yearly", r.Yearly}} {
		if f.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", f.k, f.n))
		}
	}
	return strings.Join(parts, ",")
}

// Keep decides which restore points r keeps. times are the points' times,
// newest first; the result gives, per point, why it is kept (nil: it may be
// forgotten). The newest point is always kept, whatever r says, so
// retention never deletes a unit's last good point; a zero r keeps all.
func (r Retention) Keep(times []time.Time) [][]string {
	reasons := make([][]string, len(times))
	if len(times) == 0 {
		return reasons
	}
	if r.IsZero() {
		for i := range reasons {
			reasons[i] = []string{"no retention policy"}
		}
		return reasons
	}
	for i := 0; i < len(times) && i < r.Last; i++ {
		reasons[i] = append(reasons[i], "last")
	}
	for _, b := range []struct {
		name string
		n    int
		key  func(time.Time) string
	}{
		{"hourly", r.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{"daily", r.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", r.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", r.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
		{"yearly", r.Yearly, func(t time.Time) string { return t.Format("2006") }},
	} {
		last, kept := "", 0
		for i, t := range times {
			if kept >= b.n {
				break
			}
			// Newest first: the first point of each period is that
			// period's newest, the one GFS keeps.
			if k := b.key(t.UTC()); k != last {
				last = k
				kept++
				reasons[i] = append(reasons[i], b.name)
			}
		}
	}
	if len(reasons[0]) == 0 {
		reasons[0] = []string{"newest"}
	}
	return reasons
}
