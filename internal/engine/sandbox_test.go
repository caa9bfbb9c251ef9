package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

func TestSandboxApply(t *testing.T) {
	sb := &Sandbox{Network: "lbdrill-1-net", Label: "p1", Mounts: map[string]string{"/srv": "lbdrill-1-bind-srv"}}
	cfg := container.Config{Labels: map[string]string{"a": "b"}, NetworkDisabled: true}
	hc := container.HostConfig{
		Binds:         []string{"/host/srv:/srv:ro", "lbdrill-1-data:/data"},
		Mounts:        []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp"}},
		PortBindings:  network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}},
		RestartPolicy: container.RestartPolicy{Name: "always"},
		NetworkMode:   "default",
	}
	spec := Spec{Networks: map[string]EndpointSpec{"bridge": {IPv4Address: "172.17.0.9", Aliases: []string{"web"}}}}
	orig := spec.Networks
	if err := sb.apply(&cfg, &hc, &spec); err != nil {
		t.Fatal(err)
	}
	if hc.PortBindings != nil || hc.RestartPolicy.Name != container.RestartPolicyDisabled || cfg.NetworkDisabled {
		t.Fatalf("ports %v, restart %q left", hc.PortBindings, hc.RestartPolicy.Name)
	}
	if cfg.Labels[LabelSandbox] != "p1" || cfg.Labels["lifeboat.enable"] != "false" || cfg.Labels["a"] != "b" {
		t.Fatalf("labels %v", cfg.Labels)
	}
	if hc.NetworkMode != "lbdrill-1-net" {
		t.Fatalf("network mode %q", hc.NetworkMode)
	}
	if ep, ok := spec.Networks["lbdrill-1-net"]; !ok || ep.IPv4Address != "" || len(ep.Aliases) != 1 || len(spec.Networks) != 1 {
		t.Fatalf("networks %+v", spec.Networks)
	}
	if orig["bridge"].IPv4Address != "172.17.0.9" {
		t.Fatalf("the caller's networks were changed")
	}
	if strings.Join(hc.Binds, ",") != "lbdrill-1-data:/data" {
		t.Fatalf("binds %q", hc.Binds)
	}
	want := []mount.Mount{{Type: mount.TypeVolume, Source: "lbdrill-1-bind-srv", Target: "/srv", ReadOnly: true}, {Type: mount.TypeTmpfs, Target: "/tmp"}}
	if b, w := js(hc.Mounts), js(want); b != w {
		t.Fatalf("mounts %s, want %s", b, w)
	}
}

func TestSandboxRefuses(t *testing.T) {
	sb := &Sandbox{Network: "n"}
	for name, hc := range map[string]container.HostConfig{
		"host network":  {NetworkMode: "host"},
		"unmapped bind": {Binds: []string{"/etc:/etc:ro"}},
		"bind mount":    {Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/s"}}},
	} {
		var cfg container.Config
		if err := sb.apply(&cfg, &hc, &Spec{}); err == nil {
			t.Errorf("%s: sandboxed without error", name)
		}
	}
}

func TestSpecMounts(t *testing.T) {
	hc, _ := json.Marshal(container.HostConfig{
		Binds:  []string{"/srv:/srv:ro", "data:/data"},
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v", Target: "/v"}},
		Tmpfs:  map[string]string{"/run": "ro"},
	})
	ms, err := SpecMounts(Spec{HostConfig: hc, AnonymousVolumes: []AnonymousVolume{{Name: "abc", Destination: "/var/lib/x", RW: true}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"type":"bind","source":"/srv","destination":"/srv","rw":false},{"type":"volume","name":"data","destination":"/data","rw":true},{"type":"volume","name":"v","destination":"/v","rw":true},{"type":"volume","name":"abc","destination":"/var/lib/x","rw":true},{"type":"tmpfs","destination":"/run","rw":false}]`
	if got := js(ms); got != want {
		t.Fatalf("mounts\n%s\nwant\n%s", got, want)
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }
