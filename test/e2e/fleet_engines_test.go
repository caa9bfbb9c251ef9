package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestServeThreeEngines is issue 16's appliance end to end: three private
// engines, each in a network namespace of its own, one reached over
// ssh:// (Debian's sshd, keys made here), one over tcp:// with TLS
// (certificates made here), one Podman; one lifeboat serve protects all
// three by labels, and each engine's unit is restored on another
// (ssh→tls and tls→podman by API jobs, podman→ssh by the CLI with
// --engine and --from-host). The restored volume trees are compared with
// what docs/remote.md says survives the way the data moved, and the two
// remote engines hold no container or image afterwards that they did not
// hold before.
func TestServeThreeEngines(t *testing.T) {
	sshR := testutil.NewRemoteDaemon(t, ownEngineID(t)...)
	tlsR := testutil.NewRemoteDaemon(t, ownEngineID(t)...)
	ssh := sshR.StartSSH(t)
	pod, err := testutil.NewPodman()
	if err != nil {
		t.Fatalf("start a private Podman service: %v", err)
	}
	t.Cleanup(func() { pod.Stop() })
	engines := map[string]*testutil.Daemon{"ssh": sshR.Daemon, "tls": tlsR.Daemon, "podman": pod}
	trees := map[string][]string{}
	for name, d := range engines {
		d.EnsureImages(t, "busybox")
		unit, vol := name+"web", name+"data"
		d.Docker(t, "volume", "create", vol)
		mp := d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol)
		testutil.MakeEdgeTree(t, mp)
		trees[name] = testutil.Manifest(t, mp)
		d.Docker(t, "run", "-d", "--name", unit, "--label", "lifeboat.schedule=@every 3s", "-v", vol+":/data",
			"lifeboat-test/busybox:1", "sleep", "100000")
	}
	before := map[string][]string{}
	for name, d := range engines {
		before[name] = engineState(t, d)
	}

	e := newEnvOn(t, pod)
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	body := fmt.Sprintf("engines:\n  - {name: ssh, host: %q, ssh_config: %q}\n  - {name: tls, host: %q, tls_verify: true, cert_path: %q}\n  - {name: podman, host: %q}\n",
		ssh.Host, ssh.Config, tlsR.TLSHost, tlsR.CertDir, pod.Host)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_CONFIG="+cfg, "DOCKER_HOST=unix:///nonexistent/none.sock")
	e.ok("init")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("three-engines-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	srv := e.serve(t, freePort(t), tokenFile)

	t.Run("each engine's unit on schedule", func(t *testing.T) {
		want := []string{"ssh/container/sshweb", "tls/container/tlsweb", "podman/container/podmanweb"}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var units []fleetUnit
			srv.api("GET", "/api/v1/units", nil, &units)
			done := map[string]bool{}
			for _, u := range units {
				if u.LastSuccess != nil {
					done[u.Unit] = true
				}
			}
			if done[want[0]] && done[want[1]] && done[want[2]] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("units after 2 min: %+v\nlog:\n%s", units, srv.logs())
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("all three engines' units backed up by serve %v after it started", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("all three reachable, told apart by engine ID", func(t *testing.T) {
		var got []fleetEngine
		if code := srv.api("GET", "/api/v1/engines", nil, &got); code != 200 || len(got) != 3 {
			t.Fatalf("GET /api/v1/engines: %d %+v", code, got)
		}
		ids := map[string]string{}
		for _, g := range got {
			t.Logf("engine %s: reachable %v, %s, ID %s, host name %s", g.Name, g.Reachable, g.Version, g.EngineID, g.Hostname)
			if !g.Reachable || g.EngineID == "" || g.Version == "" {
				t.Errorf("engine %+v", g)
			}
			ids[g.EngineID] = g.Name
		}
		if len(ids) != 3 || ids[sshR.Docker(t, "info", "-f", "{{.ID}}")] != "ssh" || ids[tlsR.Docker(t, "info", "-f", "{{.ID}}")] != "tls" {
			t.Errorf("engine IDs not distinct or not the engines' own: %v", ids)
		}
	})

	t.Run("each unit restored on another engine", func(t *testing.T) {
		for _, x := range []struct{ from, to string }{{"ssh", "tls"}, {"tls", "podman"}} {
			began := time.Now()
			var j lockJob
			req := map[string]any{"kind": "restore", "engine": x.to,
				"restore": map[string]any{"point": "container/" + x.from + "web@latest", "from_host": x.from}}
			if code := srv.api("POST", "/api/v1/jobs", req, &j); code/100 != 2 {
				t.Fatalf("restore job %s→%s: %d %+v", x.from, x.to, code, j)
			}
			if got := srv.waitJob(j.ID, 2*time.Minute); got.State != "succeeded" {
				t.Fatalf("restore job %s→%s: %+v\n%s", x.from, x.to, got, srv.logs())
			}
			t.Logf("%s's unit restored on %s by an API job in %v", x.from, x.to, time.Since(began).Round(10*time.Millisecond))
		}
		began := time.Now()
		r := e.ok("--engine", "ssh", "restore", "container/podmanweb@latest", "--from-host", "podman")
		t.Logf("podman's unit restored on ssh by the CLI in %v:\n%s", time.Since(began).Round(10*time.Millisecond), r.stderr)

		// ssh and tls were read through the engine's archive endpoint:
		// whole-second mtimes, no xattrs or ACLs, holes read as zeros.
		// Whatever the target, the restore holds exactly that.
		requireSame(t, "ssh's volume restored on tls", archiveRead(trees["ssh"]), volumeTree(t, tlsR.Daemon, "sshdata"), holesFilled)
		requireSame(t, "tls's volume restored on podman", archiveRead(trees["tls"]), volumeTree(t, pod, "tlsdata"), holesFilled)
		// Podman's volume was read on this host (the local fast path) and
		// written through the archive upload, which keeps all but holes.
		requireSame(t, "podman's volume restored on ssh", trees["podman"], volumeTree(t, sshR.Daemon, "podmandata"), holesFilled)
		// The restored containers carry their schedule labels, so serve
		// backs them up too and may hold one paused for a moment.
		for unit, d := range map[string]*testutil.Daemon{"sshweb": tlsR.Daemon, "tlsweb": pod, "podmanweb": sshR.Daemon} {
			s := d.Docker(t, "inspect", "-f", "{{.State.Status}}", unit)
			for i := 0; i < 60 && s == "paused"; i++ {
				time.Sleep(500 * time.Millisecond)
				s = d.Docker(t, "inspect", "-f", "{{.State.Status}}", unit)
			}
			if s != "running" {
				t.Errorf("restored %s is %s", unit, s)
			}
		}
	})

	t.Run("nothing left on the engines", func(t *testing.T) {
		// serve goes on backing up every 3 s (the restored containers
		// too): it stops first, so what it leaves is what it left.
		srv.cmd.Process.Signal(syscall.SIGTERM)
		if err := srv.cmd.Wait(); err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, srv.logs())
		}
		tlsR.Docker(t, "rm", "-f", "sshweb")
		tlsR.Docker(t, "volume", "rm", "sshdata")
		sshR.Docker(t, "rm", "-f", "podmanweb")
		sshR.Docker(t, "volume", "rm", "podmandata")
		pod.Podman(t, "rm", "-f", "-t", "0", "tlsweb") // the compat rm waits out sleep's 10 s
		pod.Docker(t, "volume", "rm", "tlsdata")
		for name, d := range engines {
			if diff := cmp.Diff(before[name], engineState(t, d)); diff != "" {
				t.Errorf("engine %s holds containers or images it did not before (-before +after):\n%s", name, diff)
			}
		}
		var points []fleetPoint
		if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &points); err != nil {
			t.Fatal(err)
		}
		hosts := map[string]int{}
		for _, p := range points {
			hosts[p.Host]++
		}
		t.Logf("points by engine after %v of serve: %v; every engine's containers and images as before", time.Since(start).Round(time.Second), hosts)
	})
}
