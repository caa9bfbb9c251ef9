// Package anomaly compares a new restore point with its unit's own history
// and says whether it looks like damage rather than data: files or bytes
// shrinking sharply, a database dump shrinking or empty, most of the data
// stored anew although the unit rarely changes (what encryption in place
// looks like), a backup far slower than usual. It is pure: callers give it
// the points' figures and it gives back findings.
package anomaly

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

// Stats are one restore point's figures.
type Stats struct {
	Files, Bytes int64
	// Added is what the repository grew by for this point (compressed,
	// encrypted); negative when unknown (points made before it was kept).
	Added    int64
	Duration time.Duration
	// Dumps are the sizes of the point's database dumps by
	// "container/file"; nil when unknown.
	Dumps map[string]int64
	// Good says whether the point counts as normal: not suspect, or
	// acknowledged. Only good points make the baseline.
	Good bool
}

// Thresholds tune the guard. The zero value of a field means its default.
type Thresholds struct {
	Off bool `json:"off,omitempty"`
	// Shrink flags files, bytes or a dump falling by more than this
	// fraction below the baseline (0.5: to less than half).
	Shrink float64 `json:"shrink,omitempty"`
	// Churn flags a point that stores more than this fraction of its
	// bytes anew while the baseline stores less than a fifth of it.
	Churn float64 `json:"churn,omitempty"`
	// Slow flags a backup taking more than this many times the baseline.
	Slow float64 `json:"slow,omitempty"`
}

// Defaults are the thresholds when no label speaks.
var Defaults = Thresholds{Shrink: 0.5, Churn: 0.5, Slow: 5}

// Fixed parts of the rules: below them a change is noise, not a sign.
const (
	// MinHistory is how many good points a unit needs before it is judged.
	MinHistory = 3
	// Window is how many of the newest good points make the baseline.
	Window = 10
	// minFiles and minBytes keep tiny units from being flagged for a
	// change of a few files, unless everything went.
	minFiles = 10
	minBytes = 1 << 20
	// minAdded: a point that stores less than this anew is never churn.
	minAdded = 1 << 20
	// minSlow: a backup shorter than this is never slow.
	minSlow = time.Minute
	// calm is the fraction of Churn below which the baseline's median
	// change ratio counts as "the unit rarely changes".
	calm = 0.2
)

// Finding is one sign of damage.
type Finding struct {
	Check   string `json:"check"` // files, bytes, dump, churn, slow
	Message string `json:"message"`
}

func (f Finding) String() string { return f.Message }

// WithDefaults fills the zero fields of t with Defaults.
func (t Thresholds) WithDefaults() Thresholds {
	if t.Shrink == 0 {
		t.Shrink = Defaults.Shrink
	}
	if t.Churn == 0 {
		t.Churn = Defaults.Churn
	}
	if t.Slow == 0 {
		t.Slow = Defaults.Slow
	}
	return t
}

// Evaluate judges p against history, the unit's earlier points newest
// first. It finds nothing while the guard is off or the unit has fewer
// than MinHistory good points.
func Evaluate(p Stats, history []Stats, t Thresholds) []Finding {
	if t.Off {
		return nil
	}
	t = t.WithDefaults()
	var base []Stats
	for _, h := range history {
		if h.Good {
			base = append(base, h)
		}
		if len(base) == Window {
			break
		}
	}
	if len(base) < MinHistory {
		return nil
	}
	var out []Finding
	out = append(out, shrink("files", "files", p.Files, median(base, func(s Stats) (int64, bool) { return s.Files, true }), minFiles, t.Shrink)...)
	out = append(out, shrink("bytes", "bytes", p.Bytes, median(base, func(s Stats) (int64, bool) { return s.Bytes, true }), minBytes, t.Shrink)...)
	out = append(out, dumps(p, base, t.Shrink)...)
	out = append(out, churn(p, base, t.Churn)...)
	out = append(out, slow(p, base, t.Slow)...)
	return out
}

