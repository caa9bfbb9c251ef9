package restore

import (
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
)

func TestHostProblems(t *testing.T) {
	spec := engine.Spec{HostConfig: []byte(`{
		"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": "5353"}], "9000/tcp": [{"HostPort": ""}]},
		"Devices": [{"PathOnHost": "/dev/null"}, {"PathOnHost": "/dev/lifeboat-no-such-device"}]}`)}
	for _, tc := range []struct {
		name  string
		taken map[string]string
		force bool
		want  []string
		ports engine.PortPolicy
	}{
		{"free", map[string]string{}, false, []string{"device /dev/lifeboat-no-such-device of container web is missing"}, engine.PortPolicy{}},
		{"ip port taken", map[string]string{"127.0.0.1:8080/tcp": "other"}, false, []string{"device", "host port 127.0.0.1:8080/tcp of container web is taken by other"}, engine.PortPolicy{}},
		{"all-address port taken", map[string]string{":5353/udp": "dns"}, false, []string{"device", "host port 5353/udp of container web is taken by dns"}, engine.PortPolicy{}},
		{"held by the container replaced", map[string]string{"127.0.0.1:8080/tcp": "web"}, true, []string{"device"}, engine.PortPolicy{}},
		{"held by itself without force", map[string]string{"127.0.0.1:8080/tcp": "web"}, false, []string{"device", "taken by web"}, engine.PortPolicy{}},
		// A copy beside the original: its shifted ports are free...
		{"shifted past the original's", map[string]string{"127.0.0.1:8080/tcp": "web", ":5353/udp": "web"}, false, []string{"device"}, engine.PortPolicy{Shift: 1000}},
		// ...unless another container holds one of them.
		{"shifted onto a taken port", map[string]string{":6353/udp": "dns2"}, false, []string{"device", "host port 6353/udp of container web is taken by dns2"}, engine.PortPolicy{Shift: 1000}},
		{"shifted past 65535", map[string]string{}, false, []string{"device", "container web, port 80/tcp: host port 8080 shifted by 60000 is 68080, past 65535"}, engine.PortPolicy{Shift: 60000}},
		{"none published", map[string]string{"127.0.0.1:8080/tcp": "web", ":5353/udp": "web"}, false, []string{"device"}, engine.PortPolicy{None: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hostProblems(spec, "web", tc.taken, "web", tc.force, tc.ports)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d problems", got, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("%q does not mention %q", got, w)
				}
			}
		})
	}
}

// TestPortTakenRange checks every port of a shifted range against the
// ports taken.
func TestPortTakenRange(t *testing.T) {
	taken := map[string]string{":9005/tcp": "other"}
	if got := portTaken(taken, "", "9000-9010", "tcp", "web", "copy-web", false); got != "host port 9005/tcp of container web is taken by other" {
		t.Errorf("range over a taken port: %q", got)
	}
	if got := portTaken(taken, "", "9006-9010", "tcp", "web", "copy-web", false); got != "" {
		t.Errorf("free range: %q", got)
	}
}

func TestRenamer(t *testing.T) {
	proj := renamer(&layout.Manifest{Project: "shop", Containers: []layout.Container{{Name: "shop_db_1"}, {Name: "shop-db-1"}, {Name: "shopdb"}}}, "shop2")
	for _, tc := range []struct{ kind, old, want string }{
		{"container", "shop_db_1", "shop2_db_1"}, {"container", "shop-db-1", "shop2-db-1"},
		{"volume", "shop_data", "shop2_data"}, {"network", "shop_backend", "shop2_backend"},
		{"project", "shop", "shop2"}, {"volume", "external", "shop2_external"},
		// A Compose container_name must not stay the original's: the copy
		// would replace the original's container.
		{"container", "shopdb", "shop2_shopdb"},
		// A container outside the unit, referred to by a link, keeps its name.
		{"container", "proxy", "proxy"},
	} {
		if got := proj(tc.kind, tc.old); got != tc.want {
			t.Errorf("project rename %s %q = %q, want %q", tc.kind, tc.old, got, tc.want)
		}
	}
	single := renamer(&layout.Manifest{Containers: []layout.Container{{Name: "web"}}}, "copy")
	if got := single("container", "web"); got != "copy" {
		t.Errorf("standalone container renamed to %q", got)
	}
	if got := single("volume", "webdata"); got != "copy_webdata" {
		t.Errorf("standalone volume renamed to %q", got)
	}
	same := renamer(&layout.Manifest{Project: "shop"}, "")
	if got := same("container", "shop_db_1"); got != "shop_db_1" {
		t.Errorf("identity rename gave %q", got)
	}
}
