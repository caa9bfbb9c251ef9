package fsmeta

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// ScanOptions tune a scan.
type ScanOptions struct {
	// Exclude reports whether a relative path is left out (nil: nothing).
	Exclude func(rel string, isDir bool) bool
	// Dir, when set, vets every directory below the root; its error stops
	// the scan (and so the backup).
	Dir func(rel string, st *unix.Stat_t) error
	// Memo, when set, holds the inodes an earlier scan of the tree found
	// without extended attributes, and keeps those this one finds.
	Memo *XattrMemo
	// Keep, when set, is given the directories Scan lists (see Keeper).
	Keep Keeper
}

// Keeper keeps what a scan listed, so that a walk that would list the
// tree again takes it from there.
type Keeper interface {
	// Wants reports whether it would keep a directory of n names: the
	// scan then holds their stats until Add.
	Wants(n int) bool
	// Add is given a directory wanted, once its kept entries are
	// visited: rel its path below the root ("" the root), dir the open
	// directory (valid during the call only), the entries in name order.
	Add(rel string, dir *os.File, entries []Listed)
}

// Listed is an entry of a directory as Scan found it.
type Listed struct {
	Name string
	Stat unix.Stat_t
}

type inodeKey struct{ dev, ino uint64 }

type inodeInfo struct {
	nlink uint64
	paths []string
}

// Scanner builds a tree's sidecar from the entries a walk hands it:
// Scan walks for it, or a walk that reads the tree anyway (the frozen
// pass's capture) feeds it, so that the tree is listed once.
type Scanner struct {
	ctx    context.Context
	start  time.Time // before any entry's stat: what Memo measures against
	opts   ScanOptions
	sc     *Sidecar
	st     Stats
	inodes map[inodeKey]*inodeInfo
	buf    []byte
}

// NewScanner starts a sidecar of the tree at root with root's own
// metadata; the walk then calls Visit for each entry below it.
func NewScanner(ctx context.Context, root string, opts ScanOptions) (*Scanner, error) {
	s := blankScanner(ctx, opts, time.Now())
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	if err := s.xattrs(root, ".", &st); err != nil {
		return nil, err
	}
	s.time(".", &st)
	s.st.Dirs++
	return s, nil
}

// Fork is a scanner for a subtree that another goroutine walks; Join
// adds what it recorded back.
func (s *Scanner) Fork() *Scanner { return blankScanner(s.ctx, s.opts, s.start) }

func blankScanner(ctx context.Context, opts ScanOptions, start time.Time) *Scanner {
	return &Scanner{ctx: ctx, start: start, opts: opts, sc: &Sidecar{Version: Version}, inodes: map[inodeKey]*inodeInfo{}, buf: make([]byte, 4096)}
}

// Join adds what f, forked from s and done, recorded.
func (s *Scanner) Join(f *Scanner) {
	s.sc.Renames = append(s.sc.Renames, f.sc.Renames...)
	s.sc.Specials = append(s.sc.Specials, f.sc.Specials...)
	s.sc.NotKept = append(s.sc.NotKept, f.sc.NotKept...)
	for p, x := range f.sc.Xattrs {
		if s.sc.Xattrs == nil {
			s.sc.Xattrs = map[Path]map[string][]byte{}
		}
		s.sc.Xattrs[p] = x
	}
	for p, t := range f.sc.Times {
		if s.sc.Times == nil {
			s.sc.Times = map[Path]int64{}
		}
		s.sc.Times[p] = t
	}
	for k, in := range f.inodes {
		if mine := s.inodes[k]; mine != nil {
			mine.paths = append(mine.paths, in.paths...)
		} else {
			s.inodes[k] = in
		}
	}
	s.st.Files += f.st.Files
	s.st.Dirs += f.st.Dirs
	s.st.Symlinks += f.st.Symlinks
	s.st.Specials += f.st.Specials
	s.st.Bytes += f.st.Bytes
}