// shrink flags now falling more than frac below the baseline med, when
// the baseline is big enough to judge or everything went.
func shrink(check, what string, now, med, floor int64, frac float64) []Finding {
	if med <= 0 || now >= med {
		return nil
	}
	if now == 0 {
		return []Finding{{check, fmt.Sprintf("%s: none left, usually %s", what, count(check, med))}}
	}
	if med < floor || float64(now) >= float64(med)*(1-frac) {
		return nil
	}
	drop := 100 - 100*float64(now)/float64(med)
	return []Finding{{check, fmt.Sprintf("%s shrank %.0f%%: %s, usually %s", what, drop, count(check, now), count(check, med))}}
}

func dumps(p Stats, base []Stats, frac float64) []Finding {
	if p.Dumps == nil {
		return nil
	}
	// A dump is judged against the good points that have it, once
	// MinHistory of them do.
	keys := map[string]bool{}
	for _, b := range base {
		for k := range b.Dumps {
			keys[k] = true
		}
	}
	var out []Finding
	for _, k := range sortedKeys(keys) {
		med := median(base, func(s Stats) (int64, bool) { n, ok := s.Dumps[k]; return n, ok })
		if med < 0 {
			continue
		}
		now, ok := p.Dumps[k]
		switch {
		case !ok:
			if all(base, func(s Stats) bool { _, ok := s.Dumps[k]; return ok || s.Dumps == nil }) {
				out = append(out, Finding{"dump", fmt.Sprintf("dump %s missing, usually %s", k, count("bytes", med))})
			}
		case now == 0 && med > 0:
			out = append(out, Finding{"dump", fmt.Sprintf("dump %s is empty, usually %s", k, count("bytes", med))})
		default:
			for _, f := range shrink("dump", "dump "+k, now, med, 0, frac) {
				out = append(out, f)
			}
		}
	}
	return out
}

func churn(p Stats, base []Stats, limit float64) []Finding {
	if p.Added < minAdded || p.Bytes <= 0 {
		return nil
	}
	ratio := float64(p.Added) / float64(p.Bytes)
	if ratio <= limit {
		return nil
	}
	var ratios []float64
	for _, b := range base {
		if b.Added >= 0 && b.Bytes > 0 {
			ratios = append(ratios, float64(b.Added)/float64(b.Bytes))
		}
	}
	if len(ratios) < MinHistory {
		return nil
	}
	slices.Sort(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + med) / 2
	}
	if med >= limit*calm {
		return nil
	}
	return []Finding{{"churn", fmt.Sprintf("%.0f%% of the data stored anew (%s), usually %.1f%%: rewritten in place, as encryption does",
		100*ratio, count("bytes", p.Added), 100*med)}}
}

func slow(p Stats, base []Stats, factor float64) []Finding {
	if p.Duration < minSlow {
		return nil
	}
	med := median(base, func(s Stats) (int64, bool) { return int64(s.Duration), s.Duration > 0 })
	if med <= 0 || float64(p.Duration) <= factor*float64(med) {
		return nil
	}
	return []Finding{{"slow", fmt.Sprintf("backup took %s, usually %s (%.0fx)",
		p.Duration.Round(time.Second), time.Duration(med).Round(time.Second), float64(p.Duration)/float64(med))}}
}

// median of the values get finds in base; -1 when fewer than MinHistory
// points have one.
func median(base []Stats, get func(Stats) (int64, bool)) int64 {
	var vs []int64
	for _, b := range base {
		if v, ok := get(b); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) < MinHistory {
		return -1
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func all(base []Stats, f func(Stats) bool) bool {
	for _, b := range base {
		if !f(b) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// count writes n as a number of files or a size.
func count(check string, n int64) string {
	if check == "files" {
		return fmt.Sprintf("%d", n)
	}
	return ui.Bytes(n)
}
