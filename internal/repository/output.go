package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

// output writes a restore beneath its target directory and nowhere else.
// The target may be a volume that a running container writes to at the
// same time, so every name is resolved from the target's descriptor without
// following a symlink (kopia's own writer follows them) and attributes are
// set through descriptors, never by path. Unlike kopia's writer it never
// overwrites anything, removes a file it could not finish, and keeps
// sparse files sparse; kopia's atomic mode ignores sparse files and fails
// on names near 255 bytes.
type output struct {
	root      *beneath.Root
	mergeDirs bool // directories that exist already are written into
	blockSize int
	rootName  string // set when the restored entry is a single file
	mem       *semaphore.Weighted
	flush     *diskFlusher
	contents  contentReader // nil: files are read through kopia's object reader
	dirs      *openDirs
}

var _ restore.Output = (*output)(nil)

func newOutput(target string, mergeDirs bool) (*output, error) {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("prepare restore to %s: %w", target, err)
	}
	root, err := beneath.Open(target)
	if err != nil {
		return nil, fmt.Errorf("prepare restore to %s: %w", target, err)
	}
	o := &output{root: root, mergeDirs: mergeDirs, blockSize: 4096, mem: semaphore.NewWeighted(chunkBudget), flush: startDiskFlusher(root.Fd()), dirs: newOpenDirs(root)}
	var st unix.Statfs_t
	if err := unix.Fstatfs(root.Fd(), &st); err == nil && st.Bsize > 0 {
		o.blockSize = int(st.Bsize)
	}
	return o, nil
}

// Parallelizable implements restore.Output.
func (o *output) Parallelizable() bool { return true }

// Close implements restore.Output.
func (o *output) Close(context.Context) error {
	o.flush.stop() // before the descriptor it flushes through is closed
	o.dirs.closeAll()
	return o.root.Close()
}

// rel maps kopia's relative path ("" for the restored entry itself) to ours.
func (o *output) rel(p string) string {
	switch {
	case p != "":
		return p
	case o.rootName != "":
		return o.rootName
	}
	return "."
}

// BeginDirectory creates a directory, owner-only until FinishDirectory
// gives it its mode. One that exists is used only if it is empty or
// mergeDirs is set, and only if it really is a directory.
func (o *output) BeginDirectory(_ context.Context, p string, _ fs.Directory) error {
	rel := o.rel(p)
	if rel != "." {
		parent, name, release, err := o.dirs.parent(rel)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(int(parent.Fd()), name, 0o700)
		release()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, unix.EEXIST):
			return fmt.Errorf("mkdir %s: %w", o.root.Join(rel), err)
		}
	}
	d, err := o.root.OpenDir(rel) // fails on a symlink or a non-directory
	if err != nil {
		return err
	}
	defer d.Close()
	if o.mergeDirs {
		return nil
	}
	if _, err := d.Readdirnames(1); !errors.Is(err, io.EOF) {
		return fmt.Errorf("non-empty directory %s already exists, not overwriting it", o.root.Join(rel))
	}
	return nil
}

// WriteDirEntry implements restore.Output; it only serves shallow restores.
func (o *output) WriteDirEntry(context.Context, string, *snapshot.DirEntry, fs.Directory) error {
	return nil
}

