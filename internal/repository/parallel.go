package repository

import (
	"context"
	"runtime"
	"sync"

	"github.com/kopia/kopia/fs"
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

// uploadParallelism is the uploader's pool size for root.
func uploadParallelism(ctx context.Context, root fs.Entry) int {
	return runtime.NumCPU() + madeUp(ctx, root)
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

// gate limits how many host files are read at once.
type gate chan struct{}

func newGate() gate { return make(gate, runtime.NumCPU()) }

// wrap gives every host file below e a gated Open. Directories are wrapped
// so that their children are; generated and streamed files (a
// StreamingFile must stay one) are left as they are.
func (g gate) wrap(e fs.Entry) fs.Entry {
	switch v := e.(type) {
	case fs.Directory:
		return gatedDir{Directory: v, g: g}
	case fs.File:
		if v.LocalFilesystemPath() != "" {
			return gatedFile{File: v, g: g}
		}
	}
	return e
}

type gatedDir struct {
	fs.Directory
	g gate
}

func (d gatedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.g.wrap(e), nil
}

func (d gatedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err
	}
	return gatedIter{DirectoryIterator: it, g: d.g}, nil
}

type gatedIter struct {
	fs.DirectoryIterator
	g gate
}

func (it gatedIter) Next(ctx context.Context) (fs.Entry, error) {
	e, err := it.DirectoryIterator.Next(ctx)
	if e == nil || err != nil {
		return e, err
	}
	return it.g.wrap(e), nil
}

type gatedFile struct {
	fs.File
	g gate
}

// Open waits for a free reader slot, held until the reader is closed.
func (f gatedFile) Open(ctx context.Context) (fs.Reader, error) {
	select {
	case f.g <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r, err := f.File.Open(ctx)
	if err != nil {
		<-f.g
		return nil, err
	}
	return &gatedReader{Reader: r, release: sync.OnceFunc(func() { <-f.g })}, nil
}

type gatedReader struct {
	fs.Reader
	release func()
}

func (r *gatedReader) Close() error {
	defer r.release()
	return r.Reader.Close()
}
