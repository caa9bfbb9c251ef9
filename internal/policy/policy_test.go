package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
