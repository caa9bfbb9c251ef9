package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// Seen holds the metadata of the files a live walk handed to kopia, by
// path relative to the walk's root: what kopia's cache compares (size,
// time, mode, owner). A file that still matches it while the unit is
// frozen is one the frozen pass would find in the live pass's cache.
type Seen struct {
	mu sync.Mutex
	m  map[string]fileKey
}

type fileKey struct {
	size, mtime int64
	mode        os.FileMode
	owner       fs.OwnerInfo
}

func keyOf(e fs.Entry) fileKey {
	return fileKey{size: e.Size(), mtime: e.ModTime().UnixNano(), mode: e.Mode(), owner: e.Owner()}
}

// NewSeen is an empty record.
func NewSeen() *Seen { return &Seen{m: map[string]fileKey{}} }

func (s *Seen) add(rel string, e fs.Entry) {
	s.mu.Lock()
	s.m[rel] = keyOf(e)
	s.mu.Unlock()
}

func (s *Seen) same(rel string, e fs.Entry) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	k, ok := s.m[rel]
	s.mu.Unlock()
	return ok && k == keyOf(e)
}

// Recorded is Filtered that also records in seen every regular file the
// walk hands out.
func Recorded(path, name string, skip func(rel string, isDir bool) bool, seen *Seen) (Entry, error) {
	d, err := localfs.Directory(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &filteredDir{Directory: d, name: name, skip: skip, seen: seen, root: true}, nil
}

// Stage is where Capture copies the files that changed since the live
// walk, and what it copied.
type Stage struct {
	Dir    string
	n      atomic.Int64
	Files  atomic.Int64
	Bytes  atomic.Int64 // copied, or rewritten in a copy brought up to date
	Cloned atomic.Int64 // files copied by reflink, sharing their blocks
	Synced atomic.Int64 // files whose copy from Prestage was brought up to date
	// Compared counts the bytes compared with a copy to bring it up to
	// date; Unchanged those of them in files found the same as their copy;
	// Vouched those of files unchanged since a compare, not compared again.
	Compared, Unchanged, Vouched atomic.Int64
	// Budget caps the bytes copied whole, so that a large database does
	// not fill the disk with its copy; 0: no cap.
	Budget int64
	whole  atomic.Int64

	mu     sync.Mutex
	pre    map[string]string        // file → its copy by Prestage, not yet taken
	maps   map[string]*fileMaps     // file → the mappings its last compare used
	mapped int64                    // the address space they take
	roots  map[string]*beneath.Root // data directories, opened once
}

// keepMapsUpTo is the most address space the mappings kept between a
// prestage and the frozen pass take: they hold no memory of their own,
// but their pages count as the process's while mapped, and past this a
// large database's frozen compare faults its pages in as before.
const keepMapsUpTo = 16 << 30

// keepMaps keeps m for src's next compare, within keepMapsUpTo.
func (s *Stage) keepMaps(src string, m *fileMaps) {
	if m == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mapped+m.mapped() > keepMapsUpTo {
		m.release()
		return
	}
	if s.maps == nil {
		s.maps = map[string]*fileMaps{}
	}
	s.maps[src].release()
	s.maps[src] = m
	s.mapped += m.mapped()
}

// takeMaps is the mappings kept for src, which the caller now owns.
func (s *Stage) takeMaps(src string) *fileMaps {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.maps[src]
	delete(s.maps, src)
	s.mapped -= m.mapped()
	return m
}

// ReleaseMaps unmaps what the compares kept: once the frozen pass is
// done, nothing compares again.
func (s *Stage) ReleaseMaps() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.maps {
		m.release()
	}
	s.maps, s.mapped = nil, 0
}

// ResetCounts zeroes what the stage counts, so that a frozen pass counts
// only its own work, not the prestage's.
func (s *Stage) ResetCounts() {
	for _, c := range []*atomic.Int64{&s.Files, &s.Bytes, &s.Synced, &s.Cloned, &s.Compared, &s.Unchanged, &s.Vouched} {
		c.Store(0)
	}
}

// root is the data directory at path, opened once: every file under it
// is opened beneath it, through no symlink, since the unit's containers
// may swap a file for a symlink to a host file between a walk and a copy.
func (s *Stage) root(path string) (*beneath.Root, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.roots[path]; r != nil {
		return r, nil
	}
	r, err := beneath.Open(path)
	if err != nil {
		return nil, err
	}
	if s.roots == nil {
		s.roots = map[string]*beneath.Root{}
	}
	s.roots[path] = r
	return r, nil
}

