package flock

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTryLockExcludesAnotherOpen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, err := TryLock(a); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if ok, err := TryLock(b); ok || err != nil {
		t.Fatalf("second open took the held lock: %v %v", ok, err)
	}
	a.Close() // the lock goes with its holder
	if ok, err := TryLock(b); !ok || err != nil {
		t.Fatalf("lock after the holder closed: %v %v", ok, err)
	}
}
