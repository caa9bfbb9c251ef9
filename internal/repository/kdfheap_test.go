package repository

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestKDFHeapHugePages: after kdfHeap, an allocation of scrypt's size
// faults in as transparent huge pages. The placement is the allocator's,
// which another goroutine can disturb, so one of three tries must land
// (in 46 runs of `lifeboat snapshots`, one missed).
func TestKDFHeapHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("this kernel gives no transparent huge pages (%q, %v): nothing to check", mode, err)
	}
	var got []int
	for range 3 {
		kdfHeap()
		v := make([]uint32, 32*65536*8) // scrypt-65536-8-1's 64 MiB
		for i := 0; i < len(v); i += 1024 {
			v[i] = 1
		}
		kb, err := anonHugeKB(uintptr(unsafe.Pointer(&v[0])))
		if err != nil {
			t.Fatal(err)
		}
		if kb >= 32<<10 {
			return
		}
		got = append(got, kb)
	}
	t.Fatalf("scrypt's allocation got %v KiB of huge pages in three tries, want at least 32 MiB in one", got)
}

// anonHugeKB is AnonHugePages of the mapping that holds addr.
func anonHugeKB(addr uintptr) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= addr && addr < hi
			continue
		}
		var kb int
		if n, _ := fmt.Sscanf(line, "AnonHugePages: %d kB", &kb); in && n == 1 {
			return kb, nil
		}
	}
	return 0, fmt.Errorf("no mapping holds %#x in /proc/self/smaps (%v)", addr, sc.Err())
}
