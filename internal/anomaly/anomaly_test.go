package anomaly

import (
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

// steady is a unit of 1000 files and 100 MiB that changes a little each
// time, with one dump of 10 MiB, each backup taking 2 minutes.
func steady(n int) []Stats {
	h := make([]Stats, n)
	for i := range h {
		h[i] = Stats{Files: 1000 + int64(i), Bytes: 100 * mib, Added: 2 * mib, Duration: 2 * time.Minute,
			Dumps: map[string]int64{"db/app.sql": 10 * mib}, Good: true}
	}
	return h
}

func with(s Stats, f func(*Stats)) Stats {
	s.Dumps = map[string]int64{}
	for k, v := range steady(1)[0].Dumps {
		s.Dumps[k] = v
	}
	f(&s)
	return s
}

func TestEvaluate(t *testing.T) {
	normal := steady(1)[0]
	cases := []struct {
		name    string
		p       Stats
		history []Stats
		t       Thresholds
		want    []string // checks found, in order
		msg     string   // part of the first message
	}{
		{name: "normal point", p: normal, history: steady(5)},
		{name: "too little history", p: with(normal, func(s *Stats) { s.Files = 1 }), history: steady(2)},
		{name: "files shrink", p: with(normal, func(s *Stats) { s.Files = 300 }), history: steady(5), want: []string{"files"}, msg: "files shrank 70%: 300, usually 1002"},
		{name: "files shrink under threshold", p: with(normal, func(s *Stats) { s.Files = 600 }), history: steady(5)},
		{name: "files shrink with lower label", p: with(normal, func(s *Stats) { s.Files = 600 }), history: steady(5), t: Thresholds{Shrink: 0.3}, want: []string{"files"}},
		{name: "everything gone", p: with(normal, func(s *Stats) { s.Files, s.Bytes = 0, 0 }), history: steady(5), want: []string{"files", "bytes"}, msg: "files: none left, usually 1002"},
		{name: "bytes shrink", p: with(normal, func(s *Stats) { s.Bytes = 10 * mib }), history: steady(5), want: []string{"bytes"}, msg: "bytes shrank 90%: 10.0 MiB, usually 100.0 MiB"},
		{name: "tiny unit shrinking is noise", p: Stats{Files: 2, Bytes: 100}, history: []Stats{{Files: 5, Bytes: 900, Good: true}, {Files: 5, Bytes: 900, Good: true}, {Files: 5, Bytes: 900, Good: true}}},
		{name: "tiny unit emptied", p: Stats{Files: 0, Bytes: 0}, history: []Stats{{Files: 5, Bytes: 900, Good: true}, {Files: 5, Bytes: 900, Good: true}, {Files: 5, Bytes: 900, Good: true}}, want: []string{"files", "bytes"}},
		{name: "dump empty", p: with(normal, func(s *Stats) { s.Dumps["db/app.sql"] = 0 }), history: steady(4), want: []string{"dump"}, msg: "dump db/app.sql is empty, usually 10.0 MiB"},
		{name: "dump shrinks", p: with(normal, func(s *Stats) { s.Dumps["db/app.sql"] = 1 * mib }), history: steady(4), want: []string{"dump"}, msg: "dump db/app.sql shrank 90%"},
		{name: "dump missing", p: with(normal, func(s *Stats) { delete(s.Dumps, "db/app.sql") }), history: steady(4), want: []string{"dump"}, msg: "dump db/app.sql missing"},
		{name: "dumps unknown", p: with(normal, func(s *Stats) { s.Dumps = nil }), history: steady(4)},
		{name: "new dump is no anomaly", p: with(normal, func(s *Stats) { s.Dumps["db/new.sql"] = 5 }), history: steady(4)},
		{name: "encrypted in place", p: with(normal, func(s *Stats) { s.Added = 101 * mib }), history: steady(4), want: []string{"churn"}, msg: "101% of the data stored anew (101.0 MiB), usually 2.0%"},
		{name: "busy unit churns as usual", p: with(normal, func(s *Stats) { s.Added = 90 * mib }), history: busy(steady(4)), want: nil},
		{name: "churn history unknown", p: with(normal, func(s *Stats) { s.Added = 90 * mib }), history: unknownAdded(steady(4))},
		{name: "small absolute churn", p: Stats{Files: 10, Bytes: 100 << 10, Added: 100 << 10}, history: []Stats{{Files: 10, Bytes: 100 << 10, Added: 1 << 10, Good: true}, {Files: 10, Bytes: 100 << 10, Added: 1 << 10, Good: true}, {Files: 10, Bytes: 100 << 10, Added: 1 << 10, Good: true}}},
		{name: "slow", p: with(normal, func(s *Stats) { s.Duration = 15 * time.Minute }), history: steady(4), want: []string{"slow"}, msg: "backup took 15m0s, usually 2m0s (8x)"},
		{name: "slow but short", p: Stats{Files: 1000, Bytes: 100 * mib, Added: -1, Duration: 50 * time.Second}, history: fast(steady(4))},
		{name: "off", p: with(normal, func(s *Stats) { s.Files, s.Bytes = 0, 0 }), history: steady(5), t: Thresholds{Off: true}},
		{name: "suspect points are no baseline", p: with(normal, func(s *Stats) { s.Files = 300 }), history: append(suspect(steady(3)), steady(2)...)},
		{name: "only the window counts", p: with(normal, func(s *Stats) { s.Files = 300 }), history: append(shrunk(steady(Window)), steady(5)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Evaluate(c.p, c.history, c.t)
			var checks []string
			for _, f := range got {
				checks = append(checks, f.Check)
				t.Logf("finding: %s", f)
			}
			if strings.Join(checks, ",") != strings.Join(c.want, ",") {
				t.Fatalf("findings %v, want checks %v", got, c.want)
			}
			if c.msg != "" && !strings.Contains(got[0].Message, c.msg) {
				t.Fatalf("message %q, want it to contain %q", got[0].Message, c.msg)
			}
		})
	}
}

func busy(h []Stats) []Stats {
	for i := range h {
		h[i].Added = 80 * mib
	}
	return h
}

func unknownAdded(h []Stats) []Stats {
	for i := range h {
		h[i].Added = -1
	}
	return h
}

func fast(h []Stats) []Stats {
	for i := range h {
		h[i].Duration = time.Second
	}
	return h
}

func suspect(h []Stats) []Stats {
	for i := range h {
		h[i].Good = false
	}
	return h
}

func shrunk(h []Stats) []Stats {
	for i := range h {
		h[i].Files = 310
	}
	return h
}

func TestWithDefaults(t *testing.T) {
	if got := (Thresholds{Churn: 0.8}).WithDefaults(); got != (Thresholds{Shrink: 0.5, Churn: 0.8, Slow: 5}) {
		t.Fatalf("WithDefaults = %+v", got)
	}
}
