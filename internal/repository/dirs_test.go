package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Writers in many directories at once share one descriptor per
// directory, never more than maxOpenDirs unused ones stay open, and none
// is left once every directory is finished or the restore closes.
func TestOpenDirsShareAndClose(t *testing.T) {
	target := t.TempDir()
	root, err := beneath.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	before := openFds(t)
	d := newOpenDirs(root)
	const dirs, files = 3 * maxOpenDirs, 4
	for i := range dirs {
		if err := os.Mkdir(filepath.Join(target, fmt.Sprint(i)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, dirs*files)
	for i := range dirs {
		for j := range files {
			wg.Go(func() {
				parent, name, release, err := d.parent(fmt.Sprintf("%d/f%d", i, j))
				if err != nil {
					errs <- err
					return
				}
				defer release()
				fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
				if err != nil {
					errs <- err
					return
				}
				unix.Close(fd)
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := openFds(t) - before; n > maxOpenDirs {
		t.Fatalf("%d directories open, at most %d may be", n, maxOpenDirs)
	}
	for i := range dirs {
		if ents, _ := os.ReadDir(filepath.Join(target, fmt.Sprint(i))); len(ents) != files {
			t.Fatalf("directory %d holds %d files, want %d", i, len(ents), files)
		}
		d.finished(fmt.Sprint(i))
	}
	if n := openFds(t) - before; n != 0 {
		t.Fatalf("%d directories still open after all were finished", n)
	}
	// One still in use when finished is closed by its last release.
	_, _, release, err := d.parent("0/g")
	if err != nil {
		t.Fatal(err)
	}
	d.finished("0")
	if n := openFds(t) - before; n != 1 {
		t.Fatalf("%d directories open while one is in use", n)
	}
	release()
	if n := openFds(t) - before; n != 0 {
		t.Fatalf("%d directories open after the last release", n)
	}
	// closeAll closes what was never finished.
	for i := range 10 {
		_, _, release, err := d.parent(fmt.Sprintf("%d/h", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	d.closeAll()
	if n := openFds(t) - before; n != 0 {
		t.Fatalf("%d directories open after closeAll", n)
	}
}

// A directory a container swaps for a symlink before the restore first
// writes into it is refused, as a path resolved beneath the target is.
func TestOpenDirsRefuseSymlinkedDirectory(t *testing.T) {
	target, outside := t.TempDir(), t.TempDir()
	root, err := beneath.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.Symlink(outside, filepath.Join(target, "d")); err != nil {
		t.Fatal(err)
	}
	d := newOpenDirs(root)
	defer d.closeAll()
	if _, _, _, err := d.parent("d/f"); err == nil {
		t.Fatal("a symlinked directory was opened")
	}
	if _, _, _, err := d.parent("../f"); err == nil {
		t.Fatal("a path out of the target was accepted")
	}
}
