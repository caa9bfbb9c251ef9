package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/anomaly"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Labelled
		want    Policy
		err     string
	}{
		{name: "defaults", members: []Labelled{{Name: "web"}},
			want: Policy{Enabled: true, Consistency: "auto", Images: "ref"}},
		{name: "labels win", members: []Labelled{{Name: "db", Labels: map[string]string{
			LabelEnable: "true", LabelConsistency: "stop", LabelRetention: "last=3,daily=7", LabelSchedule: "@every 6h", LabelImages: "commit,push"}}},
			want: Policy{Enabled: true, Consistency: "stop", Images: "commit,push", Schedule: "@every 6h", Retention: Retention{Last: 3, Daily: 7}}},
		{name: "disabled", members: []Labelled{{Name: "tmp", Labels: map[string]string{LabelEnable: "false"}}},
			want: Policy{Enabled: false, Consistency: "auto", Images: "ref"}},
		{name: "excludes merge", members: []Labelled{{Name: "a", Labels: map[string]string{LabelExclude: "*.log"}}, {Name: "b", Labels: map[string]string{LabelExclude: "cache/"}}},
			want: Policy{Enabled: true, Consistency: "auto", Images: "ref", Exclude: []string{"*.log", "cache/"}}},
		{name: "same label agrees", members: []Labelled{{Name: "a", Labels: map[string]string{LabelConsistency: "pause"}}, {Name: "b", Labels: map[string]string{LabelConsistency: "pause"}}},
			want: Policy{Enabled: true, Consistency: "pause", Images: "ref"}},
		{name: "conflict", members: []Labelled{{Name: "a", Labels: map[string]string{LabelConsistency: "pause"}}, {Name: "b", Labels: map[string]string{LabelConsistency: "stop"}}},
			err: "make them agree"},
		{name: "bad mode", members: []Labelled{{Name: "a", Labels: map[string]string{LabelConsistency: "freeze"}}}, err: `unknown consistency "freeze"`},
		{name: "fallback list", members: []Labelled{{Name: "a", Labels: map[string]string{LabelConsistency: "snapshot,pause"}}},
			want: Policy{Enabled: true, Consistency: "snapshot,pause", Images: "ref"}},
		{name: "bad bool", members: []Labelled{{Name: "a", Labels: map[string]string{LabelEnable: "yes please"}}}, err: "not true or false"},
		{name: "bad retention", members: []Labelled{{Name: "a", Labels: map[string]string{LabelRetention: "forever"}}}, err: "last=3"},
		{name: "bad schedule", members: []Labelled{{Name: "a", Labels: map[string]string{LabelSchedule: "@every 0s"}}}, err: "at least 1s"},
		{name: "bad images", members: []Labelled{{Name: "a", Labels: map[string]string{LabelImages: "zip"}}}, err: "unknown images policy"},
		{name: "anomaly guard off", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomaly: "off"}}},
			want: Policy{Enabled: true, Consistency: "auto", Images: "ref", Anomaly: anomaly.Thresholds{Off: true}}},
		{name: "anomaly thresholds", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomaly: "on", LabelAnomalyShrink: "0.3", LabelAnomalyChurn: "0.8", LabelAnomalySlow: "10"}}},
			want: Policy{Enabled: true, Consistency: "auto", Images: "ref", Anomaly: anomaly.Thresholds{Shrink: 0.3, Churn: 0.8, Slow: 10}}},
		{name: "anomaly labels agree", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomalyShrink: "0.3"}}, {Name: "b", Labels: map[string]string{LabelAnomalyShrink: "0.4"}}}, err: "make them agree"},
		{name: "anomaly not on or off", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomaly: "maybe"}}}, err: `"maybe" is not on or off`},
		{name: "anomaly shrink not a fraction", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomalyShrink: "50"}}}, err: "fraction between 0 and 1"},
		{name: "anomaly shrink not a number", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomalyShrink: "half"}}}, err: `"half" is not a number`},
		{name: "anomaly churn zero", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomalyChurn: "0"}}}, err: "fraction above 0"},
		{name: "anomaly slow below 1", members: []Labelled{{Name: "a", Labels: map[string]string{LabelAnomalySlow: "0.5"}}}, err: "factor above 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.members, DefaultDefaults)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Sources = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestSourcesExplain(t *testing.T) {
	p, err := Resolve([]Labelled{{Name: "db", Labels: map[string]string{LabelConsistency: "dump"}}}, DefaultDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sources[LabelConsistency] != "label on db" || p.Sources[LabelEnable] != "default" {
		t.Fatalf("sources %v", p.Sources)
	}
}

func TestRetentionRoundTrip(t *testing.T) {
	for _, s := range []string{"last=3", "last=3,daily=7,weekly=4", "hourly=24,monthly=12,yearly=2"} {
		r, err := ParseRetention(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRetention(%q) = %+v %v, String %q", s, r, err, r.String())
		}
	}
	if r, err := ParseRetention("keep-last=2"); err != nil || r.Last != 2 {
		t.Errorf("keep- prefix: %+v %v", r, err)
	}
	for _, bad := range []string{"last", "last=-1", "monthly=x", "minutely=3"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("ParseRetention(%q) accepted", bad)
		}
	}
}

