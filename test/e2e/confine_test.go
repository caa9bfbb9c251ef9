package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestoreConfinedUnderRacingContainer restores a point with many
// nested directories, 50 times each into an empty volume (--volume) and
// into an empty directory (--target), while a container that has the
// target bind-mounted swaps every directory the restore creates for a
// symlink to a host directory outside it. The bind mount (of the volume's
// _data, not the volume) keeps the container off the volume's users, as a
// container with the host path mounted would be. Nothing may land outside.
func TestRestoreConfinedUnderRacingContainer(t *testing.T) {
	const width, tries = 8, 50
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	mp := e.volume("nest")
	var names []string
	for i := range width {
		names = append(names, fmt.Sprintf("d%d", i))
		for j := range width {
			dir := fmt.Sprintf("d%d/s%d", i, j)
			names = append(names, dir)
			if err := os.MkdirAll(filepath.Join(mp, dir), 0o755); err != nil {
				t.Fatal(err)
			}
			for k := range 4 {
				if err := os.WriteFile(filepath.Join(mp, dir, fmt.Sprintf("f%d", k)), []byte("owned by root"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	e.ok("init")
	p := e.backup("volume/nest")

	for _, mode := range []string{"volume", "target"} {
		t.Run(mode, func(t *testing.T) {
			target := mp
			args := []string{"restore", p.ID, "--volume", "nest"}
			if mode == "target" {
				target = filepath.Join(t.TempDir(), "target")
				os.Mkdir(target, 0o755)
				args = append(args, "--target", target)
			}
			outside := t.TempDir()
			for j := range width { // so that d*/s* through a symlink resolve on the host
				os.Mkdir(filepath.Join(outside, fmt.Sprintf("s%d", j)), 0o755)
			}
			ctl := t.TempDir()
			startRacer(t, e, "racer-"+mode, target, ctl, outside, names)
			failed, refused, swaps, escaped := 0, 0, 0, 0
			var firstErr string
			start := time.Now()
			for range tries {
				emptyDir(t, target)
				os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644)
				r := e.run(nil, args...)
				os.Remove(filepath.Join(ctl, "go"))
				if r.code != 0 {
					failed++
					if strings.Contains(r.stderr, "not followed") {
						refused++
					}
					if firstErr == "" {
						firstErr = strings.TrimSpace(r.stderr)
					}
				}
				swaps += countMoved(target)
				if entriesBelow(outside) != width {
					escaped++
					for j := range width { // back to the starting state
						os.RemoveAll(filepath.Join(outside, fmt.Sprintf("s%d", j)))
						os.Mkdir(filepath.Join(outside, fmt.Sprintf("s%d", j)), 0o755)
					}
				}
			}
			t.Logf("confine: %d/%d restores, %d writes outside (--%s; %d failed, %d of them refusing a symlink, %d directories swapped, %s)",
				tries, tries, escaped, mode, failed, refused, swaps, time.Since(start).Round(time.Second))
			t.Logf("first failure: %s", firstErr)
			if escaped != 0 {
				t.Fatalf("%d of %d restores wrote outside their target", escaped, tries)
			}
			if swaps == 0 || refused == 0 {
				t.Fatalf("the racer swapped %d directories and %d restores refused a symlink: the test proves nothing", swaps, refused)
			}
		})
	}
}

// startRacer runs a container with target bind-mounted at /x that, while
// ctl/go exists, moves each of names aside once the restore has created it
// and puts a symlink to outside (a host path) in its place, and plants one
// first at each name whose parent the restore has created. Top-level names
// are left alone until created, so the target is empty when restore checks.
func startRacer(t *testing.T, e *env, name, target, ctl, outside string, names []string) {
	t.Helper()
	script := `while :; do
  if [ ! -e /ctl/go ]; then usleep 20000; continue; fi
  for n in ` + strings.Join(names, " ") + `; do
    if [ -d /x/$n ] && [ ! -L /x/$n ]; then mv /x/$n /x/$n.moved && ln -s ` + outside + ` /x/$n
    elif [ "${n%/*}" != "$n" ] && [ -d /x/${n%/*} ] && [ ! -L /x/${n%/*} ] && [ ! -e /x/$n ]; then
      ln -s ` + outside + ` /x/$n 2>/dev/null
    fi
  done
done`
	e.d.Docker(t, "run", "-d", "--name", name, "-v", target+":/x", "-v", ctl+":/ctl",
		"lifeboat-test/busybox:1", "sh", "-c", script)
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", name) })
}

// emptyDir removes everything in dir (never following a symlink), retrying
// while the racer may still be finishing a swap.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	for range 100 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			return
		}
		for _, en := range entries {
			os.RemoveAll(filepath.Join(dir, en.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cannot empty %s", dir)
}

// countMoved counts the directories the racer moved aside.
func countMoved(dir string) int {
	n := 0
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
		if strings.HasSuffix(p, ".moved") {
			n++
		}
		return nil
	})
	return n
}

// entriesBelow counts everything below dir, not following symlinks.
func entriesBelow(dir string) int {
	n := -1
	filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
	return n
}
