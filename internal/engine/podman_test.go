package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func TestIsPodman(t *testing.T) {
	for _, tc := range []struct {
		name  string
		comps []system.ComponentVersion
		want  bool
	}{
		{"podman 4.3", []system.ComponentVersion{{Name: "Podman Engine", Version: "4.3.1"}, {Name: "Conmon"}}, true},
		{"docker", []system.ComponentVersion{{Name: "Engine", Version: "20.10.24"}, {Name: "containerd"}, {Name: "runc"}}, false},
		{"no components", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isPodman(tc.comps); got != tc.want {
				t.Errorf("isPodman = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodmanEngineID(t *testing.T) {
	a := podmanEngineID("vm", "/var/lib/containers/storage")
	if a != podmanEngineID("vm", "/var/lib/containers/storage") || !strings.HasPrefix(a, "podman-") {
		t.Errorf("engine ID %q is not stable", a)
	}
	if a == podmanEngineID("vm", "/srv/containers") || a == podmanEngineID("vm2", "/var/lib/containers/storage") {
		t.Errorf("engine ID %q names another engine too", a)
	}
}

func TestPodmanNetworkMode(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		nets       []string
		want       string
	}{
		{"default network", "bridge", []string{"bridge"}, "bridge"},
		{"default and another", "bridge", []string{"n2", "bridge"}, "bridge"},
		{"created on another network", "bridge", []string{"n3", "n2"}, "n2"},
		{"default mode word", "default", []string{"n2"}, "n2"},
		{"host", "host", nil, "host"},
		{"another container's", "container:db", nil, "container:db"},
		{"named mode kept", "n3", []string{"n2", "n3"}, "n3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := podmanNetworkMode(tc.mode, tc.nets); got != tc.want {
				t.Errorf("podmanNetworkMode(%q, %v) = %q, want %q", tc.mode, tc.nets, got, tc.want)
			}
		})
	}
}

func TestPodmanPortable(t *testing.T) {
	cfg := rawObject{}
	hc := rawObject{}
	must := func(o rawObject, s string) {
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			t.Fatal(err)
		}
	}
	must(cfg, `{"Env":["PATH=/bin","TERM=xterm","container=podman","FOO=bar","HOME=/root","HOSTNAME=d103dd61f319","LANG=C"]}`)
	must(hc, `{"Binds":["data:/data:rw,rprivate,nosuid,nodev,rbind","/srv:/srv:ro,rshared,rbind","cache:/c:nosuid,nodev,rbind"],
		"Ulimits":[{"Name":"RLIMIT_NOFILE","Hard":20000,"Soft":1024}],"Runtime":"oci","PidMode":"private","UTSMode":"private","IpcMode":"shareable"}`)
	podmanPortable(cfg, hc, "d103dd61f319", []string{"PATH=/bin", "LANG=C"})

	var env, binds []string
	var ulimits []container.Ulimit
	var runtime, pid, uts, ipc string
	for key, v := range map[string]any{"Binds": &binds, "Ulimits": &ulimits, "Runtime": &runtime, "PidMode": &pid, "UTSMode": &uts, "IpcMode": &ipc} {
		if err := hc.get(key, v); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	if err := cfg.get("Env", &env); err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/bin", "FOO=bar", "LANG=C"}; !cmp.Equal(want, env) {
		t.Errorf("env: %s", cmp.Diff(want, env))
	}
	if want := []string{"data:/data:rw", "/srv:/srv:ro,rshared", "cache:/c"}; !cmp.Equal(want, binds) {
		t.Errorf("binds: %s", cmp.Diff(want, binds))
	}
	if want := []container.Ulimit{{Name: "nofile", Hard: 20000, Soft: 1024}}; !cmp.Equal(want, ulimits) {
		t.Errorf("ulimits: %s", cmp.Diff(want, ulimits))
	}
	if runtime != "" || pid != "" || uts != "" || ipc != "shareable" {
		t.Errorf("runtime %q, pid mode %q, uts mode %q, ipc mode %q: want Podman's defaults cleared, ipc kept", runtime, pid, uts, ipc)
	}
}

func TestNoHealthcheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *container.Health
		want bool
	}{
		{"docker without", nil, true},
		{"docker none", &container.Health{Status: container.NoHealthcheck}, true},
		{"podman without", &container.Health{}, true},
		{"starting", &container.Health{Status: container.Starting}, false},
		{"healthy", &container.Health{Status: container.Healthy}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := noHealthcheck(tc.h); got != tc.want {
				t.Errorf("noHealthcheck = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConnectPodman connects to a real Podman service and to dockerd:
// only the former is taken for Podman.
func TestConnectPodman(t *testing.T) {
	p, err := testutil.NewPodman()
	if err != nil {
		t.Fatalf("start a private Podman service: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	d := testutil.StartDaemon(t)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	for _, tc := range []struct {
		host string
		want bool
	}{{p.Host, true}, {d.Host, false}} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		c, err := ConnectHost(ctx, tc.host, log)
		cancel()
		if err != nil {
			t.Fatalf("connect %s: %v", tc.host, err)
		}
		if got := c.Info().Podman; got != tc.want {
			t.Errorf("%s: Info().Podman = %v, want %v", tc.host, got, tc.want)
		}
		if id := c.Info().ID; tc.want && !strings.HasPrefix(id, "podman-") {
			t.Errorf("%s: engine ID %q, want one derived for Podman", tc.host, id)
		}
		c.Close()
	}
}

// TestPodmanChanges follows a real Podman service's events: a volume
// created and then removed are two changes (Podman says "remove" where
// dockerd says "destroy").
func TestPodmanChanges(t *testing.T) {
	p, err := testutil.NewPodman()
	if err != nil {
		t.Fatalf("start a private Podman service: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	c, err := ConnectHost(t.Context(), p.Host, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	changed := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() { defer close(done); c.Changes(ctx, func() { changed <- struct{}{} }) }()
	defer func() { cancel(); <-done }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no change reported for %s", what)
		}
	}
	time.Sleep(300 * time.Millisecond) // the stream is open
	p.Docker(t, "volume", "create", "evvol")
	wait("a volume created")
	p.Docker(t, "volume", "rm", "evvol")
	wait("a volume removed")
}

// TestConnectRefusesRootlessPodman answers as a rootless Podman service
// would (a fake: this test host runs none) and expects one line that
// says what to use instead.
func TestConnectRefusesRootlessPodman(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "podman.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/libpod/info"):
			_, _ = w.Write([]byte(`{"host":{"security":{"rootless":true}}}`))
		case strings.HasSuffix(r.URL.Path, "/info"):
			_, _ = w.Write([]byte(`{"Name":"vm","ServerVersion":"4.3.1","DockerRootDir":"/home/u/.local/share/containers/storage"}`))
		case strings.HasSuffix(r.URL.Path, "/version"):
			_, _ = w.Write([]byte(`{"Version":"4.3.1","ApiVersion":"1.41","Components":[{"Name":"Podman Engine","Version":"4.3.1"}]}`))
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	_, err = ConnectHost(t.Context(), "unix://"+sock, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "rootless Podman") || !strings.Contains(err.Error(), "rootful") {
		t.Fatalf("connect to rootless Podman: %v, want a refusal naming the rootful service", err)
	}
}
