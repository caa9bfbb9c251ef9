package backup

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// points reads a unit's history, newest first: g good, s suspect, a
// suspect and acknowledged.
func points(h string) []repository.Point {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := make([]repository.Point, len(h))
	for i, c := range h {
		ps[i] = repository.Point{ID: fmt.Sprintf("p%d", i), Time: t0.Add(-time.Duration(i) * time.Hour),
			Suspect: c != 'g', Acked: c == 'a'}
	}
	return ps
}

func TestVerdictsKeepGoodPointsBeforeAnomaly(t *testing.T) {
	for _, tc := range []struct {
		history string
		keep    policy.Retention
		want    string // k kept by the policy, K kept for the anomaly, - forgotten
	}{
		{"gggg", policy.Retention{Last: 1}, "k---"},
		{"sggg", policy.Retention{Last: 1}, "kK--"},
		{"sggg", policy.Retention{Last: 2}, "kkK-"},
		{"aggg", policy.Retention{Last: 1}, "k---"},
		// Good-looking points after the damage do not count: the ones
		// from before it are kept.
		{"ggsgg", policy.Retention{Last: 1}, "k--K-"},
		{"gsgsgg", policy.Retention{Last: 1}, "k-K-K-"},
		{"gsgsgg", policy.Retention{Last: 2}, "kkK-KK"},
		{"ss", policy.Retention{Last: 1}, "k-"},
		{"sggg", policy.Retention{Daily: 1}, "kK--"},
	} {
		t.Run(tc.history+"/"+tc.keep.String(), func(t *testing.T) {
			var got strings.Builder
			for _, r := range verdicts(points(tc.history), tc.keep) {
				switch {
				case !r.Keep:
					got.WriteByte('-')
				case len(r.Reasons) == 1 && r.Reasons[0] == KeptForAnomaly:
					got.WriteByte('K')
				default:
					got.WriteByte('k')
				}
			}
			if got.String() != tc.want {
				t.Fatalf("verdicts %s, want %s", got.String(), tc.want)
			}
		})
	}
}
