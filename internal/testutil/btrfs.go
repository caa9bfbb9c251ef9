package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Btrfs makes a btrfs filesystem on a loop device of the given size and
// mounts it; the test fails (never skips) when that cannot be done. It is
// unmounted and detached when the test ends.
func Btrfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "btrfs.img"), filepath.Join(dir, "mnt")
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("truncate", "-s", size, img)
	run("mkfs.btrfs", "-q", img)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	loop := run("losetup", "--find", "--show", img)
	run("mount", "-t", "btrfs", loop, mnt)
	t.Cleanup(func() {
		_ = exec.Command("umount", "-l", mnt).Run()
		_ = exec.Command("losetup", "-d", loop).Run()
	})
	return mnt
}

// Subvolume creates a btrfs subvolume at path.
func Subvolume(t testing.TB, path string) {
	t.Helper()
	if out, err := exec.Command("btrfs", "subvolume", "create", path).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create %s: %v\n%s", path, err, out)
	}
}
