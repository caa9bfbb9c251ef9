package repository

import (
	"os"
	"strings"
	"sync"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

// maxOpenDirs bounds the directories a restore keeps open at once (kopia
// begins every directory of a piece before it writes a file).
const maxOpenDirs = 256

// openDirs keeps open the directories a restore writes into, so that an
// entry is created beside its siblings through one descriptor instead of
// resolving its directory's path again: that was an openat2 and a close
// of the eight syscalls a small file costs. A descriptor is the
// directory this restore made, wherever a container may since have moved
// it: a rename cannot take it off the volume's mount, so what is written
// through it stays beneath the target, as with a path resolved beneath.
type openDirs struct {
	root *beneath.Root
	mu   sync.Mutex
	m    map[string]*heldFile
}

func newOpenDirs(root *beneath.Root) *openDirs {
	return &openDirs{root: root, m: map[string]*heldFile{}}
}

// parent returns the open directory that holds rel, rel's last component,
// and the release to call when done with the directory.
func (d *openDirs) parent(rel string) (*os.File, string, func(), error) {
	if err := beneath.Check(rel); err != nil {
		return nil, "", nil, err
	}
	dir, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.m[dir]; h != nil {
		h.users++
		return h.f, name, func() { d.release(h) }, nil
	}
	// Opened under the lock: once per directory, and a second writer of
	// the same directory would only open it again.
	f, err := d.root.OpenDir(dir)
	if err != nil {
		return nil, "", nil, err
	}
	if len(d.m) >= maxOpenDirs {
		d.sweepLocked()
	}
	h := &heldFile{f: f, users: 1}
	d.m[dir] = h
	return f, name, func() { d.release(h) }, nil
}

func (d *openDirs) release(h *heldFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h.unuse()
}

// finished stops keeping rel's descriptor, closed once nobody uses it:
// kopia writes nothing more into a directory it finished.
func (d *openDirs) finished(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.m[rel]; h != nil {
		delete(d.m, rel)
		h.drop()
	}
}

// sweepLocked stops keeping every descriptor; one in use is closed by
// its last release.
func (d *openDirs) sweepLocked() {
	for dir, h := range d.m {
		delete(d.m, dir)
		h.drop()
	}
}

// closeAll closes what is left, at the end of the restore.
func (d *openDirs) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked()
}
