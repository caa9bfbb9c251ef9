package source

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/kopia/kopia/fs"
)

// The tree Capture returns: entries that hold what the walk saw, so that
// kopia can upload it once the unit is thawed.

// meta is an entry's metadata as it was when captured.
type meta struct {
	name   string
	size   int64
	mode   os.FileMode
	mtime  time.Time
	owner  fs.OwnerInfo
	device fs.DeviceInfo
}

func (m *meta) Name() string                { return m.name }
func (m *meta) Size() int64                 { return m.size }
func (m *meta) Mode() os.FileMode           { return m.mode }
func (m *meta) ModTime() time.Time          { return m.mtime }
func (m *meta) IsDir() bool                 { return m.mode.IsDir() }
func (m *meta) Sys() any                    { return nil }
func (m *meta) Owner() fs.OwnerInfo         { return m.owner }
func (m *meta) Device() fs.DeviceInfo       { return m.device }
func (m *meta) LocalFilesystemPath() string { return "" }
func (m *meta) Close()                      {}

type capturedDir struct {
	meta
	children []fs.Entry
}

func (d *capturedDir) SupportsMultipleIterations() bool { return true }

func (d *capturedDir) Child(_ context.Context, name string) (fs.Entry, error) {
	for _, c := range d.children {
		if c.Name() == name {
			return c, nil
		}
	}
	return nil, fs.ErrEntryNotFound
}

func (d *capturedDir) Iterate(context.Context) (fs.DirectoryIterator, error) {
	return fs.StaticIterator(d.children, nil), nil
}

type capturedSymlink struct {
	meta
	target string
}

func (s *capturedSymlink) Readlink(context.Context) (string, error) { return s.target, nil }

func (s *capturedSymlink) Resolve(context.Context) (fs.Entry, error) {
	return nil, fmt.Errorf("resolve %s: not followed in a captured tree", s.name)
}

type capturedError struct {
	meta
	err error
}

func (e *capturedError) ErrorInfo() error { return e.err }

// capturedFile reads its staged copy, or — not staged, because the live
// pass saw it as it is — the file itself, and then only if it still has
// the metadata captured: kopia finds such a file in its cache and never
// opens it, so this is a guard, not a path taken. One deleted before its
// copy was made reads as not existing, and kopia leaves it out.
type capturedFile struct {
	meta
	src       string // for messages
	base, rel string // its data directory, and its path there
	stage     *Stage
	staged    string
	gone      bool
}

func (f *capturedFile) Open(context.Context) (fs.Reader, error) {
	if f.gone {
		return nil, &os.PathError{Op: "open", Path: f.src, Err: os.ErrNotExist}
	}
	if f.staged != "" {
		r, err := os.Open(f.staged)
		if err != nil {
			return nil, fmt.Errorf("open staged copy of %s: %w", f.src, err)
		}
		return &capturedReader{File: r, e: f}, nil
	}
	r, err := f.stage.openSrc(f)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.src, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil || st.Size != f.size || time.Unix(st.Mtim.Unix()).UnixNano() != f.mtime.UnixNano() {
		r.Close()
		return nil, fmt.Errorf("%s changed after the freeze and was not staged: back up again", f.src)
	}
	return &capturedReader{File: r, e: f}, nil
}

type capturedReader struct {
	*os.File
	e fs.Entry
}

func (r *capturedReader) Entry() (fs.Entry, error) { return r.e, nil }

var (
	_ fs.Directory  = (*capturedDir)(nil)
	_ fs.File       = (*capturedFile)(nil)
	_ fs.Symlink    = (*capturedSymlink)(nil)
	_ fs.ErrorEntry = (*capturedError)(nil)
)
