package source

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// syncBlock is the unit in which a copy is compared and rewritten: a few
// database pages, small enough that a page written here and there does
// not rewrite much, large enough that the comparison runs at memory speed.
const syncBlock = 64 << 10

// syncCopy makes the file at dst hold what src holds, rewriting only the
// blocks that differ, and returns how many bytes it wrote. Both files are
// mapped, not read, so the comparison copies nothing: reading src costs
// what looking at its pages costs.
func syncCopy(dst, src string) (written int64, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
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
	// A file cut short under the mapping (by a process outside the unit)
	// faults: that is an error here, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compare %s with its copy: %v", src, r)
		}
	}()
	for off := int64(0); off < n; off += syncBlock {
		end := min(off+syncBlock, n)
		if bytes.Equal(a[off:end], b[off:end]) {
			continue
		}
		if _, err := out.WriteAt(a[off:end], off); err != nil {
			return written, fmt.Errorf("update copy of %s: %w", src, err)
		}
		written += end - off
	}
	return written, nil
}
