package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const txComposeFile = `version: "2.4"
services:
  db:
    image: lifeboat-test/busybox:1
    container_name: txdb
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
    stop_signal: SIGKILL
  web:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    volumes: ["data:/data:ro"]
    stop_signal: SIGKILL
volumes:
  data: {}
`

// txEnv is the scene of the restore-journal tests: a Compose project
// (one service with container_name) and a volume no container uses, each
// with a restore point taken while their marker said "point" and changed
// to "post" since.
type txEnv struct {
	*env
	state       string
	project     string // the project's point
	volume      string // the volume's point
	kills, good int
}

func newTxEnv(t *testing.T) *txEnv {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	x := &txEnv{env: e}
	for _, kv := range e.vars {
		if v, ok := strings.CutPrefix(kv, "LIFEBOAT_STATE_DIR="); ok {
			x.state = v
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(txComposeFile), 0o644); err != nil {
		t.Fatal(err)
	}
	x.compose(t, dir, "up", "-d")
	t.Cleanup(func() {
		for _, c := range []string{"txdb", "txshop_web_1", "txoutsider", "txcopy_txdb", "txcopy_web_1", "txfail", "txfail2"} {
			e.d.DockerErr("rm", "-f", c)
		}
		for _, v := range []string{"txshop_data", "txvol", "txcopy_data", "txnew", "txempty", "txfailvol", "txfail2_txfailvol"} {
			e.d.DockerErr("volume", "rm", "-f", v)
		}
		e.d.DockerErr("network", "rm", "txshop_default", "txcopy_default")
	})
	e.d.Docker(t, "volume", "create", "txvol")
	for _, v := range []string{"txshop_data", "txvol"} {
		mp := x.mountpoint(t, v)
		if err := os.WriteFile(filepath.Join(mp, "blob"), make([]byte, 4<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		x.setMarker(t, v, "point")
	}
	e.ok("init")
	x.project = e.backup("project/txshop").ID
	x.volume = e.backup("volume/txvol").ID
	x.setMarker(t, "txshop_data", "post")
	x.setMarker(t, "txvol", "post")
	return x
}

func (x *txEnv) compose(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", "txshop"}, args...)...)
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), []string{"DOCKER_HOST=" + x.d.Host})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
	}
}

func (x *txEnv) mountpoint(t *testing.T, vol string) string {
	t.Helper()
	return x.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol)
}

func (x *txEnv) setMarker(t *testing.T, vol, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(x.mountpoint(t, vol), "marker"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func marker(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "marker"))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

func (x *txEnv) ids(t *testing.T, names ...string) string {
	t.Helper()
	var out []string
	for _, n := range names {
		st, err := x.d.DockerErr("inspect", "-f", "{{.Id}} {{.State.Status}}", n)
		if err != nil {
			st = "missing"
		}
		out = append(out, n+"="+strings.TrimSpace(st))
	}
	return strings.Join(out, ", ")
}

func (x *txEnv) exists(kind, name string) bool {
	_, err := x.d.DockerErr(kind, "inspect", name)
	return err == nil
}

// leftovers lists what a restore must never leave behind: staging and old
// directories beside the given directories, renamed containers, journal
// entries.
func (x *txEnv) leftovers(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		des, _ := os.ReadDir(filepath.Dir(d))
		for _, de := range des {
			if strings.Contains(de.Name(), ".lifeboat-restore-") || strings.Contains(de.Name(), ".lifeboat-old-") {
				out = append(out, filepath.Join(filepath.Dir(d), de.Name()))
			}
		}
	}
	for _, n := range strings.Fields(x.d.Docker(t, "ps", "-a", "--format", "{{.Names}}")) {
		if strings.Contains(n, "lifeboat-old") {
			out = append(out, "container "+n)
		}
	}
	des, _ := os.ReadDir(filepath.Join(x.state, "restores"))
	for _, de := range des {
		out = append(out, "journal entry "+de.Name())
	}
	return out
}

// killed runs a restore that is SIGKILLed at failpoint, then the next
// command, and returns that command's stderr, which must say what it did.
func (x *txEnv) killed(t *testing.T, failpoint string, args ...string) string {
	t.Helper()
	killAt(t, x.env, failpoint, append([]string{"restore"}, args...)...)
	x.kills++
	r := x.ok("snapshots", "--json")
	t.Logf("killed at %s; then: %s", failpoint, strings.TrimSpace(r.stderr))
	if !strings.Contains(r.stderr, "an interrupted restore of") {
		t.Errorf("the next command did not say what it settled: %q", r.stderr)
	}
	return r.stderr
}

// outcome classifies a killed restore: rolled back (what was there is
// there, as it was), completed, or neither (the test fails).
func (x *txEnv) outcome(t *testing.T, want string, rolledBack, completed bool, left []string, stderr string) {
	t.Helper()
	got := "neither"
	switch {
	case rolledBack && !completed:
		got = "rolled back"
	case completed && !rolledBack:
		got = "completed"
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v (%s)", left, stderr)
		got = "left things behind"
	}
	if got != want {
		t.Errorf("%s, want %s; the replay said %q", got, want, stderr)
		return
	}
	x.good++
}