// Result is the sidecar and the counts of what was visited. Its lists
// are in the order of a walk depth first by name, however the walk was
// split: the same tree gives the same sidecar, so it deduplicates.
func (s *Scanner) Result() (*Sidecar, Stats) {
	s.groupLinks()
	slices.SortStableFunc(s.sc.Renames, func(a, b Rename) int { return walkOrder(a.Path, b.Path) })
	slices.SortStableFunc(s.sc.Specials, func(a, b Special) int { return walkOrder(a.Path, b.Path) })
	slices.SortStableFunc(s.sc.NotKept, func(a, b NotKept) int { return walkOrder(a.Path, b.Path) })
	return s.sc, s.st
}

// walkOrder orders paths as a walk depth first by sorted name meets
// them: name by name ("a/b" before "a-c", which a byte order reverses).
func walkOrder(a, b Path) int {
	x, y := string(a), string(b)
	for {
		i, j := strings.IndexByte(x, '/'), strings.IndexByte(y, '/')
		xn, yn := x, y
		if i >= 0 {
			xn = x[:i]
		}
		if j >= 0 {
			yn = y[:j]
		}
		if c := strings.Compare(xn, yn); c != 0 || i < 0 || j < 0 {
			if c != 0 {
				return c
			}
			return cmp.Compare(i, j) // the shorter path, a parent, first
		}
		x, y = x[i+1:], y[j+1:]
	}
}

// Scan walks root without following symlinks and returns what kopia will
// not keep of it, and counts for progress. Each directory is opened from
// its parent's descriptor through no symlink and each entry stat'ed
// there: one lookup of one name, and no path a running container swaps
// for a symlink leads the scan out of the tree.
func Scan(ctx context.Context, root string, opts ScanOptions) (*Sidecar, Stats, error) {
	s, err := NewScanner(ctx, root, opts)
	if err != nil {
		return nil, Stats{}, err
	}
	f, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("scan %s: %w", root, err)
	}
	if err := s.dir(f, root, ""); err != nil {
		return nil, Stats{}, err
	}
	sc, st := s.Result()
	return sc, st, nil
}

// dir scans the open directory d (closed on return), at abs, rel below
// the root.
func (s *Scanner) dir(d *os.File, abs, rel string) error {
	defer d.Close()
	if err := s.ctx.Err(); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("scan %s: %w", abs, err)
	}
	sort.Strings(names)
	keep := s.opts.Keep != nil && s.opts.Keep.Wants(len(names))
	var kept []Listed
	var subdirs []string
	for _, name := range names {
		e := Listed{Name: name}
		ok, err := s.entry(int(d.Fd()), name, filepath.Join(abs, name), path.Join(rel, name), &e.Stat)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if e.Stat.Mode&unix.S_IFMT == unix.S_IFDIR {
			subdirs = append(subdirs, name)
		}
		if keep {
			kept = append(kept, e)
		}
	}
	if keep {
		s.opts.Keep.Add(rel, d, kept)
	}
	for _, name := range subdirs {
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
			continue // removed, or swapped for a file or a symlink, since its stat
		case err != nil:
			return fmt.Errorf("scan %s: %w", filepath.Join(abs, name), err)
		}
		sub := filepath.Join(abs, name)
		if err := s.dir(os.NewFile(uintptr(fd), sub), sub, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// entry stats and visits name in the directory dirfd; false when it is
// gone or excluded.
func (s *Scanner) entry(dirfd int, name, abs, rel string, st *unix.Stat_t) (bool, error) {
	if err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil // vanished during the scan
		}
		return false, fmt.Errorf("scan %s: %w", abs, err)
	}
	if s.opts.Exclude != nil && s.opts.Exclude(rel, st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		return false, nil
	}
	return true, s.Visit(abs, rel, st)
}

