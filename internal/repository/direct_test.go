package repository

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kopia/kopia/fs"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestExtractReadsContents: files of one content and of a list of them
// are read a content at a time (piecesOf says so, and the pieces add up
// to the file), and come back byte for byte, holes and all.
func TestExtractReadsContents(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// big: random, so it is split into several contents; holes: random
	// data around 12 MiB of zeros; small: one content; empty: none.
	files := map[string][]byte{
		"big":   random(19<<20 + 123),
		"holes": append(append(random(1<<20), make([]byte, 12<<20)...), random(4097)...),
		"small": []byte("one content"),
		"empty": nil,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// holes is made sparse at its source too, as a restore makes it.
	if err := os.Truncate(filepath.Join(src, "holes"), 0); err != nil {
		t.Fatal(err)
	}
	h, err := os.OpenFile(filepath.Join(src, "holes"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(files["holes"][:1<<20], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteAt(files["holes"][13<<20:], 13<<20); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	want := testutil.Manifest(t, src)
	p := snapshotDir(t, r, "volume/direct", src)

	o := &output{contents: contentsOf(r.rep)}
	if o.contents == nil {
		t.Fatal("the test repository gives no content reader: restores would never read contents directly")
	}
	for name, b := range files {
		e, err := r.entry(t.Context(), p.ID, "volumes/data/"+name)
		if err != nil {
			t.Fatal(err)
		}
		pieces, ok, err := o.piecesOf(t.Context(), e.(fs.File))
		if err != nil || !ok {
			t.Fatalf("%s: pieces %v, %v: want it read a content at a time", name, ok, err)
		}
		var n int64
		for _, pc := range pieces {
			n += pc.length
		}
		if n != int64(len(b)) {
			t.Errorf("%s: pieces hold %d bytes, want %d", name, n, len(b))
		}
		// New repositories cut contents of 2 MiB at most: a restore
		// writes each while it is still in the CPU's cache.
		if name == "big" && len(pieces) < 10 {
			t.Errorf("big: %d pieces, want a list of at least 10 contents", len(pieces))
		}
		for _, pc := range pieces {
			if pc.length > 2<<20 {
				t.Errorf("%s: a content of %d bytes, want at most 2 MiB", name, pc.length)
			}
		}
	}

	dst := filepath.Join(t.TempDir(), "out")
	if _, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, testutil.Manifest(t, dst)); diff != "" {
		t.Errorf("restored tree differs (-want +got):\n%s", diff)
	}
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: restored %d bytes (%v), want the %d written", name, len(got), err, len(b))
		}
	}
}
