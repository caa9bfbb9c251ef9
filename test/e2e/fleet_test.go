package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

type fleetUnit struct {
	Unit        string     `json:"unit"`
	Engine      string     `json:"engine"`
	LastSuccess *time.Time `json:"last_success"`
	LastPoint   string     `json:"last_point"`
	Protection  string     `json:"protection"`
	LastError   string     `json:"last_error"`
}

type fleetEngine struct {
	Name      string `json:"name"`
	Host      string `json:"host"`
	Reachable bool   `json:"reachable"`
	Version   string `json:"version"`
	EngineID  string `json:"engine_id"`
	Hostname  string `json:"hostname"`
	Units     int    `json:"units"`
	Error     string `json:"error"`
}

type fleetPoint struct {
	ID       string `json:"id"`
	Unit     string `json:"unit"`
	Host     string `json:"host"`
	EngineID string `json:"engine_id"`
	Engine   string `json:"engine"`
}

// TestFleet is one repository for many engines: two private engines
// (and one that does not exist) in one config file. The CLI backs up the
// same 200 MiB volume from each (--engine) and the second adds little;
// one lifeboat serve backs up each engine's labelled unit on schedule,
// names units ENGINE/KIND/NAME, reports each engine's health, and
// restores engine alpha's unit onto engine beta.
func TestFleet(t *testing.T) {
	alpha, beta := fleetDaemon(t), fleetDaemon(t)
	// beta is reached through a socket the test can cut, as a network
	// can, while its engine and containers go on.
	cable := newCable(t, strings.TrimPrefix(beta.Host, "unix://"))
	e := newEnvOn(t, alpha)
	idA, idB := alpha.Docker(t, "info", "-f", "{{.ID}}"), beta.Docker(t, "info", "-f", "{{.ID}}")
	if idA == idB || idA == "" {
		t.Fatalf("engine IDs %q and %q", idA, idB)
	}
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	body := fmt.Sprintf("engines:\n  - {name: alpha, host: %q}\n  - {name: beta, host: %q, concurrency: 2}\n  - {name: gone, host: \"unix:///nonexistent/docker.sock\"}\n", alpha.Host, "unix://"+cable.path)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_CONFIG="+cfg, "DOCKER_HOST=unix:///nonexistent/none.sock")
	e.ok("init")

	t.Run("cross-host dedup", func(t *testing.T) {
		for i, d := range []*testutil.Daemon{alpha, beta} {
			d.Docker(t, "volume", "create", "fleetdata")
			mp := d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "fleetdata")
			for f := range 20 { // 200 MiB, the same on both
				writeRandom(t, filepath.Join(mp, fmt.Sprintf("blob%02d", f)), 10<<20, uint64(f))
			}
			if i == 1 { // and 4 MiB only beta has
				writeRandom(t, filepath.Join(mp, "beta-only"), 4<<20, 999)
			}
			d.Docker(t, "run", "-d", "--name", "fleetapp", "-v", "fleetdata:/data", "lifeboat-test/busybox:1", "sleep", "100000")
		}
		size0 := treeBytes(t, e.repo)
		e.ok("--engine", "alpha", "backup", "container/fleetapp")
		size1 := treeBytes(t, e.repo)
		e.ok("--engine", "beta", "backup", "container/fleetapp")
		size2 := treeBytes(t, e.repo)
		first, second := size1-size0, size2-size1
		t.Logf("repository growth: alpha's 200 MiB volume +%.1f MiB; beta's (same 200 MiB, 4 MiB its own) +%.1f MiB = %.1f %% of the first",
			mib(first), mib(second), 100*float64(second)/float64(first))
		if first < 150<<20 || second > first/10 {
			t.Fatalf("first backup added %d bytes, second %d: want the second at most 10 %% of the first", first, second)
		}
		var ps []fleetPoint
		if err := jsonUnmarshal(e.ok("snapshots", "container/fleetapp", "--json").stdout, &ps); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range ps {
			got[p.Host] = p.EngineID
			if p.Engine != p.Host {
				t.Errorf("point %s: engine %q, host %q", p.ID, p.Engine, p.Host)
			}
		}
		if len(ps) != 2 || got["alpha"] != idA || got["beta"] != idB {
			t.Fatalf("points by host: %v, want alpha %s, beta %s", got, idA, idB)
		}
	})

	for _, x := range []struct {
		d    *testutil.Daemon
		name string
	}{{alpha, "alpha"}, {beta, "beta"}} {
		x.d.Docker(t, "run", "-d", "--name", "fleetweb", "--label", "lifeboat.schedule=@every 3s", "-v", "webdata:/data",
			"lifeboat-test/busybox:1", "sh", "-c", "echo hello from "+x.name+" > /data/hello; exec sleep 100000")
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("fleet-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := e.serve(t, freePort(t), tokenFile)

	t.Run("each engine's units on schedule", func(t *testing.T) {
		var units []fleetUnit
		deadline := time.Now().Add(90 * time.Second)
		for {
			srv.api("GET", "/api/v1/units", nil, &units)
			done := 0
			for _, u := range units {
				if (u.Unit == "alpha/container/fleetweb" || u.Unit == "beta/container/fleetweb") && u.LastSuccess != nil {
					done++
				}
			}
			if done == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("units after 90 s: %+v\nlog:\n%s", units, srv.logs())
			}
			time.Sleep(500 * time.Millisecond)
		}
		byEngine := map[string][]string{}
		for _, u := range units {
			byEngine[u.Engine] = append(byEngine[u.Engine], u.Unit)
			if !strings.HasPrefix(u.Unit, u.Engine+"/") {
				t.Errorf("unit %s of engine %s", u.Unit, u.Engine)
			}
		}
		t.Logf("units by engine: %v", byEngine)
		if strings.Contains(srv.logs(), "waiting for the unit's lock") {
			t.Errorf("one engine's unit waited for another engine's unit of the same name:\n%s", srv.logs())
		}
		if len(byEngine["alpha"]) != 2 || len(byEngine["beta"]) != 2 {
			t.Fatalf("units by engine: %v", byEngine)
		}
		m := srv.metrics(t)
		if !strings.Contains(m, `lifeboat_unit_protected{engine="beta",unit="beta/container/fleetweb"} 1`) || !strings.Contains(m, `lifeboat_engine_up{engine="gone"} 0`) {
			t.Errorf("metrics lack the engine label or the engine's health:\n%s", m)
		}
	})

	t.Run("engines and their health", func(t *testing.T) {
		var engines []fleetEngine
		if code := srv.api("GET", "/api/v1/engines", nil, &engines); code != 200 || len(engines) != 3 {
			t.Fatalf("GET /api/v1/engines: %d %+v", code, engines)
		}
		by := map[string]fleetEngine{}
		for _, g := range engines {
			by[g.Name] = g
		}
		t.Logf("engines: %+v", engines)
		if a, b := by["alpha"], by["beta"]; !a.Reachable || !b.Reachable || a.EngineID != idA || b.EngineID != idB || a.Units != 2 || a.Version == "" {
			t.Errorf("alpha %+v, beta %+v", a, b)
		}
		if g := by["gone"]; g.Reachable || !strings.Contains(g.Error, "nonexistent") {
			t.Errorf("gone: %+v", g)
		}
		r := e.run(nil, "engines", "--json")
		if r.code != 1 || !strings.Contains(r.stderr, "engine gone does not answer") || !strings.Contains(r.stdout, idB) {
			t.Errorf("lifeboat engines: exit %d, %s %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("alpha's unit restored onto beta", func(t *testing.T) {
		var j lockJob
		req := map[string]any{"kind": "restore", "engine": "beta",
			"restore": map[string]any{"point": "container/fleetweb@latest", "from_host": "alpha", "as": "fleetweb-alpha"}}
		if code := srv.api("POST", "/api/v1/jobs", req, &j); code/100 != 2 {
			t.Fatalf("restore job: %d %+v", code, j)
		}
		if got := srv.waitJob(j.ID, 2*time.Minute); got.State != "succeeded" {
			t.Fatalf("restore job: %+v\n%s", got, srv.logs())
		}
		if out := beta.Docker(t, "exec", "fleetweb-alpha", "cat", "/data/hello"); out != "hello from alpha" {
			t.Fatalf("alpha's unit on beta holds %q", out)
		}
		if _, err := alpha.DockerErr("inspect", "fleetweb-alpha"); err == nil {
			t.Fatal("the restore onto beta created a container on alpha")
		}
		// The CLI does the same with --engine and --from-host.
		e.ok("--engine", "beta", "restore", "container/fleetapp@latest", "--from-host", "alpha", "--as", "fleetapp-alpha")
		if out := beta.Docker(t, "exec", "fleetapp-alpha", "ls", "/data"); strings.Contains(out, "beta-only") || !strings.Contains(out, "blob19") {
			t.Fatalf("alpha's fleetapp on beta holds %q", out)
		}
	})

	t.Run("an engine cut off marks its own units", func(t *testing.T) {
		cable.cut()
		cutAt := time.Now()
		var units []fleetUnit
		deadline := time.Now().Add(60 * time.Second)
		for {
			srv.api("GET", "/api/v1/units", nil, &units)
			unreachable, ofBeta, alphaFresh := 0, 0, false
			for _, u := range units {
				if u.Engine == "beta" {
					ofBeta++
				}
				if u.Engine == "beta" && u.Protection == "unreachable" && strings.Contains(u.LastError, "engine beta unreachable") {
					unreachable++
				}
				if u.Unit == "alpha/container/fleetweb" && u.LastSuccess != nil && u.LastSuccess.After(cutAt) && u.Protection == "protected" {
					alphaFresh = true
				}
			}
			if unreachable == ofBeta && unreachable >= 2 && alphaFresh {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("60 s after beta was cut off: %+v", units)
			}
			time.Sleep(500 * time.Millisecond)
		}
		var engines []fleetEngine
		srv.api("GET", "/api/v1/engines", nil, &engines)
		for _, g := range engines {
			if g.Name == "beta" && (g.Reachable || g.Error == "") {
				t.Errorf("beta cut off: %+v", g)
			}
		}
		t.Logf("beta cut off: all its units unreachable %v later, alpha's still backed up on schedule", time.Since(cutAt).Round(100*time.Millisecond))
	})
}

// cable forwards a unix socket to another until cut.
type cable struct {
	path  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCable(t *testing.T, to string) *cable {
	t.Helper()
	c := &cable{path: filepath.Join(t.TempDir(), "beta.sock")}
	ln, err := net.Listen("unix", c.path)
	if err != nil {
		t.Fatal(err)
	}
	c.ln = ln
	t.Cleanup(c.cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", to)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

func (c *cable) cut() {
	c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// fleetDaemon is a private engine of the test's own.
func fleetDaemon(t *testing.T) *testutil.Daemon {
	t.Helper()
	d, err := testutil.NewDaemonArgs(ownEngineID(t)...)
	if err != nil {
		t.Fatalf("start a private Docker daemon: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	d.EnsureImages(t, "busybox")
	return d
}

// ownEngineID are dockerd flags that give a test engine an ID of its own:
// Engine 20.10 derives its ID from /etc/docker/key.json, which every
// daemon of one machine shares, so each gets its own key, as two machines
// have.
func ownEngineID(t *testing.T) []string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"deprecated-key-path": "`+filepath.Join(filepath.Dir(cfg), "key.json")+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--config-file", cfg}
}

// writeRandom writes n incompressible bytes, the same for the same seed.
func writeRandom(t *testing.T, path string, n int, seed uint64) {
	t.Helper()
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// treeBytes is what the files under dir take.
func treeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
