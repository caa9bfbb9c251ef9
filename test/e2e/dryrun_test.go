package e2e

import (
	"strings"
	"testing"
)

// TestRestoreDryRun: --dry-run says what a restore would create or refuse
// and changes nothing.
func TestRestoreDryRun(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	e.d.Docker(t, "run", "-d", "--name", "dry", "-v", "dryvol:/data", "lifeboat-test/busybox:1", "sh", "-c", "echo x > /data/f; sleep 100000")
	defer e.d.DockerErr("rm", "-f", "-v", "dry")
	waitFor(t, func() bool { _, err := e.d.DockerErr("exec", "dry", "test", "-s", "/data/f"); return err == nil })
	p := e.backup("container/dry")
	r := e.run(nil, "restore", p.ID, "--volume", "dryvol", "--dry-run")
	if r.code == 0 || !strings.Contains(r.stdout, "refused: volume dryvol already holds data") {
		t.Fatalf("dry run onto a volume with data: %d %q %q", r.code, r.stdout, r.stderr)
	}
	out := e.ok("restore", p.ID, "--volume", "dryvol", "--as", "drycopy", "--dry-run").stdout
	if !strings.Contains(out, "would create: volume drycopy") {
		t.Fatalf("dry run as a copy: %q", out)
	}
	if _, err := e.d.DockerErr("volume", "inspect", "drycopy"); err == nil {
		t.Fatal("a dry run created the volume")
	}
	r = e.run(nil, "restore", p.ID, "--dry-run")
	if r.code == 0 || !strings.Contains(r.stdout, "refused: container dry exists") || !strings.Contains(r.stdout, "would create: container dry") {
		t.Fatalf("dry run of the unit: %d %q", r.code, r.stdout)
	}
	out = e.ok("restore", p.ID, "--as", "dry2", "--dry-run").stdout
	if !strings.Contains(out, "would create: container dry2") || !strings.Contains(out, "would create: volume dry2_dryvol") {
		t.Fatalf("dry run of a copy: %q", out)
	}
}
