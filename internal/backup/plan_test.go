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

func TestDecide(t *testing.T) {
	running := []engine.Container{{Name: "web", Image: "nginx", State: "running"}}
	stopped := []engine.Container{{State: "exited"}}
	pausedByOther := []engine.Container{{Name: "web", State: "paused"}}
	withDB := append([]engine.Container{{Name: "db", Image: "postgres:15", State: "running"}}, running...)
	labelledOff := []engine.Container{{Name: "db", Image: "postgres:15", State: "running", Labels: map[string]string{"lifeboat.dump": "none"}}}
	can := func() string { return "" }
	cannot := func() string { return "/v is not on btrfs" }
	for _, tc := range []struct {
		flag, label string
		cs          []engine.Container
		snap        func() string
		want, err   string
	}{
		{"", "auto", running, can, "pause", ""},
		{"auto", "auto", stopped, can, "none", ""},
		{"", "auto", withDB, can, "dump+pause", ""},
		{"", "auto", labelledOff, can, "pause", ""},
		{"", "stop", withDB, can, "stop", ""}, // a label always wins
		{"pause", "auto", stopped, can, "none", ""},
		{"", "stop", stopped, can, "none", ""},
		{"", "snapshot", stopped, can, "snapshot", ""},
		{"", "pause", pausedByOther, can, "pause", ""}, // checked again at the freeze
		{"none", "stop", running, can, "none", ""},
		{"", "snapshot,pause", running, cannot, "pause", ""},
		{"", "snapshot,pause", running, can, "snapshot", ""},
		{"", "dump+snapshot,dump+pause", withDB, cannot, "dump+pause", ""},
		{"dump", "auto", running, can, "dump", ""},
		{"snapshot", "auto", running, cannot, "", "allow a fallback with --consistency snapshot,pause"},
	} {
		d, err := decide(tc.flag, tc.label, "label", tc.cs, tc.snap)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("decide(%q, %q): err %v, want %q", tc.flag, tc.label, err, tc.err)
			}
			continue
		}
		if err != nil || d.String() != tc.want || d.why == "" {
			t.Errorf("decide(%q, %q) = %q (%s), %v; want %q", tc.flag, tc.label, d, d.why, err, tc.want)
		}
	}
	d, _ := decide("", "auto", "default", withDB, can)
	if !strings.Contains(d.why, "db is postgres") {
		t.Errorf("auto does not say why: %s", d.why)
	}
	d, _ = decide("pause", "auto", "default", stopped, can)
	if !strings.Contains(d.why, "no container is running") {
		t.Errorf("pause of a stopped unit does not say why it reads as it is: %s", d.why)
	}
	d, _ = decide("", "snapshot,pause", "label", running, cannot)
	if !strings.Contains(d.why, "not on btrfs") {
		t.Errorf("the fallback does not say why: %s", d.why)
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

func TestHeldStill(t *testing.T) {
	planned := []engine.Container{
		{ID: "1", Name: "web", State: "running"},
		{ID: "2", Name: "db", State: "exited"},
		{ID: "3", Name: "cache", State: "paused"},
		{ID: "4", Name: "worker", State: "restarting"},
		{ID: "5", Name: "gone", State: "exited"},
	}
	for _, tc := range []struct {
		name string
		now  []engine.Container
		want string
	}{
		{"all as planned", []engine.Container{{ID: "1", State: "running"}, {ID: "2", State: "exited"}}, ""},
		{"ours paused by us", []engine.Container{{ID: "1", State: "paused"}, {ID: "2", State: "exited"}}, ""},
		{"started since", []engine.Container{{ID: "1", State: "running"}, {ID: "2", State: "running"}}, "db (exited, now running)"},
		{"paused by someone else", []engine.Container{{ID: "3", State: "paused"}}, "cache (paused, now paused)"},
		{"restarting", []engine.Container{{ID: "4", State: "restarting"}}, "worker (restarting, now restarting)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(heldStill(planned, tc.now), "; "); got != tc.want {
				t.Errorf("heldStill = %q, want %q", got, tc.want)
			}
		})
	}
}
