package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDrillProbes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   []Probe
		bad    bool
	}{
		{name: "none", labels: map[string]string{"other": "x"}},
		{name: "command", labels: map[string]string{LabelDrillProbe: " pg_isready -q "}, want: []Probe{{Cmd: "pg_isready -q"}}},
		{name: "http root", labels: map[string]string{LabelDrillHTTP: "8080/"}, want: []Probe{{Port: 8080, Path: "/"}}},
		{name: "http bare port", labels: map[string]string{LabelDrillHTTP: "80"}, want: []Probe{{Port: 80, Path: "/"}}},
		{name: "http path", labels: map[string]string{LabelDrillHTTP: "80/api/health?full=1"}, want: []Probe{{Port: 80, Path: "/api/health?full=1"}}},
		{name: "both", labels: map[string]string{LabelDrillHTTP: "80/x", LabelDrillProbe: "true"}, want: []Probe{{Cmd: "true"}, {Port: 80, Path: "/x"}}},
		{name: "empty command", labels: map[string]string{LabelDrillProbe: " "}, bad: true},
		{name: "no port", labels: map[string]string{LabelDrillHTTP: "/health"}, bad: true},
		{name: "port zero", labels: map[string]string{LabelDrillHTTP: "0/"}, bad: true},
		{name: "port too big", labels: map[string]string{LabelDrillHTTP: "70000/"}, bad: true},
		{name: "space in path", labels: map[string]string{LabelDrillHTTP: "80/a b"}, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DrillProbes(tc.labels)
			if tc.bad {
				if err == nil {
					t.Fatalf("want an error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("probes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProbeName(t *testing.T) {
	if n := (Probe{Port: 8080, Path: "/"}).Name(); n != "http 8080/" {
		t.Fatalf("name %q", n)
	}
	if n := (Probe{Cmd: "true"}).Name(); n != "probe" {
		t.Fatalf("name %q", n)
	}
}
