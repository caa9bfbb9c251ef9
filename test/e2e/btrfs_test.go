package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestBtrfsSnapshot: a project on btrfs (a subvolume bound as a volume, a
// plain named volume and the writable layer, all on btrfs) is frozen only
// while snapshots are taken, and its point holds the three files of a
// writer at one instant: each a gap-free prefix, the later-written ones at
// most one record behind.
func TestBtrfsSnapshot(t *testing.T) {
	mnt := testutil.Btrfs(t, "3G")
	d, err := testutil.NewDaemonWithDataRoot(filepath.Join(mnt, "docker"))
	if err != nil {
		t.Fatalf("start a Docker daemon on btrfs: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	e := newEnvOn(t, d)
	e.d.EnsureImages(t, "busybox")
	sub := filepath.Join(mnt, "appdata")
	testutil.Subvolume(t, sub)
	e.d.Docker(t, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device="+sub, "appvol")
	e.d.Docker(t, "volume", "create", "logs")
	// Records go to the subvolume, then the plain volume, then the layer.
	e.runWriter(t, "bt-w-1", `i=0; while true; do i=$((i+1)); echo $i >> /data/seq; echo $i >> /logs/seq; echo $i >> /tmp/seq; done`,
		"--label", "com.docker.compose.project=bt", "--label", "com.docker.compose.service=w", "-v", "appvol:/data", "-v", "logs:/logs")
	waitFor(t, func() bool {
		out, _ := e.d.DockerErr("exec", "bt-w-1", "wc", "-l", "/tmp/seq")
		n, _ := strconv.Atoi(strings.Fields(out + " 0")[0])
		return n > 2000
	})
	e.ok("init")
	r := e.ok("backup", "project/bt", "--consistency", "snapshot", "--json", "-v")
	p := parseSummaries(t, r.stdout)[0]
	if p.Consistency != "snapshot" || p.DowntimeMS == nil {
		t.Fatalf("point %+v", p)
	}
	t.Logf("snapshot mode: unit frozen %d ms", *p.DowntimeMS)
	if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "bt-w-1"); st != "running" {
		t.Fatalf("writer is %s after the backup", st)
	}
	if _, err := os.Stat(filepath.Join(mnt, ".lifeboat-snapshots")); !os.IsNotExist(err) {
		t.Fatalf("snapshots left behind: %v", err)
	}

	counts := map[string]int{}
	for _, path := range []string{"volumes/appvol", "volumes/logs", "containers/bt-w-1/layer"} {
		dst := filepath.Join(t.TempDir(), "r")
		e.ok("restore", p.ID, "--path", path, "--target", dst)
		file := filepath.Join(dst, "seq")
		if path == "containers/bt-w-1/layer" {
			file = filepath.Join(dst, "tmp", "seq")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		counts[path] = gapFree(t, path, string(b))
	}
	a, l, y := counts["volumes/appvol"], counts["volumes/logs"], counts["containers/bt-w-1/layer"]
	t.Logf("records: subvolume %d, volume %d, layer %d", a, l, y)
	if !(a >= l && l >= y && a-y <= 1) {
		t.Fatalf("not one instant: subvolume %d, volume %d, layer %d records", a, l, y)
	}

	t.Run("storage that cannot snapshot", func(t *testing.T) {
		o := newEnv(t) // the shared daemon: its data is not on btrfs
		o.d.EnsureImages(t, "busybox")
		o.d.Docker(t, "run", "-d", "--name", "nosnap", "lifeboat-test/busybox:1", "sleep", "100000")
		defer o.d.Docker(t, "rm", "-f", "nosnap")
		o.ok("init")
		r := o.run(nil, "backup", "container/nosnap", "--consistency", "snapshot")
		if r.code == 0 || !strings.Contains(r.stderr, "not on btrfs") || !strings.Contains(r.stderr, "snapshot,pause") {
			t.Fatalf("exit %d, stderr %q: want a refusal that names the fallback", r.code, r.stderr)
		}
		p := parseSummaries(t, o.ok("backup", "container/nosnap", "--consistency", "snapshot,pause", "--json").stdout)[0]
		if p.Consistency != "pause" {
			t.Fatalf("fallback: consistency %q, want pause", p.Consistency)
		}
	})
}

// gapFree checks that s is the lines 1..n and returns n.
func gapFree(t *testing.T, what, s string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("%s: line %d is %q: not a gap-free prefix (a torn write?)", what, i+1, l)
		}
	}
	return len(lines)
}
