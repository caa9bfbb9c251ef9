package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/kopia/kopia/fs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// Listings hold the directories of a host tree as the sidecar's scan
// listed them (fsmeta.ScanOptions.Listed), so that Live hands them to
// kopia's walk without listing the tree a second time: the scan stat'ed
// every entry already, and on a tree of 83,732 entries kopia's own lstat
// of each was an eighth of a backup's CPU. The scan runs ahead of the
// walk (it starts while the repository opens), so a listing waits for
// kopia; each is taken once. Past maxListed entries held the scan keeps
// no more, and the walk lists the rest itself: memory stays bounded on a
// tree of millions of files.
type Listings struct {
	base string
	mu   sync.Mutex
	m    map[string][]listed
	held int
}

// listed is an entry as the scan found it: what kopia's walk is given.
type listed struct {
	meta
	target string // a symlink's
	denied bool   // not stat'ed: permission denied
}

// maxListed bounds the entries Listings hold at once, about 120 bytes
// each: 12 MB.
var maxListed = 100_000

// NewListings holds listings of the tree at base.
func NewListings(base string) *Listings {
	return &Listings{base: base, m: map[string][]listed{}}
}

// Wants reports whether a directory of n entries fits (fsmeta.Keeper).
func (l *Listings) Wants(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held+n <= maxListed
}

// Add keeps the listing of rel (fsmeta.Keeper).
func (l *Listings) Add(rel string, dir *os.File, entries []fsmeta.Listed) {
	out := make([]listed, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		le := listed{meta: metaOfStat(e.Name, &e.Stat)}
		if e.Stat.Mode&unix.S_IFMT == unix.S_IFLNK {
			t, err := readlinkat(int(dir.Fd()), e.Name)
			if err != nil {
				continue // changed since its stat: the walk's own listing decides
			}
			le.target = t
		}
		out = append(out, le)
	}
	l.mu.Lock()
	l.m[rel] = out
	l.held += len(out)
	l.mu.Unlock()
}

// take removes and returns rel's listing, if the scan made one.
func (l *Listings) take(rel string) ([]listed, bool) {
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	es, ok := l.m[rel]
	if ok {
		delete(l.m, rel)
		l.held -= len(es)
	}
	return es, ok
}

// Live exposes the host directory path under name, read in place, with
// skip's entries left out (as Filtered): each directory as ls holds it
// when the scan listed it, else listed when kopia's walk reaches it,
// opened beneath path through no symlink with each entry stat'ed there.
// Files are opened beneath path too. ls may be nil.
func Live(path, name string, skip func(rel string, isDir bool) bool, ls *Listings) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("read %s: not a directory", path)
	}
	t := &liveTree{base: path, skip: skip, ls: ls}
	return &liveDir{meta: metaOfStat(name, &st), t: t}, nil
}

type liveTree struct {
	base string
	skip func(string, bool) bool
	ls   *Listings
}

func (t *liveTree) abs(rel string) string {
	if rel == "" {
		return t.base
	}
	return t.base + "/" + rel
}

type liveDir struct {
	meta
	t   *liveTree
	rel string // "" for the root, as the scan's listings are keyed
}

func (d *liveDir) LocalFilesystemPath() string      { return d.t.abs(d.rel) }
func (d *liveDir) SupportsMultipleIterations() bool { return true }

func (d *liveDir) Iterate(context.Context) (fs.DirectoryIterator, error) {
	es, err := d.entries()
	if err != nil {
		return nil, err
	}
	return fs.StaticIterator(es, nil), nil
}

func (d *liveDir) Child(_ context.Context, name string) (fs.Entry, error) {
	es, err := d.entries()
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.Name() == name {
			return e, nil
		}
	}
	return nil, fs.ErrEntryNotFound
}

// entries are the directory's kept entries: the scan's listing, or one
// made now.
func (d *liveDir) entries() ([]fs.Entry, error) {
	ls, ok := d.t.ls.take(d.rel)
	if !ok {
		var err error
		if ls, err = d.list(); err != nil {
			return nil, err
		}
	}
	out := make([]fs.Entry, 0, len(ls))
	for i := range ls {
		if e := d.entry(&ls[i]); e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func (d *liveDir) entry(l *listed) fs.Entry {
	rel := join(d.rel, l.name)
	switch {
	case l.denied:
		return &capturedError{meta: l.meta, err: &os.PathError{Op: "lstat", Path: d.t.abs(rel), Err: unix.EACCES}}
	case l.mode.IsDir():
		return &liveDir{meta: l.meta, t: d.t, rel: rel}
	case l.mode.IsRegular():
		return &liveFile{meta: l.meta, t: d.t, rel: rel}
	case l.mode&os.ModeSymlink != 0:
		return &liveSymlink{capturedSymlink: capturedSymlink{meta: l.meta, target: l.target}, path: d.t.abs(rel)}
	default: // FIFOs, devices, sockets: the sidecar keeps them
		return &capturedError{meta: l.meta, err: fs.ErrUnknown}
	}
}

// list lists the directory now, beneath the tree's root. One swapped
// for a symlink or a file since its parent was listed is gone, as one
// deleted: the container changed it.
func (d *liveDir) list() ([]listed, error) {
	abs := d.t.abs(d.rel)
	root, err := beneath.Open(d.t.base)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	defer root.Close()
	dir := d.rel
	if dir == "" {
		dir = "."
	}
	f, err := root.OpenDir(dir)
	if err != nil {
		if d.rel != "" && (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, beneath.ErrNotBeneath)) {
			err = fmt.Errorf("%w (%w)", os.ErrNotExist, err)
		}
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	out := make([]listed, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		err := unix.Fstatat(int(f.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue // deleted since it was listed
		case errors.Is(err, unix.EACCES):
			out = append(out, listed{meta: meta{name: name}, denied: true})
			continue
		case err != nil:
			return nil, fmt.Errorf("read %s/%s: %w", abs, name, err)
		}
		if d.t.skip != nil && d.t.skip(join(d.rel, name), st.Mode&unix.S_IFMT == unix.S_IFDIR) {
			continue
		}
		l := listed{meta: metaOfStat(name, &st)}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if l.target, err = readlinkat(int(f.Fd()), name); err != nil {
				continue // swapped since its stat: as deleted
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// liveFile is a host file read in place, opened beneath the tree's root
// through no symlink and only if it is still a regular file.
type liveFile struct {
	meta
	t   *liveTree
	rel string
}

func (f *liveFile) LocalFilesystemPath() string { return f.t.abs(f.rel) }

func (f *liveFile) Open(context.Context) (fs.Reader, error) {
	root, err := beneath.Open(f.t.base)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	r, err := root.OpenRegular(f.rel)
	if err != nil {
		return nil, err
	}
	return &capturedReader{File: r, e: f}, nil
}

type liveSymlink struct {
	capturedSymlink
	path string
}

func (s *liveSymlink) LocalFilesystemPath() string { return s.path }

var (
	_ fs.Directory = (*liveDir)(nil)
	_ fs.File      = (*liveFile)(nil)
	_ fs.Symlink   = (*liveSymlink)(nil)
)
var _ fsmeta.Keeper = (*Listings)(nil)
