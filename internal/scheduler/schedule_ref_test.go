package scheduler

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// refNext is Next by brute force over wall-clock times: every matching
// local date and time is placed as Next places it (a skipped time moves
// forward by the gap, a repeated time takes its first instant) and the
// earliest after t wins.
func refNext(c *cron, t time.Time) time.Time {
	loc := t.Location()
	y, m, d := t.Date()
	var best time.Time
	for i := -1; i < 366*9; i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, loc)
		if !best.IsZero() && day.Sub(best) > 48*time.Hour {
			break
		}
		if c.month&(1<<int(day.Month())) == 0 || !c.dayMatches(day) {
			continue
		}
		for h := 0; h < 24; h++ {
			if c.hour&(1<<h) == 0 {
				continue
			}
			for mi := 0; mi < 60; mi++ {
				if c.minute&(1<<mi) == 0 {
					continue
				}
				u := wallTime(day, h, mi)
				if u.After(t) && (best.IsZero() || u.Before(best)) {
					best = u
				}
			}
		}
	}
	return best
}

// TestNextMatchesReference follows runs through clock changes in zones
// with summer time at 02:00, at midnight and by half an hour.
func TestNextMatchesReference(t *testing.T) {
	zones := map[string][]time.Time{
		"Europe/Berlin":       {utcAt(2026, 3, 29, 1), utcAt(2026, 10, 25, 1)},
		"America/New_York":    {utcAt(2026, 3, 8, 7), utcAt(2026, 11, 1, 6)},
		"Australia/Lord_Howe": {utcAt(2026, 4, 4, 15), utcAt(2026, 10, 3, 15)},
		"America/Havana":      {utcAt(2026, 3, 8, 5), utcAt(2026, 11, 1, 5)},
		"America/Santiago":    {utcAt(2026, 4, 5, 3), utcAt(2026, 9, 6, 4)},
		"UTC":                 {utcAt(2028, 2, 28, 0)},
	}
	minutes := []string{"*", "0", "30", "*/15", "0,45", "59"}
	hours := []string{"*", "0", "1", "2", "3", "1,2", "2-3", "*/2", "0,23", "1,3"}
	doms := []string{"*", "1", "29", "31", "*/10", "25-31"}
	months := []string{"*", "3", "10,11", "2", "4,9"}
	dows := []string{"*", "0", "1-5", "sat,sun"}
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rnd.IntN(len(s))] }
	for name, changes := range zones {
		loc := mustLoc(t, name)
		for range 150 {
			spec := pick(minutes) + " " + pick(hours) + " " + pick(doms) + " " + pick(months) + " " + pick(dows)
			s, err := Parse(spec)
			if err != nil {
				continue // a day that never comes
			}
			c := s.(*cron)
			at := changes[rnd.IntN(len(changes))].Add(time.Duration(rnd.IntN(8*60)-4*60) * time.Minute).In(loc)
			for range 30 {
				want, got := refNext(c, at), s.Next(at)
				if !got.Equal(want) {
					t.Fatalf("%s in %s: Next(%v) = %v, want %v", spec, name, at, got, want)
				}
				at = got
			}
		}
	}
}

func utcAt(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestParseErrorsShowAnExample(t *testing.T) {
	for _, tc := range []struct{ spec, says string }{
		{"60 * * * *", `minute: "60" is not between 0 and 59; a valid one: "*/15 * * * *"`},
		{"0 0 * * funday", `day of week: "funday" is not between 0 and 7; a valid one: "0 3 * * mon-fri"`},
		{"0 0 30 2 *", `never run; a valid one: "0 3 28 2 *"`},
		{"0 3 * *", `five fields`},
		{"@every 500ms", `at least 1s, as @every 6h`},
		{"@fortnightly", `or use @daily, @every 6h`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			_, err := Parse(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Parse(%q) = %v, want it to say %q", tc.spec, err, tc.says)
			}
		})
	}
}

func TestMissedTable(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, berlin) }
	for _, tc := range []struct {
		name, spec string
		last, now  time.Time
		want       bool
	}{
		{"not due yet", "0 3 * * *", at(27, 3, 0), at(28, 2, 59), false},
		{"due at the minute", "0 3 * * *", at(27, 3, 0), at(28, 3, 0), true},
		{"several missed count once", "0 3 * * *", at(20, 3, 0), at(28, 12, 0), true},
		// 02:30 on 29 March does not exist in Berlin: it is due at 03:30.
		{"skipped time not due before the shift", "30 2 * * *", at(28, 2, 30), time.Date(2026, 3, 29, 3, 10, 0, 0, berlin), false},
		{"skipped time due after it", "30 2 * * *", at(28, 2, 30), time.Date(2026, 3, 29, 3, 31, 0, 0, berlin), true},
		{"every: not yet", "@every 6h", at(28, 0, 0), at(28, 5, 59), false},
		{"every: due", "@every 6h", at(28, 0, 0), at(28, 6, 0), true},
		{"never ran", "0 3 * * *", time.Time{}, at(28, 0, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := Missed(s, tc.last, tc.now); got != tc.want {
				t.Fatalf("Missed(%s, %v, %v) = %v, want %v", tc.spec, tc.last, tc.now, got, tc.want)
			}
		})
	}
}

// TestVixieDayRule: with both day fields restricted either matches; a
// field written with a leading * (as */2) counts as unrestricted, as in
// Vixie cron.
func TestVixieDayRule(t *testing.T) {
	utc := time.UTC
	for _, tc := range []struct {
		spec string
		from time.Time
		want time.Time
	}{
		{"0 0 13 * fri", time.Date(2026, 11, 1, 0, 0, 0, 0, utc), time.Date(2026, 11, 6, 0, 0, 0, 0, utc)},   // a Friday before the 13th
		{"0 0 13 * fri", time.Date(2026, 11, 11, 0, 0, 0, 0, utc), time.Date(2026, 11, 13, 0, 0, 0, 0, utc)}, // the 13th, itself a Friday
		{"0 0 */2 * mon", time.Date(2026, 11, 1, 0, 0, 0, 0, utc), time.Date(2026, 11, 2, 0, 0, 0, 0, utc)},  // Mondays only
		{"0 0 */2 * mon", time.Date(2026, 11, 2, 0, 0, 0, 0, utc), time.Date(2026, 11, 9, 0, 0, 0, 0, utc)},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(tc.from); !got.Equal(tc.want) {
			t.Errorf("%s: Next(%v) = %v, want %v", tc.spec, tc.from, got, tc.want)
		}
	}
}