func TestSchedule(t *testing.T) {
	for _, ok := range []string{"@every 5s", "@every 6h", "@daily", "0 3 * * *", "*/15 * * * 1-5"} {
		if err := CheckSchedule(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "@every", "@every soon", "daily", "0 3 * *"} {
		if err := CheckSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMatcher(t *testing.T) {
	m, err := NewMatcher([]string{"*.log", "cache/", "/tmp", "build/**/obj", "/data/*.tmp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel   string
		dir   bool
		match bool
	}{
		{"a.log", false, true}, {"x/y/a.log", false, true}, {"a.log.gz", false, false},
		{"cache", true, true}, {"x/cache", true, true}, {"cache", false, false},
		{"tmp", true, true}, {"tmp", false, true}, {"x/tmp", true, false},
		{"build/obj", true, true}, {"build/a/b/obj", true, true}, {"x/build/obj", true, false},
		{"data/x.tmp", false, true}, {"data/sub/x.tmp", false, false},
		{"keep.txt", false, false},
	} {
		if got := m.Match(tc.rel, tc.dir); got != tc.match {
			t.Errorf("Match(%q, dir=%v) = %v, want %v", tc.rel, tc.dir, got, tc.match)
		}
	}
	if _, err := NewMatcher([]string{"/"}); err == nil {
		t.Error("a pattern matching the root was accepted")
	}
	if _, err := NewMatcher([]string{"[z-a"}); err == nil {
		t.Error("a bad glob was accepted")
	}
	var nilM *Matcher
	if nilM.Match("a", false) {
		t.Error("nil matcher matched")
	}
}

func TestRetentionKeep(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	// Newest first: every 6 hours for 10 days.
	var times []time.Time
	for i := 0; i < 40; i++ {
		times = append(times, base.Add(-time.Duration(i)*6*time.Hour))
	}
	count := func(r Retention) (n int) {
		for _, why := range r.Keep(times) {
			if len(why) > 0 {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		r    Retention
		want int
	}{
		{Retention{}, 40},
		{Retention{Last: 3}, 3},
		{Retention{Daily: 3}, 3},
		{Retention{Last: 3, Daily: 3}, 5}, // today's newest is both last and daily; yesterday and the day before add 2
		{Retention{Hourly: 100}, 40},
		{Retention{Weekly: 2}, 2},
		{Retention{Monthly: 5, Yearly: 5}, 1}, // ten days, all in one month and year
	} {
		if got := count(tc.r); got != tc.want {
			t.Errorf("%v keeps %d, want %d", tc.r, got, tc.want)
		}
	}
	if why := (Retention{Daily: 1}).Keep(times); len(why[0]) == 0 || len(why[1]) != 0 {
		t.Errorf("daily=1: %v", why[:2])
	}
	// The newest point survives even a policy that selects nothing.
	if why := (Retention{Hourly: 0, Last: 0, Yearly: 0, Weekly: 0, Monthly: 0, Daily: 0}).Keep(times[:1]); len(why[0]) == 0 {
		t.Error("newest point not kept")
	}
	one := []time.Time{base}
	if why := (Retention{Daily: 1}).Keep(one); len(why[0]) == 0 {
		t.Error("single point not kept")
	}
}

func TestCheckModeCombinations(t *testing.T) {
	for v, ok := range map[string]bool{
		"dump+pause": true, "dump+snapshot,dump+pause": true, "pause+dump": true, "snapshot,pause": true, "dump": true,
		"pause+stop": false, "dump+auto": false, "dump+dump": false, "freeze": false, "": false, "dump+": false,
	} {
		if err := CheckMode(v); (err == nil) != ok {
			t.Errorf("CheckMode(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestRetentionValidate(t *testing.T) {
	if err := (Retention{Last: 3, Daily: 7}).Validate(); err != nil {
		t.Fatalf("a valid policy refused: %v", err)
	}
	for _, r := range []Retention{{Last: -1}, {Hourly: -1}, {Daily: -2}, {Weekly: -1}, {Monthly: -1}, {Yearly: -9}} {
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%+v: %v, want a refusal", r, err)
		}
	}
	if _, err := ParseRetention("last=-1"); err == nil {
		t.Error("label last=-1 accepted")
	}
}

func TestDrillLabel(t *testing.T) {
	p, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelDrill: "@weekly"}}}, DefaultDefaults)
	if err != nil || p.Drill != "@weekly" || p.Sources[LabelDrill] != "label on web" {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelDrill: "never"}}}, Defaults{Drill: "@daily"})
	if err != nil || p.Drill != "never" {
		t.Fatalf("never: %+v %v", p, err)
	}
	if _, err := Resolve([]Labelled{{Name: "web", Labels: map[string]string{LabelDrill: "weekly"}}}, DefaultDefaults); err == nil {
		t.Fatal("a drill schedule that is no schedule was taken")
	}
}
