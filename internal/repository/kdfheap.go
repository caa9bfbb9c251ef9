package repository

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// kdfHeapBytes is scrypt's 64 MiB (kopia's scrypt-65536-8-1: 128·r·N
// bytes), with room for the small spans other goroutines may take from
// the block's start before the derivation asks for its own.
const kdfHeapBytes = 72 << 20

// kdfHeap readies the heap for the key derivation that kopia runs each
// time it creates, connects or opens a repository. scrypt, the default,
// writes 64 MiB that the process has never touched: 16,700 page faults of
// 4 KiB, which took 0.30 s of a 0.41 s derivation on this project's
// virtual machine (page faults are dear under virtualisation), more than
// the hashing itself, in every command. Go does not ask for transparent
// huge pages for its heap, and where the kernel gives them only to memory
// that asks (THP "madvise"), none come. So a block the derivation's size
// is allocated, marked MADV_HUGEPAGE and freed: the derivation's
// allocation, the next one that large, takes the same addresses, and
// faults in 2 MiB at a time (0.13–0.25 s in all, measured). The key is
// the same; where the kernel gives no huge pages, or the allocator picks
// other addresses, the derivation runs as it did. With PBKDF2, the block
// is never touched, so it costs no memory, only the collection.
func kdfHeap() {
	b := make([]byte, kdfHeapBytes)
	// A hint: an error leaves the heap as Go made it.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	runtime.KeepAlive(b)
	// Frees the block (and a previous derivation's memory) for the next
	// large allocation: runtime.GC returns once the heap is swept.
	runtime.GC()
}
