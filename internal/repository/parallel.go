package repository

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/kopia/kopia/fs"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

// A restore point is a made-up tree (sections, meta, manifest) over the
// host's directories, and kopia's uploader spends goroutines on it that
// read nothing. The uploader has a pool of as many goroutines as CPUs, its
// own included; one that reaches a directory hands the entries to idle
// goroutines and then waits for them, and one that reaches a sidecar waits
// for the scan. So a volume's data was read by one goroutine while the
// others waited at "/" and "/volumes": a goroutine dump showed it, and an
// initial backup of 1 GiB took 1.65× the kopia CLI's wall time at the same
// CPU time.
//
// The pool therefore gets one more goroutine for each made-up entry, the
// most that can be parked on them, and reads of the host's files are gated
// to one per CPU, so that the extra goroutines only stand in for parked
// ones: CPU use and memory stay those of one reader per CPU.
//
// Host directories park goroutines too: each waits at its end for the
// entries it handed out. With one goroutine per CPU for the host's tree,
// the CPUs were idle 17 % of an initial backup on 2 CPUs; with four per
// CPU, 15 %, and the backup took 4 % less time for 4 MiB more peak RSS
// (four pairs, twice). A third read at once on 2 CPUs cut idle time to
// 13 % but added 35 MiB of RSS, more than kopia's own peak: not taken.
//
// The same wrapper opens every host file beneath the host directory it was
// found under (a volume's data, a bind mount), through no symlink and only
// if it is a regular file: kopia opens a file by its path, and a container
// that swaps a file of its volume for a symlink to a host file, or for a
// FIFO, between kopia's walk and the read had the host file backed up, or
// the backup hung.

// perCPU is the uploader's goroutines for the host's tree, per CPU.
const perCPU = 4

// uploadParallelism is the uploader's pool size for root.
func uploadParallelism(ctx context.Context, root fs.Entry) int {
	return perCPU*runtime.NumCPU() + madeUp(ctx, root)
}

// madeUp counts the entries of root's tree that are not on the host's
// filesystem: virtual directories and generated files, not below a host
// directory. A generated file's Size is not asked for: a sidecar's blocks
// until the scan ends.
func madeUp(ctx context.Context, e fs.Entry) int {
	if e.LocalFilesystemPath() != "" {
		return 0
	}
	n := 1
	d, ok := e.(fs.Directory)
	if !ok {
		return n
	}
	_ = fs.IterateEntries(ctx, d, func(ctx context.Context, c fs.Entry) error {
		n += madeUp(ctx, c)
		return nil
	})
	return n
}

// gate limits how many host files are read at once, and opens them
// confined to the host directory they were found under.
type gate struct {
	slots chan struct{}
	mu    sync.Mutex
	roots []*hostRoot
}

func newGate() *gate { return &gate{slots: make(chan struct{}, runtime.NumCPU())} }

// wrap gives every host file below e a gated, confined Open. Directories
// are wrapped so that their children are; generated and streamed files (a
// StreamingFile must stay one) are left as they are.
func (g *gate) wrap(e fs.Entry) fs.Entry { return g.wrapIn(e, nil) }

func (g *gate) wrapIn(e fs.Entry, root *hostRoot) fs.Entry {
	switch v := e.(type) {
	case fs.Directory:
		if root == nil && v.LocalFilesystemPath() != "" {
			root = g.root(v.LocalFilesystemPath())
		}
		return gatedDir{Directory: v, g: g, root: root}
	case fs.File:
		if v.LocalFilesystemPath() != "" {
			return gatedFile{File: v, g: g, root: root}
		}
	}
	return e
}

// hostRoot is a host directory of the tree: a volume's data, a bind
// mount. Whoever uses it (a container) may change what is below it while
// it is read, so its files are opened beneath it, through no symlink.
type hostRoot struct {
	path string
	once sync.Once
	r    *beneath.Root
	err  error
}

func (g *gate) root(path string) *hostRoot {
	h := &hostRoot{path: path}
	g.mu.Lock()
	g.roots = append(g.roots, h)
	g.mu.Unlock()
	return h
}

func (h *hostRoot) open(path string) (*os.File, error) {
	h.once.Do(func() { h.r, h.err = beneath.Open(h.path) })
	if h.err != nil {
		return nil, h.err
	}
	rel, ok := strings.CutPrefix(path, h.path+"/")
	if !ok {
		return nil, fmt.Errorf("%s is not under %s", path, h.path)
	}
	return h.r.OpenRegular(rel)
}

// close closes the host directories opened.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.roots {
		if h.r != nil {
			h.r.Close()
		}
	}
	g.roots = nil
}

type gatedDir struct {
	fs.Directory
	g    *gate
	root *hostRoot
}

func (d gatedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.g.wrapIn(e, d.root), nil
}

func (d gatedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err
	}
	return gatedIter{DirectoryIterator: it, g: d.g, root: d.root}, nil
}

type gatedIter struct {
	fs.DirectoryIterator
	g    *gate
	root *hostRoot
}

func (it gatedIter) Next(ctx context.Context) (fs.Entry, error) {
	e, err := it.DirectoryIterator.Next(ctx)
	if e == nil || err != nil {
		return e, err
	}
	return it.g.wrapIn(e, it.root), nil
}

type gatedFile struct {
	fs.File
	g    *gate
	root *hostRoot
}

// Open waits for a free reader slot, held until the reader is closed.
func (f gatedFile) Open(ctx context.Context) (fs.Reader, error) {
	select {
	case f.g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r, err := f.open(ctx)
	if err != nil {
		<-f.g.slots
		return nil, err
	}
	return &gatedReader{Reader: r, release: sync.OnceFunc(func() { <-f.g.slots })}, nil
}

func (f gatedFile) open(ctx context.Context) (fs.Reader, error) {
	if f.root == nil {
		return f.File.Open(ctx)
	}
	h, err := f.root.open(f.LocalFilesystemPath())
	if err != nil {
		return nil, err
	}
	return hostReader{File: h, e: f.File}, nil
}

// hostReader is a host file opened beneath its root, as kopia reads one.
type hostReader struct {
	*os.File
	e fs.Entry
}

func (r hostReader) Entry() (fs.Entry, error) { return r.e, nil }

type gatedReader struct {
	fs.Reader
	release func()
}

func (r *gatedReader) Close() error {
	defer r.release()
	return r.Reader.Close()
}