// TestKilledRestoresSettle kills restores of every kind at each step of
// their journal: the next command rolls each back, or finishes it once
// its data was swapped in, and leaves nothing behind.
func TestKilledRestoresSettle(t *testing.T) {
	x := newTxEnv(t)
	before := []string{"journalled", "extracted", "swap-half"}
	after := []string{"swapped", "committed"}

	t.Run("target", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "out")
		for _, fp := range append(before, after...) {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dst, "marker"), []byte("mine"), 0o644)
			os.WriteFile(filepath.Join(dst, "stale"), []byte("mine"), 0o644)
			stderr := x.killed(t, "restore-"+fp, x.volume, "--volume", "txvol", "--target", dst, "--force")
			_, staleErr := os.Stat(filepath.Join(dst, "stale"))
			want := map[bool]string{true: "completed", false: "rolled back"}[fp == "swapped" || fp == "committed"]
			x.outcome(t, want, marker(t, dst) == "mine" && staleErr == nil, marker(t, dst) == "point" && staleErr != nil, x.leftovers(t, dst), stderr)
		}
		os.RemoveAll(dst)
		for _, fp := range []string{"dir-made", "extracted"} {
			stderr := x.killed(t, "restore-"+fp, x.volume, "--volume", "txvol", "--target", dst)
			_, err := os.Lstat(dst)
			x.outcome(t, "rolled back", os.IsNotExist(err), err == nil, x.leftovers(t, dst), stderr)
		}
	})

	t.Run("volume", func(t *testing.T) {
		mp := x.mountpoint(t, "txvol")
		for _, fp := range append(before, after...) {
			stderr := x.killed(t, "restore-"+fp, x.volume, "--volume", "txvol", "--force")
			want := map[bool]string{true: "completed", false: "rolled back"}[fp == "swapped" || fp == "committed"]
			m := marker(t, mp)
			x.outcome(t, want, m == "post", m == "point", x.leftovers(t, mp), stderr)
			x.setMarker(t, "txvol", "post")
		}
		for _, fp := range []string{"volume-made", "extracted"} {
			stderr := x.killed(t, "restore-"+fp, x.volume, "--volume", "txvol", "--as", "txnew")
			x.outcome(t, "rolled back", !x.exists("volume", "txnew"), x.exists("volume", "txnew"), x.leftovers(t, mp), stderr)
		}
	})

	originals := []string{"txdb", "txshop_web_1"}
	t.Run("copy", func(t *testing.T) {
		was := x.ids(t, originals...)
		for _, fp := range []string{"journalled", "network-made", "volume-made", "extracted", "container-made", "started", "committed"} {
			stderr := x.killed(t, "restore-"+fp, x.project, "--as", "txcopy")
			copyThere := x.exists("container", "txcopy_txdb") || x.exists("container", "txcopy_web_1") ||
				x.exists("volume", "txcopy_data") || x.exists("network", "txcopy_default")
			copyWhole := x.ids(t, "txcopy_txdb", "txcopy_web_1") != "" && strings.Count(x.ids(t, "txcopy_txdb", "txcopy_web_1"), " running") == 2
			if now := x.ids(t, originals...); now != was {
				t.Errorf("killed at %s, the copy touched the original: %s, was %s", fp, now, was)
			}
			want := map[bool]string{true: "completed", false: "rolled back"}[fp == "committed"]
			x.outcome(t, want, !copyThere, copyWhole, x.leftovers(t, x.mountpoint(t, "txshop_data")), stderr)
			for _, c := range []string{"txcopy_txdb", "txcopy_web_1"} {
				x.d.DockerErr("rm", "-f", c)
			}
			x.d.DockerErr("volume", "rm", "txcopy_data")
			x.d.DockerErr("network", "rm", "txcopy_default")
		}
	})

	t.Run("in place", func(t *testing.T) {
		for _, fp := range []string{"journalled", "renamed", "stopped", "extracted", "swap-half", "swapped", "container-made", "started", "committed"} {
			was := x.ids(t, originals...)
			stderr := x.killed(t, "restore-"+fp, x.project, "--force")
			now := x.ids(t, originals...)
			m := marker(t, x.mountpoint(t, "txshop_data"))
			running := strings.Count(now, " running") == 2
			want := map[bool]string{true: "completed", false: "rolled back"}[fp == "committed"]
			x.outcome(t, want, now == was && m == "post", running && now != was && m == "point", x.leftovers(t, x.mountpoint(t, "txshop_data")), stderr)
			x.setMarker(t, "txshop_data", "post")
		}
	})
	t.Logf("restore kills: %d/%d rolled back or completed, nothing left behind", x.good, x.kills)
	if x.good != x.kills || x.kills < 20 {
		t.Errorf("restore kills: %d/%d settled", x.good, x.kills)
	}
}

