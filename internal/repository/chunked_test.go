package repository

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestExtractInPieces: a tree bigger than restoreChunk is restored piece by
// piece, and comes back exactly as a tree restored in one walk: contents,
// modes, owners, times of files and directories, links, and the counts.
func TestExtractInPieces(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	src := t.TempDir()
	testutil.MakeEdgeTree(t, filepath.Join(src, "edge"))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for d := range 3 {
		dir := filepath.Join(src, fmt.Sprintf("big%d", d), "inner")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		for i := range 25 {
			p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
			if err := os.WriteFile(p, []byte(fmt.Sprintf("%d/%d", d, i)), 0o604); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 30 {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("top%02d", i)), []byte("top"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	want := testutil.Manifest(t, src)
	p := snapshotDir(t, r, "volume/pieces", src)

	extract := func(chunk int64) ([]string, RestoreStats, *progress.Counters) {
		t.Helper()
		saved := restoreChunk
		restoreChunk = chunk
		defer func() { restoreChunk = saved }()
		dst := filepath.Join(t.TempDir(), "out")
		if err := os.Mkdir(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		c := progress.New()
		st, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst, Progress: c})
		if err != nil {
			t.Fatalf("extract in pieces of %d: %v", chunk, err)
		}
		return testutil.Manifest(t, dst), st, c
	}
	// kopia alone does not keep the edge tree's xattrs, devices and
	// odd names (the sidecar does, in package backup): the rest must
	// come back as it was, and all of it as one walk restores it.
	whole, wholeSt, _ := extract(1 << 40)
	if diff := cmp.Diff(notEdge(want), notEdge(whole)); diff != "" {
		t.Fatalf("restored in one walk, the tree differs (-want +got):\n%s", diff)
	}
	for _, chunk := range []int64{1, 7, 20} {
		got, st, c := extract(chunk)
		if diff := cmp.Diff(whole, got); diff != "" {
			t.Errorf("restored in pieces of %d, the tree differs (-want +got):\n%s", chunk, diff)
		}
		if st != wholeSt {
			t.Errorf("pieces of %d: counted %+v, one walk %+v", chunk, st, wholeSt)
		}
		if s := c.Read(); s.Files != st.Files || s.TotalFiles != st.Files {
			t.Errorf("pieces of %d: progress %d/%d files, restored %d", chunk, s.Files, s.TotalFiles, st.Files)
		}
	}
}

func notEdge(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.HasPrefix(l, `"edge`) {
			out = append(out, l)
		}
	}
	return out
}
