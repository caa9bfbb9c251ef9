// Package source turns what Lifeboat backs up — host directories, generated
// documents, command output — into the entries of one restore point's tree.
// kopia's fs types stay in here and in internal/repository.
package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/fs/virtualfs"
)

// Entry is one node of a restore point's tree.
type Entry = fs.Entry

// Dir is a directory made up for the restore point's layout (volumes/,
// meta/, ...). virtualfs gives such directories mode 0777 and a zero time,
// which a restore would faithfully reproduce; these get 0755 and t.
func Dir(name string, t time.Time, children ...Entry) Entry {
	sort.Slice(children, func(i, j int) bool { return children[i].Name() < children[j].Name() })
	return DirInOrder(name, t, children...)
}

// DirInOrder is Dir with the children walked in the order given: the
// restore point's manifest and sidecars go last, so kopia reads the data
// while they are still being computed (see Lazy). The stored listing is
// sorted by kopia whatever the order.
func DirInOrder(name string, t time.Time, children ...Entry) Entry {
	return virtualDir{Directory: virtualfs.NewStaticDirectory(name, children), t: t}
}

type virtualDir struct {
	fs.Directory
	t time.Time
}

func (virtualDir) Mode() os.FileMode    { return os.ModeDir | 0o755 }
func (d virtualDir) ModTime() time.Time { return d.t }

// Local exposes a host directory under another name, read in place: its
// own mode, owner and times are kept, so a restore gives them back.
func Local(path, name string) (Entry, error) {
	d, err := localfs.Directory(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return renamedDir{Directory: d, name: name}, nil
}

type renamedDir struct {
	fs.Directory
	name string
}

func (d renamedDir) Name() string { return d.name }

// Close keeps the entry: kopia's uploader closes entries when done with
// them, and localfs then recycles the struct for another directory while
// our tree still points at it.
func (renamedDir) Close() {}

// Bytes is a small generated file (a manifest, a sidecar). Unlike a
// streaming file it can be read more than once, so a two-pass capture and
// kopia's retries work.
func Bytes(name string, b []byte, mode os.FileMode, t time.Time) Entry {
	return &memFile{name: name, data: b, mode: mode, t: t}
}

type memFile struct {
	name string
	data []byte
	mode os.FileMode
	t    time.Time
}

var _ fs.File = (*memFile)(nil)

func (f *memFile) Name() string                { return f.name }
func (f *memFile) Size() int64                 { return int64(len(f.data)) }
func (f *memFile) Mode() os.FileMode           { return f.mode }
func (f *memFile) ModTime() time.Time          { return f.t }
func (f *memFile) IsDir() bool                 { return false }
func (f *memFile) Sys() any                    { return nil }
func (f *memFile) Owner() fs.OwnerInfo         { return fs.OwnerInfo{} }
func (f *memFile) Device() fs.DeviceInfo       { return fs.DeviceInfo{} }
func (f *memFile) LocalFilesystemPath() string { return "" }
func (f *memFile) Close()                      {}
func (f *memFile) Open(context.Context) (fs.Reader, error) {
	return &memReader{Reader: bytes.NewReader(f.data), f: f}, nil
}

type memReader struct {
	*bytes.Reader
	f *memFile
}

func (r *memReader) Close() error             { return nil }
func (r *memReader) Entry() (fs.Entry, error) { return r.f, nil }

// Lazy is a small generated file whose content is computed while the
// upload runs: get blocks until it is ready. Size and Open both wait, so
// kopia never sees a wrong size; a failure of get fails the upload.
func Lazy(name string, mode os.FileMode, t time.Time, get func() ([]byte, error)) Entry {
	return &lazyFile{memFile: memFile{name: name, mode: mode, t: t}, get: get}
}

type lazyFile struct {
	memFile
	get  func() ([]byte, error)
	once sync.Once
	err  error
}

func (f *lazyFile) load() error {
	f.once.Do(func() { f.data, f.err = f.get() })
	return f.err
}

func (f *lazyFile) Size() int64 {
	if f.load() != nil {
		return 0
	}
	return f.memFile.Size()
}

func (f *lazyFile) Open(ctx context.Context) (fs.Reader, error) {
	if err := f.load(); err != nil {
		return nil, fmt.Errorf("generate %s: %w", f.name, err)
	}
	return &memReader{Reader: bytes.NewReader(f.data), f: &f.memFile}, nil
}

// Stream is command output or another one-shot stream, stored as a file
// without touching the local disk. It can be read only once.
func Stream(name string, r io.ReadCloser, mode os.FileMode, t time.Time) Entry {
	return modeStream{StreamingFile: virtualfs.StreamingFileWithModTimeFromReader(name, t, r), mode: mode}
}

type modeStream struct {
	fs.StreamingFile
	mode os.FileMode
}

func (s modeStream) Mode() os.FileMode { return s.mode }

// Filtered is Local with some paths left out: skip reports, for a path
// relative to path (slash-separated), whether it is excluded.
func Filtered(path, name string, skip func(rel string, isDir bool) bool) (Entry, error) {
	d, err := localfs.Directory(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if skip == nil {
		return renamedDir{Directory: d, name: name}, nil
	}
	return &filteredDir{Directory: d, name: name, skip: skip, root: true}, nil
}

// filteredDir hides excluded entries from kopia's walk, at every depth.
type filteredDir struct {
	fs.Directory
	name string
	rel  string
	skip func(rel string, isDir bool) bool // nil: nothing skipped
	seen *Seen                             // nil: nothing recorded
	root bool                              // ours to keep; nested ones are kopia's pooled entries
}

func (d *filteredDir) Name() string {
	if d.root {
		return d.name
	}
	return d.Directory.Name()
}

// Close returns nested entries to kopia's pool; the root is ours (see
// renamedDir.Close).
func (d *filteredDir) Close() {
	if !d.root {
		d.Directory.Close()
	}
}

func (d *filteredDir) child(e fs.Entry) fs.Entry {
	sub, ok := e.(fs.Directory)
	if !ok {
		if _, file := e.(fs.File); file && d.seen != nil {
			d.seen.add(d.join(e.Name()), e)
		}
		return e
	}
	return &filteredDir{Directory: sub, rel: d.join(e.Name()), skip: d.skip, seen: d.seen}
}

func (d *filteredDir) join(name string) string {
	if d.rel == "" {
		return name
	}
	return d.rel + "/" + name
}

func (d *filteredDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.skip != nil && d.skip(d.join(name), e.IsDir()) {
		e.Close()
		return nil, fs.ErrEntryNotFound
	}
	return d.child(e), nil
}

func (d *filteredDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err
	}
	return &filterIter{it: it, d: d}, nil
}

type filterIter struct {
	it fs.DirectoryIterator
	d  *filteredDir
}

func (f *filterIter) Next(ctx context.Context) (fs.Entry, error) {
	for {
		e, err := f.it.Next(ctx)
		if e == nil || err != nil {
			return e, err
		}
		if f.d.skip != nil && f.d.skip(f.d.join(e.Name()), e.IsDir()) {
			e.Close()
			continue
		}
		return f.d.child(e), nil
	}
}

func (f *filterIter) Close() { f.it.Close() }