// TestRestoreRefusesWhatIsNotItsOwn: a unit restore --force never swaps a
// volume shared with a container outside the unit, a volume restore never
// writes into one a running container uses (even empty), a copy never
// touches the original, a failed restore creates nothing, and --target
// DIR --force replaces a directory's contents.
func TestRestoreRefusesWhatIsNotItsOwn(t *testing.T) {
	x := newTxEnv(t)
	originals := []string{"txdb", "txshop_web_1"}
	mp := x.mountpoint(t, "txshop_data")

	t.Run("shared volume", func(t *testing.T) {
		x.d.Docker(t, "run", "-d", "--name", "txoutsider", "-v", "txshop_data:/shared", "lifeboat-test/busybox:1", "sleep", "100000")
		for _, state := range []string{"running", "stopped"} {
			if state == "stopped" {
				x.d.Docker(t, "stop", "-t", "0", "txoutsider")
			}
			was := x.ids(t, originals...)
			r := x.run(nil, "restore", x.project, "--force")
			if r.code != 1 || !strings.Contains(r.stderr, "txoutsider") || !strings.Contains(r.stderr, "txshop_data") {
				t.Errorf("%s outsider: exit %d, %q", state, r.code, r.stderr)
			}
			if m := marker(t, mp); m != "post" {
				t.Errorf("%s outsider: the shared volume holds %q, want its data intact", state, m)
			}
			if now := x.ids(t, originals...); now != was {
				t.Errorf("%s outsider: the project changed: %s, was %s", state, now, was)
			}
			if left := x.leftovers(t, mp); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		}
		x.d.Docker(t, "rm", "-f", "txoutsider")
	})

	t.Run("empty volume in use", func(t *testing.T) {
		x.d.Docker(t, "run", "-d", "--name", "txoutsider", "-v", "txempty:/e", "lifeboat-test/busybox:1", "sleep", "100000")
		r := x.run(nil, "restore", x.volume, "--volume", "txvol", "--as", "txempty")
		if r.code != 1 || !strings.Contains(r.stderr, "txoutsider") {
			t.Errorf("restore into an empty volume in use: exit %d, %q", r.code, r.stderr)
		}
		if des, _ := os.ReadDir(x.mountpoint(t, "txempty")); len(des) != 0 {
			t.Errorf("written into a volume in use: %d entries", len(des))
		}
		x.d.Docker(t, "rm", "-f", "txoutsider")
	})

	t.Run("copy with container_name, forced", func(t *testing.T) {
		was := x.ids(t, originals...)
		x.ok("restore", x.project, "--as", "txcopy", "--force")
		if now := x.ids(t, originals...); now != was {
			t.Errorf("the copy touched the original: %s, was %s", now, was)
		}
		if got := x.ids(t, "txcopy_txdb", "txcopy_web_1"); strings.Count(got, " running") != 2 {
			t.Errorf("copy: %s", got)
		}
		if m := marker(t, x.mountpoint(t, "txcopy_data")); m != "point" {
			t.Errorf("copy's volume holds %q", m)
		}
		// Again, over the copy: it replaces the copy, still not the original.
		x.ok("restore", x.project, "--as", "txcopy", "--force")
		if now := x.ids(t, originals...); now != was {
			t.Errorf("the second copy touched the original: %s, was %s", now, was)
		}
		if left := x.leftovers(t, mp, x.mountpoint(t, "txcopy_data")); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("failed restore creates nothing", func(t *testing.T) {
		// The point holds /data/fail, so the restored container turns
		// unhealthy and the restore fails after creating its volume and
		// container. (An exit right after start could come after the
		// restore's check: a healthcheck makes the failure certain.)
		x.d.Docker(t, "run", "-d", "--name", "txfail", "-v", "txfailvol:/data",
			"--health-cmd", "test ! -e /data/fail", "--health-interval", "1s", "--health-retries", "1",
			"lifeboat-test/busybox:1", "sleep", "100000")
		x.d.Docker(t, "exec", "txfail", "touch", "/data/fail")
		p := x.backup("container/txfail")
		r := x.run(nil, "restore", p.ID, "--as", "txfail2")
		if r.code != 1 {
			t.Fatalf("restore of a container that turns unhealthy: exit %d, %q", r.code, r.stderr)
		}
		if x.exists("container", "txfail2") || x.exists("volume", "txfail2_txfailvol") {
			t.Errorf("a failed restore left what it created: %s", r.stderr)
		}
		if left := x.leftovers(t); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("target force", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "out")
		os.MkdirAll(filepath.Join(dst, "sub"), 0o755)
		os.WriteFile(filepath.Join(dst, "stale"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(dst, "marker"), []byte("mine"), 0o644)
		if r := x.run(nil, "restore", x.volume, "--volume", "txvol", "--target", dst); r.code != 1 || !strings.Contains(r.stderr, "--force") {
			t.Errorf("non-empty target without --force: exit %d, %q", r.code, r.stderr)
		}
		x.ok("restore", x.volume, "--volume", "txvol", "--target", dst, "--force")
		des, _ := os.ReadDir(dst)
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		if strings.Join(names, " ") != "blob marker" || marker(t, dst) != "point" {
			t.Errorf("--target --force: %v, marker %q", names, marker(t, dst))
		}
		if left := x.leftovers(t, dst); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}
