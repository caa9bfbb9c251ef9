package repository

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOffsiteLocks(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rec := func(to string, at time.Duration, period time.Duration, points ...string) ReplicationRecord {
		return ReplicationRecord{To: to, Time: t0.Add(at), LockedUntil: t0.Add(at + period), Points: points}
	}
	for _, tc := range []struct {
		name string
		recs []ReplicationRecord
		want map[string]time.Time
	}{
		{"none", nil, map[string]time.Time{}},
		{"one run", []ReplicationRecord{rec("a", 0, 30*day, "p1", "p2")},
			map[string]time.Time{"p1": t0.Add(30 * day), "p2": t0.Add(30 * day)}},
		{
			// The newest run extended every blob the source still had: p1
			// shares its date, p3 (made after it) has none.
			"the newest run of a destination counts",
			[]ReplicationRecord{rec("a", day, 30*day, "p1", "p2"), rec("a", 0, 30*day, "p1")},
			map[string]time.Time{"p1": t0.Add(31 * day), "p2": t0.Add(31 * day)},
		},
		{
			// S3 keeps the longer lock the earlier run set; the date shown
			// is the one lifeboat vouches for from the newest run, never
			// later than the truth.
			"a newer shorter run wins for its destination",
			[]ReplicationRecord{rec("a", 0, 60*day, "p1"), rec("a", day, 7*day, "p1")},
			map[string]time.Time{"p1": t0.Add(8 * day)},
		},
		{
			"over destinations the latest date",
			[]ReplicationRecord{rec("a", 0, 7*day, "p1", "p2"), rec("b", day, 30*day, "p2")},
			map[string]time.Time{"p1": t0.Add(7 * day), "p2": t0.Add(31 * day)},
		},
		{"a record without a lock dates nothing", []ReplicationRecord{rec("a", 0, 0, "p1")}, map[string]time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, offsiteLocks(tc.recs)); d != "" {
				t.Fatalf("offsiteLocks (-want +got):\n%s", d)
			}
		})
	}
}
