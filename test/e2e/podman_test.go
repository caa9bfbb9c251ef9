package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// newPodmanEnv gives the test a private rootful Podman API service with
// the busybox test image loaded from the cache (never pulled).
func newPodmanEnv(t *testing.T) *env {
	t.Helper()
	p, err := testutil.NewPodman()
	if err != nil {
		t.Fatalf("start a private Podman service: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	p.EnsureImages(t, "busybox")
	return newEnvOn(t, p)
}

// runConfig is the part of a container's configuration a restore must
// bring back, as the engine reports it.
type runConfig struct {
	Image      string
	Cmd        []string
	Env        []string
	Labels     map[string]string
	WorkingDir string
	User       string
	Restart    string
	Binds      []string // volume names and destinations, renamed volumes mapped back
	Running    bool
}

func inspectRun(t *testing.T, d *testutil.Daemon, name string, volumeAs map[string]string) runConfig {
	t.Helper()
	var info []struct {
		Image  string
		Config struct {
			Cmd        []string
			Env        []string
			Labels     map[string]string
			WorkingDir string
			User       string
		}
		HostConfig struct{ RestartPolicy struct{ Name string } }
		Mounts     []struct{ Name, Destination string }
		State      struct{ Running bool }
	}
	if err := json.Unmarshal([]byte(d.Docker(t, "inspect", name)), &info); err != nil || len(info) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	c := info[0]
	rc := runConfig{Image: c.Image, Cmd: c.Config.Cmd, Labels: c.Config.Labels, WorkingDir: c.Config.WorkingDir,
		User: c.Config.User, Restart: c.HostConfig.RestartPolicy.Name, Running: c.State.Running}
	for _, e := range c.Config.Env {
		// The hostname is the new container's own; Podman adds the others
		// to every container (and lifeboat leaves them out of a point).
		name, _, _ := strings.Cut(e, "=")
		if name != "HOSTNAME" && name != "HOME" && e != "TERM=xterm" && e != "container=podman" {
			rc.Env = append(rc.Env, e)
		}
	}
	slices.Sort(rc.Env)
	for _, m := range c.Mounts {
		n := m.Name
		if orig, ok := volumeAs[n]; ok {
			n = orig
		}
		rc.Binds = append(rc.Binds, n+":"+m.Destination)
	}
	slices.Sort(rc.Binds)
	return rc
}

// startPodWeb runs a standalone container with a volume, an environment,
// labels, a restart policy and a writable layer holding an added file, a
// changed directory and a deleted file.
func startPodWeb(t *testing.T, d *testutil.Daemon, name, vol, image string) {
	t.Helper()
	d.Docker(t, "volume", "create", vol)
	testutil.MakeEdgeTree(t, filepath.Join(d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol), "edge"))
	d.Docker(t, "run", "-d", "--name", name, "-e", "GREETING=hello podman", "--label", "app=web",
		"--restart", "unless-stopped", "-w", "/srv", "-v", vol+":/data", image,
		"sh", "-c", "mkdir -p /srv/site && echo layer >/srv/site/index.html && rm -f /etc/group && exec sleep 100000")
	for i := 0; i < 100 && !strings.Contains(d.Docker(t, "diff", name), "/srv/site/index.html"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// layerOf is `docker diff` as a sorted list.
func layerOf(t *testing.T, d *testutil.Daemon, name string) []string {
	t.Helper()
	lines := strings.Split(d.Docker(t, "diff", name), "\n")
	slices.Sort(lines)
	return lines
}

func volumeTree(t *testing.T, d *testutil.Daemon, vol string) []string {
	t.Helper()
	return testutil.Manifest(t, d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol))
}

// TestPodmanContainerRoundTrip backs up a standalone container on a
// rootful Podman service (paused for the copy: the cgroup freezer through
// Podman), and restores it beside the original with --as and then in
// place after removing it: the volume's tree equal in content and
// metadata, the writable layer's changes, and the run configuration, with
// the container running again.
func TestPodmanContainerRoundTrip(t *testing.T) {
	e := newPodmanEnv(t)
	startPodWeb(t, e.d, "pweb", "pdata", "lifeboat-test/busybox:1")
	e.ok("init")
	wantTree, wantLayer := volumeTree(t, e.d, "pdata"), layerOf(t, e.d, "pweb")
	wantRun := inspectRun(t, e.d, "pweb", nil)

	r := e.ok("backup", "container/pweb", "--consistency", "pause", "--json")
	noPodmanPlaceholders(t, e, "pweb")
	s := parseSummaries(t, r.stdout)
	if len(s) != 1 || s[0].Consistency != "pause" || s[0].Files == 0 {
		t.Fatalf("backup on Podman: %s", r.stdout)
	}
	if got := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "pweb"); got != "running" {
		t.Fatalf("after the paused backup pweb is %s, want running", got)
	}

	want := restored{wantTree, wantLayer, wantRun}
	t.Run("beside the original with --as", func(t *testing.T) {
		e.ok("restore", "container/pweb@latest", "--as", "pcopy")
		want.check(t, e.d, "pcopy", "pcopy_pdata", map[string]string{"pcopy_pdata": "pdata"})
	})
	t.Run("in place after removal", func(t *testing.T) {
		e.d.Docker(t, "rm", "-f", "pweb")
		e.d.Docker(t, "volume", "rm", "pdata")
		e.ok("restore", "container/pweb@latest")
		want.check(t, e.d, "pweb", "pdata", nil)
	})
	t.Run("a timeline image by commit", func(t *testing.T) {
		e.ok("backup", "container/pweb", "--images", "commit")
		if imgs := e.d.Docker(t, "images", "--format", "{{.Repository}}"); !strings.Contains(imgs, "lifeboat/pweb/pweb") {
			t.Errorf("no timeline image committed on Podman; images:\n%s", imgs)
		}
	})
	t.Run("a volume unit", func(t *testing.T) {
		e.backup("volume/pdata")
		e.ok("restore", "volume/pdata@latest", "--volume", "pdata", "--as", "pdata-copy")
		if got := volumeTree(t, e.d, "pdata-copy"); !cmp.Equal(wantTree, got) {
			t.Errorf("volume copy differs:\n%s", firstLines(cmp.Diff(wantTree, got), 40))
		}
	})
}

// restored is what a restored container must show: its volume's tree,
// its writable layer's changes and its run configuration.
type restored struct {
	tree, layer []string
	run         runConfig
}

func (w restored) check(t *testing.T, d *testutil.Daemon, name, vol string, as map[string]string) {
	t.Helper()
	if got := volumeTree(t, d, vol); !cmp.Equal(w.tree, got) {
		t.Errorf("volume %s differs (-want +got):\n%s", vol, firstLines(cmp.Diff(w.tree, got), 40))
	}
	if got := layerOf(t, d, name); !cmp.Equal(w.layer, got) {
		t.Errorf("writable layer of %s differs (-want +got):\n%s", name, cmp.Diff(w.layer, got))
	}
	if got := inspectRun(t, d, name, as); !cmp.Equal(w.run, got) {
		t.Errorf("run configuration of %s differs (-want +got):\n%s", name, cmp.Diff(w.run, got))
	}
	if got := d.Docker(t, "exec", name, "cat", "/srv/site/index.html"); got != "layer" {
		t.Errorf("%s serves %q from its layer, want %q", name, got, "layer")
	}
}

// TestPodmanDockerCrossRestore moves units between the two engines
// through one repository: a point taken on dockerd restores onto Podman,
// and a point taken on Podman, of a container whose image exists only
// there (kept in the point with --images save), restores onto dockerd,
// which loads the image from the point. Each comes back with its volume
// tree, writable layer and run configuration, running.
func TestPodmanDockerCrossRestore(t *testing.T) {
	e := newPodmanEnv(t)
	d := testutil.StartDaemon(t)
	d.EnsureImages(t, "busybox")
	onDocker := []string{"DOCKER_HOST=" + d.Host}
	e.ok("init")

	t.Run("docker point onto podman", func(t *testing.T) {
		startPodWeb(t, d, "xdweb", "xddata", "lifeboat-test/busybox:1")
		t.Cleanup(func() { d.DockerErr("rm", "-f", "xdweb"); d.DockerErr("volume", "rm", "xddata") })
		want := restored{volumeTree(t, d, "xddata"), layerOf(t, d, "xdweb"), inspectRun(t, d, "xdweb", nil)}
		if r := e.run(onDocker, "backup", "container/xdweb", "--consistency", "pause"); r.code != 0 {
			t.Fatalf("backup on dockerd: exit %d: %s", r.code, r.stderr)
		}
		e.ok("restore", "container/xdweb@latest")
		want.check(t, e.d, "xdweb", "xddata", nil)
	})

	t.Run("podman point with its image onto docker", func(t *testing.T) {
		// An image only Podman has: committed there, never on dockerd.
		e.d.Docker(t, "run", "--name", "xbuild", "lifeboat-test/busybox:1", "sh", "-c", "echo built >/built")
		e.d.Podman(t, "commit", "xbuild", "lifeboat-test/podonly:1")
		e.d.Docker(t, "rm", "xbuild")
		startPodWeb(t, e.d, "xpweb", "xpdata", "lifeboat-test/podonly:1")
		want := restored{volumeTree(t, e.d, "xpdata"), layerOf(t, e.d, "xpweb"), inspectRun(t, e.d, "xpweb", nil)}
		e.ok("backup", "container/xpweb", "--images", "save")
		if _, err := d.DockerErr("image", "inspect", want.run.Image); err == nil {
			t.Fatalf("dockerd already has the Podman-only image %s", want.run.Image)
		}
		if r := e.run(onDocker, "restore", "container/xpweb@latest", "--as", "xpcopy"); r.code != 0 {
			t.Fatalf("restore onto dockerd: exit %d: %s", r.code, r.stderr)
		}
		t.Cleanup(func() {
			d.DockerErr("rm", "-f", "xpcopy")
			d.DockerErr("volume", "rm", "xpcopy_xpdata")
			d.DockerErr("rmi", "-f", want.run.Image) // dockerd is shared with other tests
		})
		want.check(t, d, "xpcopy", "xpcopy_xpdata", map[string]string{"xpcopy_xpdata": "xpdata"})
		if got := d.Docker(t, "exec", "xpcopy", "cat", "/built"); got != "built" {
			t.Errorf("the image loaded on dockerd lacks its committed file: %q", got)
		}
	})
}

// TestPodmanPodMember backs up a container of a Podman pod and restores
// it after the whole pod is gone: pods are not units, their infra
// container is not listed, and a member comes back as a standalone
// container with its volume, layer and configuration, running.
func TestPodmanPodMember(t *testing.T) {
	e := newPodmanEnv(t)
	e.d.Podman(t, "pod", "create", "--name", "shop")
	e.d.Docker(t, "volume", "create", "shopdata")
	testutil.MakeEdgeTree(t, filepath.Join(e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "shopdata"), "edge"))
	e.d.Podman(t, "run", "-d", "--pod", "shop", "--name", "shop-web", "-e", "GREETING=hello podman", "--label", "app=web",
		"--restart", "unless-stopped", "-v", "shopdata:/data", "lifeboat-test/busybox:1",
		"sh", "-c", "mkdir -p /srv/site && echo layer >/srv/site/index.html && rm -f /etc/group && exec sleep 100000")
	for i := 0; i < 100 && !strings.Contains(e.d.Docker(t, "diff", "shop-web"), "/srv/site/index.html"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	e.ok("init")
	var units []struct{ Unit string }
	if err := json.Unmarshal([]byte(e.ok("ls", "--json").stdout), &units); err != nil {
		t.Fatal(err)
	}
	if len(units) != 1 || units[0].Unit != "container/shop-web" {
		t.Fatalf("ls: want only container/shop-web (no infra container), got %+v", units)
	}
	want := restored{volumeTree(t, e.d, "shopdata"), layerOf(t, e.d, "shop-web"), inspectRun(t, e.d, "shop-web", nil)}
	e.ok("backup", "container/shop-web", "--consistency", "pause")

	e.d.Podman(t, "pod", "rm", "-f", "shop")
	e.d.Docker(t, "volume", "rm", "shopdata")
	e.ok("restore", "container/shop-web@latest")
	want.check(t, e.d, "shop-web", "shopdata", nil)
	if mode := e.d.Docker(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", "shop-web"); mode != "bridge" {
		t.Errorf("restored pod member's network mode %q, want bridge (its own namespace)", mode)
	}
}

// TestPodmanPostgres dumps a PostgreSQL server on Podman through exec
// (auto: its dump plus a paused copy of its anonymous volume) and
// restores it beside the original: the copy serves the same rows.
func TestPodmanPostgres(t *testing.T) {
	e := newPodmanEnv(t)
	e.d.EnsureImages(t, "all")
	e.d.Docker(t, "run", "-d", "--name", "ppg", "-e", "POSTGRES_DB=shop", "lifeboat-test/postgres:15")
	psql := func(name, sql string) (string, error) {
		return e.d.DockerErr("exec", name, "psql", "-XAtq", "-d", "shop", "-c", sql)
	}
	waitForLong(t, func() bool { _, err := psql("ppg", "select 1"); return err == nil })
	if _, err := psql("ppg", "create table t(x int); insert into t values (42)"); err != nil {
		t.Fatal(err)
	}
	e.ok("init")
	r := e.ok("backup", "container/ppg", "--json")
	var s struct {
		Consistency string           `json:"consistency"`
		Dumps       map[string]int64 `json:"dumps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Consistency != "dump+pause" || s.Dumps["ppg/shop.dump"] == 0 {
		t.Fatalf("backup of PostgreSQL on Podman: want dump+pause with ppg/shop.dump: %s (%v)", r.stdout, err)
	}
	e.ok("restore", "container/ppg@latest", "--as", "ppgc")
	var got string
	waitForLong(t, func() bool { out, err := psql("ppgc", "select x from t"); got = out; return err == nil })
	if got != "42" {
		t.Errorf("restored copy serves %q, want 42", got)
	}
}

// noPodmanPlaceholders checks that the newest point of container/NAME
// holds none of the empty files Podman makes in a writable layer as its
// bind-mount targets: restored on dockerd they would say the container
// runs on Podman.
func noPodmanPlaceholders(t *testing.T, e *env, name string) {
	t.Helper()
	pt := filepath.Join(t.TempDir(), "point")
	e.ok("restore", "container/"+name+"@latest", "--target", pt)
	for _, f := range []string{"run/.containerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(pt, "containers", name, "layer", f)); err == nil {
			t.Errorf("the point's writable layer holds Podman's placeholder /%s", f)
		}
	}
}
