package backup

import (
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

func TestStartOrder(t *testing.T) {
	cs := []engine.Container{
		{Name: "p_web_1", Service: "web", DependsOn: []string{"api"}},
		{Name: "p_api_1", Service: "api", DependsOn: []string{"db", "cache"}},
		{Name: "p_db_1", Service: "db"},
		{Name: "p_cache_1", Service: "cache"},
		{Name: "p_loop_1", Service: "loop", DependsOn: []string{"loop2"}},
		{Name: "p_loop2_1", Service: "loop2", DependsOn: []string{"loop"}},
	}
	var names []string
	for _, c := range startOrder(cs) {
		names = append(names, c.Name)
	}
	got := strings.Join(names, " ")
	pos := func(n string) int { return strings.Index(got, n) }
	for _, before := range [][2]string{{"p_db_1", "p_api_1"}, {"p_cache_1", "p_api_1"}, {"p_api_1", "p_web_1"}} {
		if pos(before[0]) > pos(before[1]) {
			t.Errorf("%s should start before %s: %s", before[0], before[1], got)
		}
	}
	if len(names) != len(cs) {
		t.Fatalf("a cycle lost containers: %s", got)
	}
}

func TestChooseMode(t *testing.T) {
	running := []engine.Container{{State: "running"}}
	stopped := []engine.Container{{State: "exited"}}
	for _, tc := range []struct {
		flag, label string
		cs          []engine.Container
		want, err   string
	}{
		{"", "auto", running, "pause", ""},
		{"auto", "auto", stopped, "none", ""},
		{"", "stop", running, "stop", ""},
		{"none", "stop", running, "none", ""},
		{"", "snapshot,pause", running, "pause", ""},
		{"dump", "auto", running, "dump", ""},
		{"snapshot", "auto", running, "", "not available"},
	} {
		got, err := chooseMode(tc.flag, tc.label, tc.cs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("chooseMode(%q, %q): err %v, want %q", tc.flag, tc.label, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("chooseMode(%q, %q) = %q, %v; want %q", tc.flag, tc.label, got, err, tc.want)
		}
	}
}

func TestParseUnit(t *testing.T) {
	for in, want := range map[string]Unit{"project/shop": {"project", "shop"}, "container/web": {"container", "web"}, "volume/v": {"volume", "v"}, "bare": {"", "bare"}} {
		if got, err := ParseUnit(in); err != nil || got != want {
			t.Errorf("ParseUnit(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"volume/", "image/x", "/x"} {
		if _, err := ParseUnit(bad); err == nil {
			t.Errorf("ParseUnit(%q) accepted", bad)
		}
	}
}
