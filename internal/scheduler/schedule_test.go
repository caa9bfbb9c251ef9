package scheduler

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNext(t *testing.T) {
	utc := time.UTC
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	for _, tc := range []struct {
		spec     string
		from     time.Time
		want     time.Time
		describe string
	}{
		{"0 3 * * *", at(utc, 2026, 11, 25, 2, 0), at(utc, 2026, 11, 25, 3, 0), "later today"},
		{"0 3 * * *", at(utc, 2026, 11, 25, 3, 0), at(utc, 2026, 11, 26, 3, 0), "strictly after"},
		{"*/15 * * * *", at(utc, 2026, 11, 25, 10, 7), at(utc, 2026, 11, 25, 10, 15), "step"},
		{"30 9 * * mon-fri", at(utc, 2026, 11, 27, 10, 0), at(utc, 2026, 11, 30, 9, 30), "Friday after → Monday"},
		{"0 0 29 2 *", at(utc, 2026, 3, 1, 0, 0), at(utc, 2028, 2, 29, 0, 0), "leap day"},
		{"0 0 31 * *", at(utc, 2026, 4, 1, 0, 0), at(utc, 2026, 5, 31, 0, 0), "skips short months"},
		{"0 12 1 * 1", at(utc, 2026, 6, 2, 0, 0), at(utc, 2026, 6, 8, 12, 0), "either day field (Vixie)"},
		{"0 0 * * 7", at(utc, 2026, 11, 25, 0, 0), at(utc, 2026, 11, 29, 0, 0), "7 is Sunday"},
		{"@monthly", at(utc, 2026, 12, 15, 0, 0), at(utc, 2027, 1, 1, 0, 0), "descriptor"},
		// Spring forward in Berlin: 02:30 on 29 March 2026 does not exist.
		{"30 2 * * *", at(berlin, 2026, 3, 28, 12, 0), time.Date(2026, 3, 29, 3, 30, 0, 0, berlin), "skipped time runs after the jump"},
		{"30 2 * * *", at(berlin, 2026, 3, 29, 4, 0), at(berlin, 2026, 3, 30, 2, 30), "next day normal"},
		// Fall back in New York: 01:30 happens twice on 1 November 2026.
		{"30 1 * * *", at(ny, 2026, 11, 1, 0, 0), at(ny, 2026, 11, 1, 1, 30), "repeated hour: first"},
		{"0 * * * *", time.Date(2026, 11, 1, 1, 10, 0, 0, ny).Add(time.Hour), time.Date(2026, 11, 1, 2, 0, 0, 0, ny), "hourly through the repeat"},
		{"@every 90m", at(utc, 2026, 1, 1, 0, 0), at(utc, 2026, 1, 1, 1, 30), "every"},
		{"0 0 29 2 *", at(utc, 2096, 3, 1, 0, 0), at(utc, 2104, 2, 29, 0, 0), "2100 is no leap year"},
		{"0 0 31 * *", at(utc, 2026, 1, 31, 0, 0), at(utc, 2026, 3, 31, 0, 0), "31st: February skipped"},
		// Fall back in Berlin: 02:30 happens twice on 25 October 2026; it
		// runs at the first, and the next run is the next day.
		{"30 2 * * *", at(berlin, 2026, 10, 25, 0, 0), time.Date(2026, 10, 25, 0, 30, 0, 0, utc), "repeated time: first instant"},
		{"30 2 * * *", time.Date(2026, 10, 25, 0, 45, 0, 0, utc).In(berlin), at(berlin, 2026, 10, 26, 2, 30), "repeated time: once"},
		// New York: 02:30 on 8 March 2026 does not exist; 01:30 on 1
		// November 2026 twice.
		{"30 2 * * *", at(ny, 2026, 3, 8, 0, 0), time.Date(2026, 3, 8, 3, 30, 0, 0, ny), "skipped: same day, an hour later"},
		{"30 1,2 * * *", at(ny, 2026, 3, 8, 1, 31), time.Date(2026, 3, 8, 3, 30, 0, 0, ny), "skipped hour after a due one"},
		{"30 1 * * *", time.Date(2026, 11, 1, 5, 31, 0, 0, utc).In(ny), at(ny, 2026, 11, 2, 1, 30), "repeated time not run twice"},
		{"15 * * * *", time.Date(2026, 11, 1, 5, 20, 0, 0, utc).In(ny), time.Date(2026, 11, 1, 2, 15, 0, 0, ny), "hourly: the repeated hour once"},
		// Havana moves from 00:00 to 01:00 on 8 March 2026: midnight never comes.
		{"0 0 * * *", at(mustLoc(t, "America/Havana"), 2026, 3, 7, 12, 0), at(mustLoc(t, "America/Havana"), 2026, 3, 8, 1, 0), "skipped midnight"},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := s.Next(tc.from); !got.Equal(tc.want) {
			t.Errorf("%s (%s): Next(%v) = %v, want %v", tc.spec, tc.describe, tc.from, got, tc.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, spec := range []string{"", "* * * *", "60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8",
		"5-1 * * * *", "*/0 * * * *", "@every 0s", "@every soon", "@fortnightly", "0 0 30 2 *", "0 0 31 4,6 *"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		}
	}
}

func TestMissed(t *testing.T) {
	s, _ := Parse("@every 1h")
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if !Missed(s, now.Add(-2*time.Hour), now) || Missed(s, now.Add(-30*time.Minute), now) || !Missed(s, time.Time{}, now) {
		t.Error("Missed is wrong")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/5 1-3,7 */2 jan-mar mon", "@every 5s", "@daily"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			return
		}
		from := time.Date(2026, 3, 29, 0, 0, 0, 0, mustLoc(t, "Europe/Berlin"))
		if n := s.Next(from); !n.IsZero() && !n.After(from) {
			t.Fatalf("%q: Next(%v) = %v, not after it", spec, from, n)
		}
		if _, err := Parse(s.String()); err != nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", spec, s.String(), err)
		}
	})
}
