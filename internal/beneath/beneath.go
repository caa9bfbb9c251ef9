// Package beneath confines file operations to a directory tree that others
// may be changing at the same time, such as a volume a running container
// writes to. Every path is resolved beneath the tree's root without
// following a symlink or "..": a symlink planted where a directory is
// expected makes the operation fail instead of leading it elsewhere.
package beneath

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Root is an open directory that operations stay beneath.
type Root struct {
	f *os.File
}

// Open opens dir as a root. The path to dir itself is the caller's and may
// pass through symlinks; nothing below it may.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &Root{f: os.NewFile(uintptr(fd), dir)}, nil
}

// Name is the path the root was opened by.
func (r *Root) Name() string { return r.f.Name() }

// Fd is the root directory's descriptor.
func (r *Root) Fd() int { return int(r.f.Fd()) }

// Close closes the root.
func (r *Root) Close() error { return r.f.Close() }

// Check reports whether rel is a clean relative slash path ("." is the
// root itself): no "..", no empty or "." components, not absolute.
func Check(rel string) error {
	if rel == "." {
		return nil
	}
	if rel == "" || path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%q is not a clean relative path", rel)
	}
	return nil
}

// ErrNotBeneath means a path passes through a symlink or something else
// than a directory, which is not followed.
var ErrNotBeneath = errors.New("a symlink or non-directory on the way (not followed)")

// noOpenat2 is set once openat2 proved unavailable (kernels before 5.6, or
// a seccomp profile that refuses it).
var noOpenat2 atomic.Bool

// OpenDir opens the directory rel beneath the root; "." opens the root
// again. It fails with ELOOP or ENOTDIR if any component is a symlink, or
// something else than a directory.
func (r *Root) OpenDir(rel string) (*os.File, error) {
	if err := Check(rel); err != nil {
		return nil, err
	}
	fd, err := r.openDir(rel)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
		err = fmt.Errorf("%w: %w", ErrNotBeneath, err)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open directory", Path: r.Join(rel), Err: err}
	}
	return os.NewFile(uintptr(fd), r.Join(rel)), nil
}

func (r *Root) openDir(rel string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !noOpenat2.Load() {
		how := unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		for try := 0; ; try++ {
			fd, err := unix.Openat2(r.Fd(), rel, &how)
			// EAGAIN: a rename elsewhere raced the lookup. A writer renaming
			// in a loop could make that endless; the walk below cannot be.
			if (err == unix.EINTR || err == unix.EAGAIN) && try < 16 {
				continue
			}
			if err == unix.ENOSYS || err == unix.EPERM {
				noOpenat2.Store(true)
			} else if err != unix.EAGAIN {
				return fd, err
			}
			break
		}
	}
	// One component at a time, none followed if it is a symlink. Check
	// ruled out "..", so nothing climbs out.
	fd, err := unix.Openat(r.Fd(), ".", flags, 0)
	if err != nil || rel == "." {
		return fd, err
	}
	for _, c := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, c, flags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// Parent opens the directory that holds rel and returns it with rel's last
// component. For "." it returns the root and ".".
func (r *Root) Parent(rel string) (*os.File, string, error) {
	if err := Check(rel); err != nil {
		return nil, "", err
	}
	dir, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	d, err := r.OpenDir(dir)
	if err != nil {
		return nil, "", err
	}
	return d, name, nil
}

// Join is rel's path as a string, for messages.
func (r *Root) Join(rel string) string {
	if rel == "." || rel == "" {
		return r.Name()
	}
	return r.Name() + "/" + rel
}

// OpenPath opens name in dir as an O_PATH descriptor without following it,
// so a symlink or device node can be changed without being opened.
func OpenPath(dir *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir.Name() + "/" + name, Err: err}
	}
	return os.NewFile(uintptr(fd), dir.Name()+"/"+name), nil
}

// ProcPath names an open descriptor's inode itself: system calls that have
// no descriptor form (chmod, setxattr) reach exactly that inode through it,
// whatever is at its name now.
func ProcPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// Futimens sets the access and modification times of an open file to ns.
func Futimens(f *os.File, ns int64) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	// utimensat with a NULL path is futimens(3); x/sys has no wrapper.
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return &os.PathError{Op: "set times", Path: f.Name(), Err: e}
	}
	return nil
}

// SetTimes sets the times of name in dir without following it.
func SetTimes(dir *os.File, name string, ns int64) error {
	ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(int(dir.Fd()), name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

// Lstat stats name in dir without following it.
func Lstat(dir *os.File, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &os.PathError{Op: "stat", Path: dir.Name() + "/" + name, Err: err}
	}
	return st, nil
}

// IsNotExist reports whether err says a name is missing.
func IsNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }

// FromFile makes an open directory a root; the root owns it.
func FromFile(dir *os.File) *Root { return &Root{f: dir} }
