package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExcludeLabel: lifeboat.exclude on a container leaves matching paths
// of its volumes out of the restore point, at any depth.
func TestExcludeLabel(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	mp := e.volume("exdata")
	for _, f := range []string{"keep.txt", "app.log", "sub/deep.log", "sub/keep.bin", "cache/blob", "sub/cache/x"} {
		os.MkdirAll(filepath.Join(mp, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(mp, f), []byte(f), 0o644)
	}
	e.d.Docker(t, "run", "-d", "--name", "excluder", "--label", "lifeboat.exclude=*.log,cache/",
		"-v", "exdata:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	e.ok("init")
	p := e.backup("container/excluder")
	dst := filepath.Join(t.TempDir(), "r")
	e.ok("restore", p.ID, "--volume", "exdata", "--target", dst)
	for f, want := range map[string]bool{"keep.txt": true, "sub/keep.bin": true, "app.log": false, "sub/deep.log": false, "cache/blob": false, "sub/cache/x": false} {
		_, err := os.Stat(filepath.Join(dst, f))
		if (err == nil) != want {
			t.Errorf("%s restored = %v, want %v", f, err == nil, want)
		}
	}
	e.d.Docker(t, "rm", "-f", "excluder")
}
