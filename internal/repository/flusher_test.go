package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// indexBlobs counts the index blobs of a filesystem repository.
func indexBlobs(t *testing.T, repo string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		// Blob names are sharded into folders: the first holds the prefix.
		if rel, _ := filepath.Rel(repo, p); strings.HasPrefix(rel, "x") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUploadFlushesAsItGoes: a pass over many small files flushes its
// write session every flushEvery files, so that kopia does not hold every
// content's index entry in memory to the end, and the point is whole.
func TestUploadFlushesAsItGoes(t *testing.T) {
	opts := newTestOptions(t, "pw")
	r := mustInit(t, opts)
	src := t.TempDir()
	const files = 1000
	for i := range files {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := indexBlobs(t, opts.Location)
	p1 := snapshotDir(t, r, "volume/few", src)
	one := indexBlobs(t, opts.Location) - before

	old := flushEvery
	flushEvery = 100
	t.Cleanup(func() { flushEvery = old })
	if err := os.WriteFile(filepath.Join(src, "new"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	src2 := t.TempDir()
	for i := range files {
		if err := os.WriteFile(filepath.Join(src2, fmt.Sprintf("g%04d", i)), []byte(fmt.Sprintf("other file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before = indexBlobs(t, opts.Location)
	p2 := snapshotDir(t, r, "volume/many", src2)
	many := indexBlobs(t, opts.Location) - before
	t.Logf("index blobs: %d without flushes, %d flushing every 100 files", one, many)
	if one < 1 || many < 5 {
		t.Errorf("index blobs written: %d without flushes, %d flushing every 100 files (want 5 or more)", one, many)
	}
	if p1.Files != files+1 || p2.Files != files+1 { // and lifeboat.json
		t.Fatalf("points hold %d and %d files, want %d", p1.Files, p2.Files, files+1)
	}
	dst := t.TempDir()
	st, err := r.Extract(t.Context(), ExtractOptions{ID: p2.ID, Path: "volumes/data", Target: dst})
	if err != nil || st.Files != files {
		t.Fatalf("extract: %v %+v", err, st)
	}
	for _, i := range []int{0, 99, 100, 555, files - 1} {
		b, err := os.ReadFile(filepath.Join(dst, fmt.Sprintf("g%04d", i)))
		if want := fmt.Sprintf("other file %d\n", i); err != nil || string(b) != want {
			t.Errorf("g%04d: %q, %v; want %q", i, b, err, want)
		}
	}
}
