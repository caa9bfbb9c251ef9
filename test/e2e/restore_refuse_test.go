package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestRestoreLeavesOutsidersAlone: a unit restore --force never swaps a
// volume that a container outside the unit uses, and a volume restore never
// writes under a running container; both are refused, naming it, and
// nothing is deleted.
func TestRestoreLeavesOutsidersAlone(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.d.Docker(t, "volume", "create", "sharedv")
	e.d.Docker(t, "run", "-d", "--name", "insider", "--network", "none", "-v", "sharedv:/d", "lifeboat-test/busybox:1", "sh", "-c", "echo before > /d/f; exec sleep 100000")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "insider", "outsider"); e.d.DockerErr("volume", "rm", "sharedv") })
	waitFor(t, func() bool { out, _ := e.d.DockerErr("exec", "insider", "cat", "/d/f"); return out == "before" })
	e.ok("init")
	p := e.backup("container/insider")
	e.d.Docker(t, "run", "-d", "--name", "outsider", "--network", "none", "-v", "sharedv:/d", "lifeboat-test/busybox:1", "sh", "-c", "echo after > /d/f; exec sleep 100000")
	waitFor(t, func() bool { out, _ := e.d.DockerErr("exec", "outsider", "cat", "/d/f"); return out == "after" })
	insiderID := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "insider")

	r := e.run(nil, "restore", p.ID, "--force")
	if r.code == 0 || !strings.Contains(r.stderr, "outsider") {
		t.Fatalf("unit restore --force over a volume an outside container uses: exit %d, %q", r.code, r.stderr)
	}
	r = e.run(nil, "restore", p.ID, "--volume", "sharedv", "--force")
	if r.code == 0 || !strings.Contains(r.stderr, "outsider") {
		t.Fatalf("volume restore under a running outside container: exit %d, %q", r.code, r.stderr)
	}
	if got := e.d.Docker(t, "exec", "outsider", "cat", "/d/f"); got != "after" {
		t.Fatalf("the refused restores changed the shared volume: %q", got)
	}
	if id := e.d.Docker(t, "inspect", "-f", "{{.Id}} {{.State.Status}}", "insider"); id != insiderID+" running" {
		t.Fatalf("the refused restore touched the unit's container: %s", id)
	}
	if names := e.d.Docker(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, "lifeboat") {
		t.Fatalf("a refused restore left containers behind: %s", names)
	}
}

const containerNameFile = `services:
  web:
    image: lifeboat-test/busybox:1
    container_name: cn-web
    command: ["sh", "-c", "echo original > /data/who; exec sleep 100000"]
    volumes: ["data:/data"]
    stop_signal: SIGKILL
volumes:
  data: {}
`

// TestCopyNeverTouchesOriginal restores a copy (--as, with --force) of a
// Compose project whose service sets container_name: the copy takes a name
// of its own and the original keeps running, untouched.
func TestCopyNeverTouchesOriginal(t *testing.T) {
	bin := testutil.ComposeV2(t)
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(containerNameFile), 0o644); err != nil {
		t.Fatal(err)
	}
	e.d.Compose(t, bin, dir, "cn", "up", "-d")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "cn-web") })
	waitFor(t, func() bool { out, _ := e.d.DockerErr("exec", "cn-web", "cat", "/data/who"); return out == "original" })
	e.ok("init")
	p := e.backup("project/cn")
	origID := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "cn-web")

	r := e.ok("restore", p.ID, "--as", "cncopy", "--force", "--json")
	if id := e.d.Docker(t, "inspect", "-f", "{{.Id}} {{.State.Status}}", "cn-web"); id != origID+" running" {
		t.Fatalf("the original after restoring a copy: %s (was %s running)", id, origID)
	}
	var copyName string
	for _, n := range strings.Fields(e.d.Docker(t, "ps", "--format", "{{.Names}}")) {
		if n != "cn-web" && strings.Contains(n, "cncopy") {
			copyName = n
		}
	}
	if copyName == "" {
		t.Fatalf("no running copy named for cncopy: %s\nrestore said %s", e.d.Docker(t, "ps", "-a", "--format", "{{.Names}}"), r.stdout)
	}
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", copyName) })
	if got := e.d.Docker(t, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.project"}}`, copyName); got != "cncopy" {
		t.Errorf("copy %s belongs to project %q", copyName, got)
	}
	if vols := e.d.Docker(t, "inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", copyName); strings.Contains(vols, "cn_data") {
		t.Errorf("the copy mounts the original's volume: %s", vols)
	}
}
