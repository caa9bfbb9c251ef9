package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/changetime"
)

// syncBlock is the unit in which a copy is compared: PostgreSQL's page,
// half of InnoDB's, so that pages written here and there rewrite little
// more than themselves. Runs of differing blocks are written at once.
const syncBlock = 8 << 10

// syncCopy makes the file at dst hold what in holds, rewriting only the
// blocks that differ, and returns how many bytes it wrote and the
// mappings it compared through, for the caller to keep or release. Both
// files are mapped, not read, so the comparison copies nothing: reading
// in costs what looking at its pages costs. Mappings kept from the
// prestage (m) are reused while they still map in's file and its copy:
// their pages are already in place, and a writer's writes land in those
// same pages, so the frozen compare takes no page faults (on 873 MB,
// 220 ms with fresh mappings, about half with kept ones).
func syncCopy(dst string, in *os.File, m *fileMaps) (written int64, _ *fileMaps, err error) {
	src := in.Name()
	at := time.Now()
	var st unix.Stat_t
	if err := unix.Fstat(int(in.Fd()), &st); err != nil {
		m.release()
		return 0, nil, fmt.Errorf("stat %s: %w", src, err)
	}
	if m.unchanged(&st, dst) {
		m.vouched = true
		return 0, m, nil
	}
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		m.release()
		return 0, nil, fmt.Errorf("open copy of %s: %w", src, err)
	}
	defer out.Close()
	m, n, err := mapBoth(in, out, dst, m, &st)
	if err != nil || n == 0 {
		return 0, m, err
	}
	defer func() {
		if err == nil {
			m.record(in, &st, at)
		}
	}()
	a, b := m.src[:n], m.dst[:n]
	// A large file is compared in parts at once: the freeze lasts as long
	// as the largest file takes otherwise.
	parts := (n + syncPart - 1) / syncPart
	var next, total atomic.Int64
	errs := make([]error, min(parts, int64(2*runtime.NumCPU())))
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			for {
				p := next.Add(1) - 1
				if p >= parts {
					return
				}
				w, err := syncRange(out, a, b, p*syncPart, min((p+1)*syncPart, n))
				total.Add(w)
				if err != nil {
					errs[i] = fmt.Errorf("update copy of %s: %w", src, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.release()
		return total.Load(), nil, err
	}
	return total.Load(), m, nil
}

// fileMaps are read-only shared mappings of a file and of its copy in
// the stage, each longer than the file was when mapped, so that a file
// that grew a little is still covered.
type fileMaps struct {
	dev, ino uint64 // the file's
	copy     string // the copy's path
	src, dst []byte
	// The file's size and ctime when the last compare began, and whether
	// it had been quiet then: the copy holds what the file held then.
	size  int64
	ctime unix.Timespec
	quiet bool
	// vouched: the last syncCopy found the file unchanged and compared
	// nothing.
	vouched bool
}

// record notes what the compare that began at at, with the file as st
// says, made the copy hold.
func (m *fileMaps) record(in *os.File, st *unix.Stat_t, at time.Time) {
	m.size, m.ctime, m.vouched = st.Size, st.Ctim, false
	m.quiet = changetime.Quiet(st.Ctim, at) && changetime.LocalFS(int(in.Fd()))
}

// unchanged is true when the file, now as st says, has not changed since
// a compare that began with it quiet (package changetime): its copy holds
// it already.
func (m *fileMaps) unchanged(st *unix.Stat_t, dst string) bool {
	return m.of(st, dst) && m.quiet && m.size == st.Size && m.ctime == st.Ctim
}

// of is true when m maps the file st describes and its copy at dst.
func (m *fileMaps) of(st *unix.Stat_t, dst string) bool {
	return m != nil && m.dev == uint64(st.Dev) && m.ino == st.Ino && m.copy == dst
}

func (m *fileMaps) release() {
	if m == nil {
		return
	}
	unix.Munmap(m.src)
	unix.Munmap(m.dst)
}

// mapped is the address space the mappings take.
func (m *fileMaps) mapped() int64 {
	if m == nil {
		return 0
	}
	return int64(len(m.src) + len(m.dst))
}

// mapBoth sizes the copy at dst (out) to in's size n and returns
// mappings of both that cover n: m when it maps the same two files far
// enough, else new ones (m released).
func mapBoth(in, out *os.File, dst string, m *fileMaps, st *unix.Stat_t) (*fileMaps, int64, error) {
	n := st.Size
	if err := out.Truncate(n); err != nil {
		m.release()
		return nil, 0, fmt.Errorf("size copy of %s: %w", in.Name(), err)
	}
	if m.of(st, dst) && n <= int64(len(m.src)) {
		return m, n, nil
	}
	m.release()
	if n == 0 {
		return nil, 0, nil
	}
	// Pages past the end of the file are mapped but never touched: only
	// [0, n) of a later size n is compared.
	length := int(n + n/4 + 16<<20)
	a, err := unix.Mmap(int(in.Fd()), 0, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, 0, fmt.Errorf("map %s: %w", in.Name(), err)
	}
	b, err := unix.Mmap(int(out.Fd()), 0, length, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(a)
		return nil, 0, fmt.Errorf("map copy of %s: %w", in.Name(), err)
	}
	return &fileMaps{dev: uint64(st.Dev), ino: st.Ino, copy: dst, src: a, dst: b}, n, nil
}

// syncPart is how much of a file one goroutine compares at a time.
const syncPart = 16 << 20

// syncRange rewrites the blocks of out in [from, to) where b, its
// mapping, differs from a, the file's.
func syncRange(out *os.File, a, b []byte, from, to int64) (written int64, err error) {
	// A file cut short under the mapping (by a process outside the unit)
	// faults: that is an error here, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compare with the copy: %v", r)
		}
	}()
	run := int64(-1) // start of the run of differing blocks being gathered
	flush := func(end int64) error {
		if run < 0 {
			return nil
		}
		if _, err := out.WriteAt(a[run:end], run); err != nil {
			return err
		}
		written += end - run
		run = -1
		return nil
	}
	for off := from; off < to; off += syncBlock {
		end := min(off+syncBlock, to)
		if !bytes.Equal(a[off:end], b[off:end]) {
			if run < 0 {
				run = off
			}
			continue
		}
		if err := flush(off); err != nil {
			return written, err
		}
	}
	return written, flush(to)
}