// Close closes the data directories the stage opened and releases the
// mappings it kept.
func (s *Stage) Close() {
	s.ReleaseMaps()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.roots {
		r.Close()
	}
	s.roots = nil
}

// openSrc opens f's file beneath its data directory.
func (s *Stage) openSrc(f *capturedFile) (*os.File, error) {
	r, err := s.root(f.base)
	if err != nil {
		return nil, err
	}
	return r.OpenRegular(f.rel)
}

// ErrStageFull is returned when the files to copy exceed Stage.Budget.
var ErrStageFull = errors.New("staging area budget exceeded")

// Prestage copies into stage, the unit still running, the files under
// path that changed since the live walk: a database's files go on
// changing, and a Capture that follows only has to bring these copies up
// to date, comparing them block by block without copying what is the same.
// sc, when not nil, is fed every entry, as by Capture.
func Prestage(ctx context.Context, path string, skip func(rel string, isDir bool) bool, seen *Seen, stage *Stage, sc *fsmeta.Scanner) error {
	w := newWalker(path, skip, seen, stage, true)
	w.sc = sc
	if _, err := w.walk(ctx); err != nil {
		return err
	}
	if err := w.copyAll(ctx); err != nil {
		return err
	}
	stage.mu.Lock()
	defer stage.mu.Unlock()
	if stage.pre == nil {
		stage.pre = map[string]string{}
	}
	for _, f := range w.jobs {
		if f.staged != "" {
			stage.pre[f.src] = f.staged
		}
	}
	return nil
}

// taken is the copy Prestage made of src, which the caller now owns.
func (s *Stage) taken(src string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pre[src]
	delete(s.pre, src)
	return p
}

// copyAll copies the changed files into the stage, or brings their
// copies up to date, several at a time: on a busy host each thread gets
// its share of the CPU, and a freeze lasts as long as the slowest.
func (w *walker) copyAll(ctx context.Context) error {
	workers := min(len(w.jobs), 2*runtime.NumCPU())
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for {
				j := next.Add(1) - 1
				if j >= int64(len(w.jobs)) || ctx.Err() != nil {
					errs[i] = ctx.Err()
					return
				}
				if err := w.stage.copy(w.jobs[j], w.capped); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copy copies f into the stage, or brings Prestage's copy of it up to
// date. A file deleted since the walk is left out: before the freeze it
// is simply not prestaged; frozen, it is gone from the point, as kopia
// leaves out a file that vanished.
func (s *Stage) copy(f *capturedFile, capped bool) error {
	src, err := s.openSrc(f)
	if errors.Is(err, os.ErrNotExist) {
		f.gone = true
		s.takeMaps(f.src).release()
		if pre := s.taken(f.src); pre != "" {
			os.Remove(pre)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy %s to the staging area: %w", f.src, err)
	}
	defer src.Close()
	maps := s.takeMaps(f.src)
	if pre := s.taken(f.src); pre != "" {
		n, kept, err := syncCopy(pre, src, maps)
		maps = nil  // syncCopy's now
		if capped { // before the freeze: the frozen pass compares again
			s.keepMaps(f.src, kept)
		} else {
			kept.release()
		}
		if err == nil {
			switch {
			case kept != nil && kept.vouched:
				s.Vouched.Add(f.meta.size)
			case n == 0:
				s.Compared.Add(f.meta.size)
				s.Unchanged.Add(f.meta.size)
			default:
				s.Compared.Add(f.meta.size)
			}
			f.staged = pre
			s.Files.Add(1)
			s.Synced.Add(1)
			s.Bytes.Add(n)
			return nil
		}
		// Copied whole instead: the copy is only a shortcut.
		os.Remove(pre)
	}
	maps.release()
	// Frozen, a file is copied whatever the budget: failing there would
	// fail every backup of a busy unit; half the disk was left free.
	if capped && s.Budget > 0 && s.whole.Add(f.meta.size) > s.Budget {
		return fmt.Errorf("copy %s: %w", f.src, ErrStageFull)
	}
	dst := filepath.Join(s.Dir, strconv.FormatInt(s.n.Add(1), 10))
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s to the staging area: %w", f.src, err)
	}
	n, err := cloneOrCopy(out, src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s to the staging area: %w", f.src, err)
	}
	if n < 0 {
		s.Cloned.Add(1)
		n = f.meta.size
	}
	f.staged = dst
	s.Files.Add(1)
	s.Bytes.Add(n)
	return nil
}

// cloneOrCopy shares src's blocks with dst where the file system can
// (n = -1), else copies them in the kernel.
func cloneOrCopy(dst, src *os.File) (int64, error) {
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err == nil {
		return -1, nil
	}
	return io.Copy(dst, src)
}
