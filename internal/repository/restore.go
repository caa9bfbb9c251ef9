package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/restore"
	"github.com/kopia/kopia/snapshot/snapshotfs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// ErrNoSuchPath means a path asked for is not in the restore point.
var ErrNoSuchPath = errors.New("not in the restore point")

// RestoreStats count what a restore wrote.
type RestoreStats struct {
	Files    int64
	Dirs     int64
	Symlinks int64
	Bytes    int64
}

// ExtractOptions say what to extract and where.
type ExtractOptions struct {
	ID       string
	Path     string // slash path inside the restore point; "" for all of it
	Target   string // an existing empty directory
	Progress *progress.Counters
	// MergeDirs writes into directories that exist already (a new
	// container's upper dir holds the directories Docker made); files are
	// still never overwritten.
	MergeDirs bool
}

// Extract writes a restore point's tree, or a part of it, into an empty
// directory. Unlike kopia's defaults it never overwrites anything, writes
// every file atomically (temporary name, then rename), and keeps sparse
// files sparse. Durability is the caller's: one syncfs after the sidecars
// are applied flushes everything at a fraction of a per-file fsync's cost.
func (r *Repository) Extract(ctx context.Context, opts ExtractOptions) (RestoreStats, error) {
	ctx = withKopiaLogs(ctx, r.log)
	entry, err := r.entry(ctx, opts.ID, opts.Path)
	if err != nil {
		return RestoreStats{}, err
	}
	out, err := newOutput(ctx, opts.Target, opts.MergeDirs)
	if err != nil {
		return RestoreStats{}, err
	}
	if _, isFile := entry.(fs.File); isFile {
		out.rootName = entry.Name() // a single file lands inside the target directory
	}
	ropts := restore.Options{Parallel: 8, RestoreDirEntryAtDepth: math.MaxInt32}
	if c := opts.Progress; c != nil {
		ropts.ProgressCallback = func(_ context.Context, s restore.Stats) {
			c.Files.Store(int64(s.RestoredFileCount))
			c.Bytes.Store(s.RestoredTotalFileSize)
			c.TotalFiles.Store(int64(s.EnqueuedFileCount))
			c.TotalBytes.Store(s.EnqueuedTotalFileSize)
		}
	}
	st, err := restore.Entry(ctx, r.rep, out, entry, ropts)
	if err != nil {
		return RestoreStats{}, fmt.Errorf("restore %s to %s: %w", displayPath(opts.Path), opts.Target, err)
	}
	return RestoreStats{
		Files: int64(st.RestoredFileCount), Dirs: int64(st.RestoredDirCount),
		Symlinks: int64(st.RestoredSymlinkCount), Bytes: st.RestoredTotalFileSize,
	}, nil
}

// output is kopia's filesystem output with our own file writer: kopia's
// atomic mode ignores sparse files and fails on names near 255 bytes (its
// temporary name is the target's plus a suffix).
type output struct {
	*restore.FilesystemOutput
	blockSize int
	rootName  string // set when the restored entry is a single file
}

