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

	"golang.org/x/sys/unix"
)

// syncBlock is the unit in which a copy is compared: PostgreSQL's page,
// half of InnoDB's, so that pages written here and there rewrite little
// more than themselves. Runs of differing blocks are written at once.
const syncBlock = 8 << 10

// syncCopy makes the file at dst hold what in holds, rewriting only the
// blocks that differ, and returns how many bytes it wrote. Both files are
// mapped, not read, so the comparison copies nothing: reading in costs
// what looking at its pages costs.
func syncCopy(dst string, in *os.File) (written int64, err error) {
	src := in.Name()
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open copy of %s: %w", src, err)
	}
	defer out.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", src, err)
	}
	n := st.Size()
	if err := out.Truncate(n); err != nil {
		return 0, fmt.Errorf("size copy of %s: %w", src, err)
	}
	if n == 0 {
		return 0, nil
	}
	a, err := unix.Mmap(int(in.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("map %s: %w", src, err)
	}
	defer unix.Munmap(a)
	b, err := unix.Mmap(int(out.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("map copy of %s: %w", src, err)
	}
	defer unix.Munmap(b)
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
	return total.Load(), errors.Join(errs...)
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