// FinishDirectory gives a directory its owner, mode and times once all its
// entries are written (writing them changed its times).
func (o *output) FinishDirectory(_ context.Context, p string, e fs.Directory) error {
	rel := o.rel(p)
	o.dirs.finished(rel)
	d, err := o.root.OpenDir(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := setAttributes(d, e); err != nil {
		return fmt.Errorf("set attributes of %s: %w", o.root.Join(rel), err)
	}
	return nil
}

// WriteFile creates the file under its own name, O_EXCL and O_NOFOLLOW,
// so an existing file is never overwritten and a planted symlink never
// followed, writes it leaving holes where the content is zero, and sets
// owner, mode (setuid, setgid, sticky too) and times. A file it fails to
// finish is removed. It writes no temporary name to rename into place: a
// restore is whole only when it is committed (package restore journals
// the target as a whole), so a per-file rename bought nothing and cost
// 5 % of a restore's CPU in ext4's rename.
func (o *output) WriteFile(ctx context.Context, p string, f fs.File, cb restore.FileWriteProgress) error {
	rel := o.rel(p)
	target := o.root.Join(rel)
	parent, name, release, err := o.dirs.parent(rel)
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	defer release()
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s already exists: not overwriting it", target)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	w := os.NewFile(uintptr(fd), target)
	done := false
	defer func() {
		if !done {
			w.Close()
			unix.Unlinkat(int(parent.Fd()), name, 0)
		}
	}()
	if err := o.copyContent(ctx, w, f, cb); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := setAttributes(w, f); err != nil {
		return fmt.Errorf("set attributes of %s: %w", target, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	done = true
	return nil
}

// CreateSymlink creates a symlink and gives it its owner and time, by name
// but without following it. An existing entry is never replaced.
func (o *output) CreateSymlink(ctx context.Context, p string, e fs.Symlink) error {
	rel := o.rel(p)
	dest, err := e.Readlink(ctx)
	if err != nil {
		return fmt.Errorf("read link target of %s: %w", rel, err)
	}
	parent, name, release, err := o.dirs.parent(rel)
	if err != nil {
		return err
	}
	defer release()
	pfd := int(parent.Fd())
	if err := unix.Symlinkat(dest, pfd, name); err != nil {
		return fmt.Errorf("create symlink %s: %w", o.root.Join(rel), err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat symlink %s: %w", o.root.Join(rel), err)
	}
	own := e.Owner()
	if st.Uid != own.UserID || st.Gid != own.GroupID {
		if err := unix.Fchownat(pfd, name, int(own.UserID), int(own.GroupID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown symlink %s: %w", o.root.Join(rel), err)
		}
	}
	if err := beneath.SetTimes(parent, name, e.ModTime().UnixNano()); err != nil {
		return fmt.Errorf("symlink %s: %w", o.root.Join(rel), err)
	}
	return nil
}

// FileExists implements restore.Output for incremental restores: a regular
// file of the same size and time (within kopia's two seconds).
func (o *output) FileExists(_ context.Context, p string, e fs.File) bool {
	st, ok := o.lstat(p)
	if !ok || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != e.Size() {
		return false
	}
	d := e.ModTime().UnixNano() - st.Mtim.Nano()
	return max(d, -d) < 2e9
}

// SymlinkExists implements restore.Output for incremental restores.
func (o *output) SymlinkExists(_ context.Context, p string, _ fs.Symlink) bool {
	st, ok := o.lstat(p)
	return ok && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

func (o *output) lstat(p string) (unix.Stat_t, bool) {
	parent, name, release, err := o.dirs.parent(o.rel(p))
	if err != nil {
		return unix.Stat_t{}, false
	}
	defer release()
	st, err := beneath.Lstat(parent, name)
	return st, err == nil
}

// setAttributes gives an open file or directory e's owner, mode and times,
// through its descriptor. Owner first: chown clears setuid and setgid.
func setAttributes(f *os.File, e fs.Entry) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	own := e.Owner()
	if st.Uid != own.UserID || st.Gid != own.GroupID {
		if err := f.Chown(int(own.UserID), int(own.GroupID)); err != nil {
			return err
		}
	}
	if err := f.Chmod(e.Mode() & fs.ModBits); err != nil {
		return err
	}
	return beneath.Futimens(f, e.ModTime().UnixNano())
}

// maxChunk is the largest content kopia's default splitter
// (DYNAMIC-4M-BUZHASH) cuts, twice its 4 MiB average: what repositories
// made before contentSplitter, or by the kopia CLI, hold. New ones cut a
// quarter of it; the budget still counts in files, as the comment below
// measured it.
const maxChunk = 8 << 20

// chunkBudget bounds the contents being read at once, weighed by the
// largest chunk each file can hold. A file being read holds its current
// chunk about three times over (as stored, decrypted, decompressed) and a
// decompressor's window beside it: eight large files at once held
// ~150 MiB of heap, which the collector let grow to twice that. Small
// files (smallFile), which gain most from being written many at once,
// still take all of the restore's parallel slots, whatever large files
// are being read; large ones take one per core, which keeps the cores
// decompressing while the disk is the bottleneck (measured: the same
// time, a third less peak RSS).
var chunkBudget = int64(max(2, runtime.NumCPU())) * maxChunk

// smallFile is the size up to which a file's content is read without
// waiting on chunkBudget: eight of them hold a few MiB.
const smallFile = 1 << 20

// admit waits until f's content may be read, and returns the release.
func (o *output) admit(ctx context.Context, f fs.File) (func(), error) {
	if f.Size() <= smallFile {
		return func() {}, nil
	}
	n := min(f.Size(), maxChunk)
	if err := o.mem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { o.mem.Release(n) }, nil
}

func (o *output) copyContent(ctx context.Context, w *os.File, f fs.File, cb restore.FileWriteProgress) error {
	release, err := o.admit(ctx, f)
	if err != nil {
		return err
	}
	defer release()
	if done, err := o.copyPieces(ctx, w, f, cb); done || err != nil {
		return err
	}
	r, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	// end is where the written data ends: a file that ends in skipped
	// zeros is extended to its size after, so that the common file, with
	// no hole at its end, costs no truncate.
	var off, end, flushed int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			e, werr := o.writeSparse(w, buf[:n], off)
			if werr != nil {
				return werr
			}
			end = max(end, e)
			off += int64(n)
			flushed = startWriteback(w, flushed, off)
			if cb != nil {
				cb(int64(n))
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	return o.finishFile(w, f, off, end, flushed)
}

// finishFile checks that off, the bytes written, is f's size, counts what
// is left for the disk flusher, and extends a file that ends in skipped
// zeros (written data ends at end) to its size.
func (o *output) finishFile(w *os.File, f fs.File, off, end, flushed int64) error {
	if off != f.Size() {
		return fmt.Errorf("read %d bytes, want %d", off, f.Size())
	}
	o.flush.wrote(off - flushed)
	if end < off {
		return w.Truncate(off)
	}
	return nil
}

// bufPool keeps copy buffers: one per file would zero a gigabyte of memory
// for every thousand files restored.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writeSparse writes b at off, skipping whole blocks of zeros: skipped
// blocks before data written later, or before the truncate to the file's
// size, read back as zeros and take no space. It returns where the data it
// wrote ends, 0 when it wrote none.
func (o *output) writeSparse(w *os.File, b []byte, off int64) (int64, error) {
	var written int64
	bs := o.blockSize
	for start := 0; start < len(b); {
		end := min(start+bs, len(b))
		if isZero(b[start:end]) {
			start = end
			continue
		}
		// Extend the run over following non-zero blocks: fewer syscalls.
		for end < len(b) && !isZero(b[end:min(end+bs, len(b))]) {
			end = min(end+bs, len(b))
		}
		if _, err := w.WriteAt(b[start:end], off+int64(start)); err != nil {
			return 0, err
		}
		written = off + int64(end)
		start = end
	}
	return written, nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