func newOutput(ctx context.Context, target string, mergeDirs bool) (*output, error) {
	o := &output{
		FilesystemOutput: &restore.FilesystemOutput{TargetPath: target, WriteSparseFiles: true, OverwriteDirectories: mergeDirs},
		blockSize:        4096,
	}
	if err := o.Init(ctx); err != nil {
		return nil, fmt.Errorf("prepare restore to %s: %w", target, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err == nil && st.Bsize > 0 {
		o.blockSize = int(st.Bsize)
	}
	return o, nil
}

// WriteFile writes f under a short temporary name in the same directory,
// leaving holes where the content is zero, then renames it into place and
// sets owner, mode (setuid, setgid, sticky too) and times. An existing file
// is never overwritten.
func (o *output) WriteFile(ctx context.Context, rel string, f fs.File, cb restore.FileWriteProgress) error {
	if rel == "" && o.rootName != "" {
		rel = o.rootName
	}
	target := filepath.Join(o.TargetPath, filepath.FromSlash(rel))
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("%s already exists: not overwriting it", target)
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".lifeboat-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", target, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := o.copyContent(ctx, tmp, f, cb); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	if err := setAttributes(tmp, f); err != nil {
		return fmt.Errorf("set attributes of %s: %w", target, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}
	// RENAME_NOREPLACE: a file that appeared meanwhile is not replaced.
	if err := unix.Renameat2(unix.AT_FDCWD, tmp.Name(), unix.AT_FDCWD, target, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("rename into %s: %w", target, err)
	}
	done = true
	return nil
}

func (o *output) copyContent(ctx context.Context, w *os.File, f fs.File, cb restore.FileWriteProgress) error {
	r, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := w.Truncate(f.Size()); err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if werr := o.writeSparse(w, buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
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
	if off != f.Size() {
		return fmt.Errorf("read %d bytes, want %d", off, f.Size())
	}
	return nil
}

// bufPool keeps copy buffers: one per file would zero a gigabyte of memory
// for every thousand files restored.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writeSparse writes b at off, skipping whole blocks of zeros: the file was
// truncated to its size first, so skipped blocks read back as zeros and take
// no space.
func (o *output) writeSparse(w *os.File, b []byte, off int64) error {
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
			return err
		}
		start = end
	}
	return nil
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

func setAttributes(w *os.File, e fs.Entry) error {
	if err := w.Chown(int(e.Owner().UserID), int(e.Owner().GroupID)); err != nil {
		return err
	}
	// After chown, which clears setuid and setgid.
	if err := w.Chmod(e.Mode() & fs.ModBits); err != nil {
		return err
	}
	t := unix.NsecToTimespec(e.ModTime().UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, w.Name(), []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

// OpenFile streams a file of a restore point, such as an image archive.
func (r *Repository) OpenFile(ctx context.Context, id, path string) (io.ReadCloser, error) {
	e, err := r.entry(ctx, id, path)
	if err != nil {
		return nil, err
	}
	f, ok := e.(fs.File)
	if !ok {
		return nil, fmt.Errorf("%s in restore point %s is not a file", path, id)
	}
	rd, err := f.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s in restore point %s: %w", path, id, err)
	}
	return rd, nil
}

// ReadFile returns a small file of a restore point, such as lifeboat.json
// or a sidecar.
func (r *Repository) ReadFile(ctx context.Context, id, path string) ([]byte, error) {
	rd, err := r.OpenFile(ctx, id, path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read %s in restore point %s: %w", path, id, err)
	}
	return b, nil
}

// IsFile reports whether path in the restore point is a file.
func (r *Repository) IsFile(ctx context.Context, id, path string) (bool, error) {
	e, err := r.entry(ctx, id, path)
	if err != nil {
		return false, err
	}
	_, ok := e.(fs.File)
	return ok, nil
}

// Has reports whether path exists in the restore point.
func (r *Repository) Has(ctx context.Context, id, path string) (bool, error) {
	_, err := r.entry(ctx, id, path)
	if errors.Is(err, ErrNoSuchPath) {
		return false, nil
	}
	return err == nil, err
}

func (r *Repository) entry(ctx context.Context, id, path string) (fs.Entry, error) {
	m, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	root, err := snapshotfs.SnapshotRoot(r.rep, m)
	if err != nil {
		return nil, fmt.Errorf("open restore point %s: %w", id, err)
	}
	parts := splitPath(path)
	if len(parts) == 0 {
		return root, nil
	}
	e, err := snapshotfs.GetNestedEntry(ctx, root, parts)
	if err != nil {
		if errors.Is(err, fs.ErrEntryNotFound) || strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("%s: %w %s", displayPath(path), ErrNoSuchPath, id)
		}
		return nil, fmt.Errorf("find %s in restore point %s: %w", displayPath(path), id, err)
	}
	return e, nil
}

func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return "/" + strings.Trim(p, "/")
}
