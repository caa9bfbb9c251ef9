package beneath

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotRegular means a name is a symlink, directory, device, FIFO or
// socket where a regular file was expected: it is not opened for reading.
var ErrNotRegular = errors.New("not a regular file (not read)")

// ErrTooLarge means a file is larger than the caller reads.
var ErrTooLarge = errors.New("file too large")

// RegularFile is a regular file's contents and the mode and owner it had.
type RegularFile struct {
	Data     []byte
	Mode     uint32 // permission bits
	UID, GID int
}

// ReadRegular reads name in dir, at most max bytes, without following
// it if it is a symlink and without opening it at all unless it is a
// regular file: a device node or FIFO planted under the name is neither
// opened (opening some devices acts) nor waited on.
func ReadRegular(dir *os.File, name string, max int64) (RegularFile, error) {
	p, err := OpenPath(dir, name)
	if err != nil {
		return RegularFile{}, err
	}
	defer p.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(p.Fd()), &st); err != nil {
		return RegularFile{}, &os.PathError{Op: "stat", Path: p.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return RegularFile{}, &os.PathError{Op: "read", Path: p.Name(), Err: ErrNotRegular}
	}
	if st.Size > max {
		return RegularFile{}, &os.PathError{Op: "read", Path: p.Name(), Err: fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, st.Size, max)}
	}
	// Reopening the O_PATH descriptor reaches the very inode checked
	// above, whatever is at the name now.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(p.Fd())), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return RegularFile{}, fmt.Errorf("open %s: %w", p.Name(), err)
	}
	defer f.Close()
	// It may grow between the stat and the read: never read past max.
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return RegularFile{}, fmt.Errorf("read %s: %w", p.Name(), err)
	}
	if int64(len(b)) > max {
		return RegularFile{}, &os.PathError{Op: "read", Path: p.Name(), Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)}
	}
	return RegularFile{Data: b, Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid)}, nil
}

// OpenRegular opens the regular file rel beneath the root for reading:
// through no symlink, and not at all if it is anything else than a regular
// file, so that a container that swaps a file of its volume for a symlink
// to a host file, or for a device node, between a walk and the read gets
// an error, never the host's data.
func (r *Root) OpenRegular(rel string) (*os.File, error) {
	p, err := r.openPath(rel)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(p.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: r.Join(rel), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "open", Path: r.Join(rel), Err: ErrNotRegular}
	}
	// Reopening the O_PATH descriptor reaches the inode checked above.
	f, err := os.OpenFile(ProcPath(p), os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.Join(rel), err)
	}
	return f, nil
}

// openPath opens rel beneath the root as an O_PATH descriptor, following
// no symlink on the way nor at its end.
func (r *Root) openPath(rel string) (*os.File, error) {
	if err := Check(rel); err != nil {
		return nil, err
	}
	if !noOpenat2.Load() {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		for try := 0; try < 16; try++ {
			fd, err := unix.Openat2(r.Fd(), rel, &how)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if err == nil {
				return os.NewFile(uintptr(fd), r.Join(rel)), nil
			}
			if err != unix.ENOSYS && err != unix.EPERM {
				if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.EXDEV {
					err = fmt.Errorf("%w: %w", ErrNotBeneath, err)
				}
				return nil, &os.PathError{Op: "open", Path: r.Join(rel), Err: err}
			}
			noOpenat2.Store(true)
			break
		}
	}
	dir, name, err := r.Parent(rel)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return OpenPath(dir, name)
}
