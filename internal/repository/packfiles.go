package repository

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"golang.org/x/sys/unix"
)

// kopia's filesystem storage opens, seeks, reads and closes a pack file
// for every content it reads: a profile of the Linux source tree's
// restore (83,000 files, a content each) put 15 % of its CPU there. Pack
// files never change once written, so packFiles keeps the last ones read
// open and reads contents from them with pread. It is registered as a
// storage type of its own, since kopia builds a repository's storage from
// the connection config and offers no hook to wrap it; the repository's
// files are kopia's as before.

// packStorageType names the storage in Lifeboat's connection configs.
const packStorageType = "lifeboat-filesystem"

// maxOpenPacks bounds the pack files kept open.
const maxOpenPacks = 64

func init() { blob.AddSupportedStorage(packStorageType, filesystem.Options{}, openPackFiles) }

// openPackFiles opens a local repository's storage: kopia's, reading
// packs through kept descriptors.
func openPackFiles(ctx context.Context, o *filesystem.Options, create bool) (blob.Storage, error) {
	st, err := filesystem.New(ctx, o, create)
	if err != nil {
		return nil, err //nolint:wrapcheck // kopia's own error; callers name the path
	}
	return newPackFiles(st, o), nil
}

// shardedPaths is how kopia's filesystem storage names a blob's file.
type shardedPaths interface {
	GetShardedPathAndFilePath(ctx context.Context, id blob.ID) (string, string, error)
}

type packFiles struct {
	blob.Storage
	opts  *filesystem.Options
	paths shardedPaths // nil: every read goes to kopia's storage

	mu    sync.Mutex
	open  map[blob.ID]*openPack
	order []blob.ID // oldest first
}

// openPack is a kept pack descriptor and the file it was opened as.
type openPack struct {
	heldFile
	path string
	ino  uint64
}

func newPackFiles(st blob.Storage, o *filesystem.Options) *packFiles {
	p := &packFiles{Storage: st, opts: o, open: map[blob.ID]*openPack{}}
	p.paths, _ = st.(shardedPaths)
	return p
}

// ConnectionInfo names this storage type, so that a connection made
// through it opens through it again.
func (p *packFiles) ConnectionInfo() blob.ConnectionInfo {
	return blob.ConnectionInfo{Type: packStorageType, Config: p.opts}
}

// GetBlob reads a section of a pack file through a descriptor kept open;
// anything else, or a pack that cannot be opened, goes to kopia's storage.
func (p *packFiles) GetBlob(ctx context.Context, id blob.ID, offset, length int64, out blob.OutputBuffer) error {
	if length <= 0 || offset < 0 || p.paths == nil || len(id) == 0 || (id[0] != 'p' && id[0] != 'q') {
		return p.Storage.GetBlob(ctx, id, offset, length, out)
	}
	op, err := p.acquire(ctx, id)
	if err != nil {
		return p.Storage.GetBlob(ctx, id, offset, length, out)
	}
	defer p.release(op)
	out.Reset()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := io.CopyBuffer(out, io.NewSectionReader(op.f, offset, length), *bp)
	if err == nil && n < length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", id, err)
	}
	return nil
}

// acquire is id's kept descriptor, opened now if it is not kept, with
// one more reader.
func (p *packFiles) acquire(ctx context.Context, id blob.ID) (*openPack, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if op, ok := p.open[id]; ok {
		// A pack replaced under its name (repair from another copy,
		// through another storage) must be read anew: one stat, still
		// cheaper than kopia's open and close.
		var st unix.Stat_t
		if err := unix.Stat(op.path, &st); err == nil && st.Ino == op.ino {
			op.users++
			return op, nil
		}
		p.evictLocked(id)
	}
	_, path, err := p.paths.GetShardedPathAndFilePath(ctx, id)
	if err != nil {
		return nil, err //nolint:wrapcheck // the caller falls back to kopia's read
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err //nolint:wrapcheck // likewise
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err //nolint:wrapcheck // likewise
	}
	if len(p.order) >= maxOpenPacks {
		p.evictLocked(p.order[0])
	}
	op := &openPack{heldFile: heldFile{f: f, users: 1}, path: path, ino: st.Ino}
	p.open[id] = op
	p.order = append(p.order, id)
	return op, nil
}

// evictLocked stops keeping id's descriptor; its last reader closes it.
func (p *packFiles) evictLocked(id blob.ID) {
	op, ok := p.open[id]
	if !ok {
		return
	}
	delete(p.open, id)
	p.order = slices.DeleteFunc(p.order, func(o blob.ID) bool { return o == id })
	op.drop()
}

// release ends a read on op, closing it if it was evicted meanwhile.
func (p *packFiles) release(op *openPack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	op.unuse()
}

// Close closes the kept descriptors and kopia's storage.
func (p *packFiles) Close(ctx context.Context) error {
	p.mu.Lock()
	for _, op := range p.open {
		op.drop()
	}
	p.open, p.order = map[blob.ID]*openPack{}, nil
	p.mu.Unlock()
	return p.Storage.Close(ctx) //nolint:wrapcheck
}
