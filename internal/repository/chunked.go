package repository

import (
	"context"
	"fmt"
	"path"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/virtualfs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
)

// restoreChunk is the most entries one kopia restore walk is handed.
// kopia's copier lists every directory of its tree before it writes a
// file (directories go to the front of its queue), so the queue holds
// every file of the tree at once: a million small files held 340 MB of
// heap and 951 MiB of RSS. A bigger tree is walked here, and kopia gets
// pieces of at most restoreChunk entries, each still restored in parallel.
var restoreChunk int64 = 100_000

// chunkedRestore restores a tree into out piece by piece and adds up
// kopia's counts, for the progress counters and the result.
type chunkedRestore struct {
	rep   repo.Repository
	out   restore.Output
	ropts restore.Options
	onSt  func(restore.Stats) // the running totals; nil: none

	mu   sync.Mutex
	done restore.Stats // of the pieces finished
}

// entries is how many entries d holds at every depth, from its summary;
// without one, more than a piece, so that it is walked here.
func entries(ctx context.Context, d fs.Directory) int64 {
	ds, ok := d.(fs.DirectoryWithSummary)
	if !ok {
		return restoreChunk + 1
	}
	s, err := ds.Summary(ctx)
	if err != nil || s == nil {
		return restoreChunk + 1
	}
	return s.TotalFileCount + s.TotalDirCount + s.TotalSymlinkCount
}

// extract restores e at rel ("" the output's root).
func (c *chunkedRestore) extract(ctx context.Context, e fs.Entry, rel string) error {
	d, ok := e.(fs.Directory)
	if !ok || entries(ctx, d) <= restoreChunk {
		return c.piece(ctx, e, rel, false)
	}
	if err := c.out.BeginDirectory(ctx, rel, d); err != nil {
		return err
	}
	children, err := fs.GetAllEntries(ctx, d)
	if err != nil {
		return fmt.Errorf("list %s: %w", displayPath(rel), err)
	}
	var batch []fs.Entry
	var n int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// A made-up directory holding some of d's entries: its own
		// Begin and FinishDirectory are d's, done here.
		err := c.piece(ctx, virtualfs.NewStaticDirectory(d.Name(), batch), rel, true)
		batch, n = nil, 0
		return err
	}
	for _, ch := range children {
		size := int64(1)
		if cd, ok := ch.(fs.Directory); ok {
			if size = entries(ctx, cd) + 1; size > restoreChunk {
				if err := c.extract(ctx, ch, path.Join(rel, ch.Name())); err != nil {
					return err
				}
				continue
			}
		}
		if n+size > restoreChunk {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, n = append(batch, ch), n+size
	}
	if err := flush(); err != nil {
		return err
	}
	if err := c.out.FinishDirectory(ctx, rel, d); err != nil {
		return err
	}
	c.add(restore.Stats{RestoredDirCount: 1})
	return nil
}

// piece hands one tree of at most restoreChunk entries to kopia.
func (c *chunkedRestore) piece(ctx context.Context, e fs.Entry, rel string, madeUp bool) error {
	opts := c.ropts
	if c.onSt != nil {
		opts.ProgressCallback = func(_ context.Context, s restore.Stats) {
			c.mu.Lock()
			t := sum(c.done, s)
			c.mu.Unlock()
			c.onSt(t)
		}
	}
	st, err := restore.Entry(ctx, c.rep, subOutput{Output: c.out, prefix: rel, madeUp: madeUp}, e, opts)
	if err != nil {
		return err
	}
	if madeUp {
		st.RestoredDirCount-- // the made-up directory
	}
	c.add(st)
	return nil
}

func (c *chunkedRestore) add(s restore.Stats) {
	c.mu.Lock()
	c.done = sum(c.done, s)
	t := c.done
	c.mu.Unlock()
	if c.onSt != nil {
		c.onSt(t)
	}
}

func sum(a, b restore.Stats) restore.Stats {
	a.RestoredFileCount += b.RestoredFileCount
	a.RestoredDirCount += b.RestoredDirCount
	a.RestoredSymlinkCount += b.RestoredSymlinkCount
	a.RestoredTotalFileSize += b.RestoredTotalFileSize
	a.EnqueuedFileCount += b.EnqueuedFileCount
	a.EnqueuedTotalFileSize += b.EnqueuedTotalFileSize
	return a
}

// subOutput is out seen from rel: kopia's paths are relative to the
// piece's root. The root of a made-up piece is not written at all.
type subOutput struct {
	restore.Output
	prefix string
	madeUp bool
}

func (s subOutput) path(p string) string {
	switch {
	case s.prefix == "":
		return p
	case p == "":
		return s.prefix
	}
	return s.prefix + "/" + p
}

func (s subOutput) BeginDirectory(ctx context.Context, p string, e fs.Directory) error {
	if s.madeUp && p == "" {
		return nil
	}
	return s.Output.BeginDirectory(ctx, s.path(p), e)
}

func (s subOutput) FinishDirectory(ctx context.Context, p string, e fs.Directory) error {
	if s.madeUp && p == "" {
		return nil
	}
	return s.Output.FinishDirectory(ctx, s.path(p), e)
}

func (s subOutput) WriteDirEntry(ctx context.Context, p string, de *snapshot.DirEntry, e fs.Directory) error {
	return s.Output.WriteDirEntry(ctx, s.path(p), de, e)
}

func (s subOutput) WriteFile(ctx context.Context, p string, e fs.File, cb restore.FileWriteProgress) error {
	return s.Output.WriteFile(ctx, s.path(p), e, cb)
}

func (s subOutput) FileExists(ctx context.Context, p string, e fs.File) bool {
	return s.Output.FileExists(ctx, s.path(p), e)
}

func (s subOutput) CreateSymlink(ctx context.Context, p string, e fs.Symlink) error {
	return s.Output.CreateSymlink(ctx, s.path(p), e)
}

func (s subOutput) SymlinkExists(ctx context.Context, p string, e fs.Symlink) bool {
	return s.Output.SymlinkExists(ctx, s.path(p), e)
}

// Close leaves the output open for the next piece; Extract closes it.
func (subOutput) Close(context.Context) error { return nil }
