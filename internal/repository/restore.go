package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot/restore"
	"github.com/kopia/kopia/snapshot/snapshotfs"

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
// every file atomically (temporary name, then rename), keeps sparse files
// sparse, and writes nothing outside the target even while someone else
// plants symlinks in it. Durability is the caller's: one syncfs after the sidecars
// are applied flushes everything at a fraction of a per-file fsync's cost.
func (r *Repository) Extract(ctx context.Context, opts ExtractOptions) (RestoreStats, error) {
	ctx = withKopiaLogs(ctx, r.log)
	entry, err := r.entry(ctx, opts.ID, opts.Path)
	if err != nil {
		return RestoreStats{}, err
	}
	out, err := newOutput(opts.Target, opts.MergeDirs)
	if err != nil {
		return RestoreStats{}, err
	}
	if _, isFile := entry.(fs.File); isFile {
		out.rootName = entry.Name() // a single file lands inside the target directory
	}
	defer out.Close(ctx)
	out.contents = contentsOf(r.rep)
	cr := &chunkedRestore{rep: r.rep, out: out, ropts: restore.Options{Parallel: 8, RestoreDirEntryAtDepth: math.MaxInt32}}
	if c := opts.Progress; c != nil {
		cr.onSt = func(s restore.Stats) {
			c.Files.Store(int64(s.RestoredFileCount))
			c.Bytes.Store(s.RestoredTotalFileSize)
			c.TotalFiles.Store(int64(s.EnqueuedFileCount))
			c.TotalBytes.Store(s.EnqueuedTotalFileSize)
		}
	}
	if err := cr.extract(ctx, entry, ""); err != nil {
		return RestoreStats{}, fmt.Errorf("restore %s to %s: %w", displayPath(opts.Path), opts.Target, err)
	}
	st := cr.done
	return RestoreStats{
		Files: int64(st.RestoredFileCount), Dirs: int64(st.RestoredDirCount),
		Symlinks: int64(st.RestoredSymlinkCount), Bytes: st.RestoredTotalFileSize,
	}, nil
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
