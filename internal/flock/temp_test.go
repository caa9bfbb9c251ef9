package flock

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCreateTempLockedBeforeNamed: on a filesystem with O_TMPFILE (the
// test's temporary directory), the file appears under a LockedTemp name,
// already locked and holding its bytes, and nothing else is left in the
// directory; once its writer closes it, anyone can lock it.
func TestCreateTempLockedBeforeNamed(t *testing.T) {
	dir := t.TempDir()
	f, path, err := CreateTemp(dir, "entry.json", []byte("{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(path) != dir || !strings.HasPrefix(filepath.Base(path), "entry.json.") || !strings.HasSuffix(path, LockedTemp) {
		t.Fatalf("path %s: want dir/entry.json.RANDOM%s", path, LockedTemp)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("directory holds %v (%v), want the one file", ents, err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "{}\n" {
		t.Fatalf("file holds %q, %v", b, err)
	}
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ok, err := TryLock(other); err != nil || ok {
		t.Fatalf("a second open locked the new file (%v, %v): its writer's lock is missing", ok, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := TryLock(other); err != nil || !ok {
		t.Fatalf("after its writer closed it, the file could not be locked: %v, %v", ok, err)
	}
}