// Visit records the entry at abs (rel below the root), whose lstat is st:
// the walk calls it for every entry it keeps, in its order, a directory
// before what it holds. Options.Exclude is the walk's to apply.
func (s *Scanner) Visit(abs, rel string, st *unix.Stat_t) error {
	if name := filepath.Base(rel); !utf8.ValidString(name) {
		s.sc.Renames = append(s.sc.Renames, Rename{Path: Path(rel), Stored: Path(storedName(rel))})
	}
	if err := s.xattrs(abs, rel, st); err != nil {
		return err
	}
	switch typ := st.Mode & unix.S_IFMT; typ {
	case unix.S_IFDIR:
		if s.opts.Dir != nil {
			if err := s.opts.Dir(rel, st); err != nil {
				return err
			}
		}
		s.st.Dirs++
		s.time(rel, st)
	case unix.S_IFREG:
		s.st.Files++
		s.st.Bytes += st.Size
		if st.Nlink > 1 {
			k := inodeKey{uint64(st.Dev), st.Ino}
			in := s.inodes[k]
			if in == nil {
				in = &inodeInfo{nlink: uint64(st.Nlink)}
				s.inodes[k] = in
			}
			in.paths = append(in.paths, rel)
		}
	case unix.S_IFLNK:
		s.st.Symlinks++
		s.time(rel, st)
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		s.st.Specials++
		t := map[uint32]string{unix.S_IFIFO: "fifo", unix.S_IFCHR: "char", unix.S_IFBLK: "block"}[typ]
		s.sc.Specials = append(s.sc.Specials, Special{
			Path: Path(rel), Type: t, Mode: st.Mode & 07777, Rdev: uint64(st.Rdev),
			UID: st.Uid, GID: st.Gid, MtimeNs: st.Mtim.Nano(),
		})
	case unix.S_IFSOCK:
		s.sc.NotKept = append(s.sc.NotKept, NotKept{Path: Path(rel), Reason: "socket: a runtime object, recreated by its server, not restorable"})
	}
	return nil
}

func (s *Scanner) time(rel string, st *unix.Stat_t) {
	if s.sc.Times == nil {
		s.sc.Times = map[Path]int64{}
	}
	s.sc.Times[Path(rel)] = st.Mtim.Nano()
}

// xattrs records every extended attribute of abs, ACLs included,
// unless the memo knows the inode has none.
func (s *Scanner) xattrs(abs, rel string, st *unix.Stat_t) error {
	if s.opts.Memo.bare(st) {
		return nil
	}
	names, err := s.listxattr(abs)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		s.opts.Memo.recordBare(st, s.start)
		return nil
	}
	for _, name := range names {
		val, err := s.getxattr(abs, name)
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			s.sc.NotKept = append(s.sc.NotKept, NotKept{Path: Path(rel), Reason: fmt.Sprintf("xattr %s unreadable: %v", name, err)})
			continue
		}
		if s.sc.Xattrs == nil {
			s.sc.Xattrs = map[Path]map[string][]byte{}
		}
		if s.sc.Xattrs[Path(rel)] == nil {
			s.sc.Xattrs[Path(rel)] = map[string][]byte{}
		}
		s.sc.Xattrs[Path(rel)][name] = val
	}
	return nil
}

func (s *Scanner) listxattr(abs string) ([]string, error) {
	for {
		n, err := unix.Llistxattr(abs, s.buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			s.buf = make([]byte, len(s.buf)*4)
			continue
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ENOENT):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %s: %w", abs, err)
		}
		var names []string
		for _, b := range splitNul(s.buf[:n]) {
			names = append(names, b)
		}
		return names, nil
	}
}

func (s *Scanner) getxattr(abs, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(abs, name, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*8)
			continue
		}
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), buf[:n]...), nil
	}
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}

// groupLinks turns inodes seen under two or more names into link groups.
// Links to places outside the tree cannot come back; the names inside it
// still share one inode after a restore.
func (s *Scanner) groupLinks() {
	for _, in := range s.inodes {
		if len(in.paths) < 2 {
			continue
		}
		sort.Strings(in.paths)
		g := make([]Path, len(in.paths))
		for i, p := range in.paths {
			g[i] = Path(p)
		}
		s.sc.HardLinks = append(s.sc.HardLinks, g)
	}
	sort.Slice(s.sc.HardLinks, func(i, j int) bool { return s.sc.HardLinks[i][0] < s.sc.HardLinks[j][0] })
}
