package repository

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestKDFHeapHugePages: after kdfHeap, an allocation of scrypt's size lies
// in memory marked for transparent huge pages (VmFlags "hg"), on any
// kernel built with them; and where the kernel's setting gives them (not
// "never"), it faults in as huge pages. The placement is the allocator's,
// which another goroutine can disturb, so one of three tries must land
// (in 46 runs of `lifeboat snapshots`, one missed). Each try starts with
// the heap's free memory handed back to the kernel: pages this test
// binary touched before (4 KiB ones, still resident) would be reused as
// they are, as a fresh `lifeboat` process has none of.
func TestKDFHeapHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Fatalf("this kernel has no transparent huge pages, which Debian's kernels have: %v", err)
	}
	wantHuge := !strings.Contains(string(mode), "[never]")
	var got []string
	for range 3 {
		debug.FreeOSMemory()
		kdfHeap()
		v := make([]uint32, 32*65536*8) // scrypt-65536-8-1's 64 MiB
		for i := 0; i < len(v); i += 1024 {
			v[i] = 1
		}
		m, err := mappingOf(uintptr(unsafe.Pointer(&v[0])))
		if err != nil {
			t.Fatal(err)
		}
		marked := slices.Contains(m.flags, "hg")
		if marked && (!wantHuge || m.hugeKB >= 32<<10) {
			return
		}
		got = append(got, fmt.Sprintf("marked %v, %d KiB huge", marked, m.hugeKB))
	}
	t.Fatalf("THP %q: scrypt's allocation in three tries: %v; want it marked for huge pages (and at least 32 MiB of them unless THP is never) in one", strings.TrimSpace(string(mode)), got)
}

// mapping is what /proc/self/smaps says of one mapping.
type mapping struct {
	hugeKB int      // AnonHugePages
	flags  []string // VmFlags
}

// mappingOf is the mapping that holds addr.
func mappingOf(addr uintptr) (mapping, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return mapping{}, err
	}
	defer f.Close()
	var m mapping
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		if !in {
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			// The mapping's last line.
			m.flags = strings.Fields(flags)
			return m, nil
		}
		fmt.Sscanf(line, "AnonHugePages: %d kB", &m.hugeKB)
	}
	return mapping{}, fmt.Errorf("no mapping holds %#x in /proc/self/smaps (%v)", addr, sc.Err())
}
