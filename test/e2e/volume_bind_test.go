package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBindVolumeStopped backs up a bind-type local volume
// (type=none,o=bind,device=DIR) while nothing mounts it: in stop mode, and
// as a volume unit of its own. The engine mounts such a volume only while a
// container uses it, so its mount point is empty then; the point must hold
// the device directory's files, not an empty tree.
func TestBindVolumeStopped(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dev := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dev, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "sub", "keep.txt"), []byte("bound data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.d.Docker(t, "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device="+dev, "bindvol")
	e.d.Docker(t, "run", "-d", "--name", "bindc", "-v", "bindvol:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "bindc"); e.d.DockerErr("volume", "rm", "bindvol") })
	e.ok("init")

	check := func(what, id string) {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "out")
		e.ok("restore", id, "--volume", "bindvol", "--target", dst)
		if b, err := os.ReadFile(filepath.Join(dst, "sub", "keep.txt")); err != nil || string(b) != "bound data\n" {
			t.Fatalf("%s: the point lacks the volume's file: %q %v", what, b, err)
		}
	}
	r := e.ok("backup", "container/bindc", "--consistency", "stop", "--json")
	p := parseSummaries(t, r.stdout)[0]
	if p.Consistency != "stop" || p.Files == 0 {
		t.Fatalf("stop-mode point %+v", p)
	}
	check("stop mode", p.ID)
	if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "bindc"); st != "running" {
		t.Fatalf("bindc is %s after the stop-mode backup", st)
	}
	e.d.Docker(t, "rm", "-f", "bindc")
	vp := e.backup("volume/bindvol").ID
	check("volume unit, unmounted", vp)

	// Restored in place, unmounted: the files land in the device
	// directory, where the next container will find them.
	if err := os.WriteFile(filepath.Join(dev, "sub", "keep.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("restore", vp, "--volume", "bindvol", "--force")
	if out := e.d.Docker(t, "run", "--rm", "-v", "bindvol:/d", "lifeboat-test/busybox:1", "cat", "/d/sub/keep.txt"); out != "bound data" {
		t.Fatalf("after restoring the unmounted bind volume a container reads %q", out)
	}
}
