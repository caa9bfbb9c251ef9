package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// Capture takes the tree at path as it is now, with skip's entries left
// out, into memory: every entry's metadata, every symlink's target, and a
// copy in stage of every regular file that seen does not hold unchanged.
// The tree it returns reads nothing of path but files seen unchanged —
// those kopia finds in the live pass's cache and does not open — so it can
// be uploaded after the unit is thawed and still be the frozen state.
// Copies run in parallel, by reflink where the file system shares blocks,
// else in the kernel (copy_file_range): no hashing while frozen. sc,
// when not nil, is fed every entry kept: the sidecar's scan, with the
// tree listed once.
func Capture(ctx context.Context, path, name string, skip func(rel string, isDir bool) bool, seen *Seen, stage *Stage, sc *fsmeta.Scanner) (Entry, error) {
	w := newWalker(path, skip, seen, stage, false)
	w.sc = sc
	d, err := w.walk(ctx)
	if err != nil {
		return nil, err
	}
	d.meta.name = name
	if err := w.copyAll(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// walker lists a data directory, on every core: a subdirectory met
// while a core is free is listed by a goroutine of its own, with a fork
// of the sidecar's scanner.
type walker struct {
	*walkShared
	sc *fsmeta.Scanner // this goroutine's, nil: no sidecar fed
}

type walkShared struct {
	base  string // the data directory walked
	skip  func(string, bool) bool
	seen  *Seen
	stage *Stage
	// capped: copies count against the stage's budget (before a freeze).
	capped bool

	free chan struct{} // a token per core beyond the caller's
	wg   sync.WaitGroup
	mu   sync.Mutex
	jobs []*capturedFile
	errs []error
	sub  []*walker // the forked walks, joined once all are done
}

func newWalker(base string, skip func(string, bool) bool, seen *Seen, stage *Stage, capped bool) *walker {
	sh := &walkShared{base: base, skip: skip, seen: seen, stage: stage, capped: capped, free: make(chan struct{}, runtime.NumCPU()-1)}
	for range cap(sh.free) {
		sh.free <- struct{}{}
	}
	return &walker{walkShared: sh}
}

// walk lists the data directory. Each directory is opened from its
// parent's descriptor without following a symlink, and each entry is
// stat'ed there: one lookup of one name per entry, and no path a
// running container swaps for a symlink leads out of the tree.
func (w *walker) walk(ctx context.Context) (*capturedDir, error) {
	fd, err := unix.Open(w.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", w.base, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("read %s: %w", w.base, err)
	}
	root := &capturedDir{meta: metaOfStat(filepath.Base(w.base), &st)}
	err = w.dir(ctx, os.NewFile(uintptr(fd), w.base), root, "")
	w.wg.Wait()
	for _, f := range w.sub {
		if w.sc != nil {
			w.sc.Join(f.sc)
		}
	}
	if err = errors.Join(append(w.errs, err)...); err != nil {
		return nil, err
	}
	return root, nil
}

// dir lists the open directory d (closed on return) into out.
func (w *walker) dir(ctx context.Context, d *os.File, out *capturedDir, rel string) error {
	defer d.Close()
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.Name(), err)
	}
	sort.Strings(names) // the sidecar's order, whatever the file system's
	fd := int(d.Fd())
	for _, name := range names {
		c, err := w.entry(ctx, fd, filepath.Join(d.Name(), name), join(rel, name), name)
		if err != nil {
			return err
		}
		if c != nil {
			out.children = append(out.children, c)
		}
	}
	return nil
}

// subdir lists d into out: in a goroutine of its own when a core is
// free, else in this one.
func (w *walker) subdir(ctx context.Context, d *os.File, out *capturedDir, rel string) error {
	select {
	case <-w.free:
	default:
		return w.dir(ctx, d, out, rel)
	}
	sub := &walker{walkShared: w.walkShared}
	if w.sc != nil {
		sub.sc = w.sc.Fork()
	}
	w.mu.Lock()
	w.sub = append(w.sub, sub)
	w.mu.Unlock()
	w.wg.Go(func() {
		defer func() { w.free <- struct{}{} }()
		if err := sub.dir(ctx, d, out, rel); err != nil {
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
		}
	})
	return nil
}

func (w *walker) entry(ctx context.Context, dirfd int, abs, rel, name string) (fs.Entry, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, nil // deleted since it was listed
	case errors.Is(err, unix.EACCES):
		return &capturedError{meta: meta{name: name}, err: &os.PathError{Op: "lstat", Path: abs, Err: err}}, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", abs, err)
	}
	typ := st.Mode & unix.S_IFMT
	if w.skip != nil && w.skip(rel, typ == unix.S_IFDIR) {
		return nil, nil
	}
	if w.sc != nil {
		if err := w.sc.Visit(abs, rel, &st); err != nil {
			return nil, err
		}
	}
	m := metaOfStat(name, &st)
	switch typ {
	case unix.S_IFDIR:
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		// Deleted, or swapped for a symlink or a file by a running
		// container since it was listed: a prestage just does not copy
		// what it held; frozen, nothing of the unit moves.
		if errors.Is(err, unix.ENOENT) || (w.capped && (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP))) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", abs, err)
		}
		out := &capturedDir{meta: m}
		return out, w.subdir(ctx, os.NewFile(uintptr(fd), abs), out, rel)
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
		if errors.Is(err, unix.ENOENT) || (w.capped && errors.Is(err, unix.EINVAL)) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read link %s: %w", abs, err)
		}
		return &capturedSymlink{meta: m, target: target}, nil
	case unix.S_IFREG:
		f := &capturedFile{meta: m, src: abs, base: w.base, rel: rel, stage: w.stage}
		if !w.seen.same(rel, f) {
			w.mu.Lock()
			w.jobs = append(w.jobs, f)
			w.mu.Unlock()
		}
		return f, nil
	default: // FIFOs, devices, sockets: the sidecar keeps them
		return &capturedError{meta: m, err: fs.ErrUnknown}, nil
	}
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 4096; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// metaOfStat is the metadata kopia's localfs gives an entry of this
// lstat (os.Lstat's FileMode, owner and device).
func metaOfStat(name string, st *unix.Stat_t) meta {
	mode := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return meta{
		name: name, size: st.Size, mode: mode, mtime: time.Unix(st.Mtim.Unix()),
		owner:  fs.OwnerInfo{UserID: st.Uid, GroupID: st.Gid},
		device: fs.DeviceInfo{Dev: st.Dev, Rdev: st.Rdev},
	}
}

func join(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}
