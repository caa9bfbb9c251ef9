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
	m    map[string]*openDir
}

type openDir struct {
	f     *os.File
	users int
	done  bool // its directory is finished: close it when unused
}

func newOpenDirs(root *beneath.Root) *openDirs {
	return &openDirs{root: root, m: map[string]*openDir{}}
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
	od := d.m[dir]
	if od != nil {
		od.users++
		d.mu.Unlock()
		return od.f, name, func() { d.release(dir, od) }, nil
	}
	d.mu.Unlock()
	f, err := d.root.OpenDir(dir)
	if err != nil {
		return nil, "", nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if od := d.m[dir]; od != nil { // opened meanwhile by another writer
		f.Close()
		od.users++
		return od.f, name, func() { d.release(dir, od) }, nil
	}
	if len(d.m) >= maxOpenDirs {
		d.sweepLocked()
	}
	od = &openDir{f: f, users: 1}
	d.m[dir] = od
	return f, name, func() { d.release(dir, od) }, nil
}

func (d *openDirs) release(dir string, od *openDir) {
	d.mu.Lock()
	defer d.mu.Unlock()
	od.users--
	if od.users == 0 && (od.done || d.m[dir] != od) {
		od.f.Close()
		if d.m[dir] == od {
			delete(d.m, dir)
		}
	}
}

// finished closes rel's descriptor once nobody uses it: kopia writes
// nothing more into a directory it finished.
func (d *openDirs) finished(rel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	od := d.m[rel]
	if od == nil {
		return
	}
	if od.users > 0 {
		od.done = true
		return
	}
	od.f.Close()
	delete(d.m, rel)
}

// sweepLocked closes every descriptor nobody uses; one in use stays, and
// is closed by its last release since it is no longer in the map.
func (d *openDirs) sweepLocked() {
	for dir, od := range d.m {
		delete(d.m, dir)
		if od.users == 0 {
			od.f.Close()
		}
	}
}

// closeAll closes what is left, at the end of the restore.
func (d *openDirs) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweepLocked()
}
