package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kopia/kopia/fs"

	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// TestLiveDescribesEntriesAsKopiaDoes: kopia's walk must see in a live
// tree the entries localfs gave it (or its cache misses and the point
// differs), whether a directory comes from the scan's listing or is
// listed when the walk reaches it; and the scan that kept the listings
// makes the sidecar it makes alone.
func TestLiveDescribesEntriesAsKopiaDoes(t *testing.T) {
	dir := edgeTree(t)
	skip := func(rel string, isDir bool) bool { return rel == "skipped" && isDir }
	local, err := Filtered(dir, "vol", skip)
	if err != nil {
		t.Fatal(err)
	}
	want := sortedFacts(t, local)
	alone, _, err := fsmeta.Scan(context.Background(), dir, fsmeta.ScanOptions{Exclude: skip})
	if err != nil {
		t.Fatal(err)
	}
	for _, scanned := range []bool{true, false} {
		ls := NewListings(dir)
		if scanned {
			sc, _, err := fsmeta.Scan(context.Background(), dir, fsmeta.ScanOptions{Exclude: skip, Keep: ls})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sc, alone) {
				t.Errorf("the sidecar of a scan that keeps its listings differs: %+v, alone %+v", sc, alone)
			}
			if len(ls.m) != 4 { // "", a, a/b and a/b/c, not skipped/...
				t.Errorf("listings kept: %d, want the 4 directories not skipped", len(ls.m))
			}
		}
		root, err := Live(dir, "vol", skip, ls)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortedFacts(t, root); !reflect.DeepEqual(got, want) {
			t.Errorf("scanned %v: live entries differ from localfs's:\n got %+v\nwant %+v", scanned, got, want)
		}
		if scanned && len(ls.m) != 0 {
			t.Errorf("listings not taken by the walk: %v", ls.m)
		}
		f, err := root.(fs.Directory).Child(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		if f.LocalFilesystemPath() != filepath.Join(dir, "a") {
			t.Errorf("local path %q", f.LocalFilesystemPath())
		}
	}
}

// A running container may swap a directory for a symlink to a host
// directory between the walk's listing of its parent and of itself, or a
// file for a symlink before it is read: the walk then finds it gone and
// reads nothing outside the tree. (A directory the scan listed is handed
// over as the scan saw it, beneath the tree.)
func TestLiveFollowsNoSwap(t *testing.T) {
	ctx := context.Background()
	dir, host := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := Live(dir, "vol", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var d fs.Directory
	var f fs.File
	err = fs.IterateEntries(ctx, root.(fs.Directory), func(_ context.Context, e fs.Entry) error {
		switch e := e.(type) {
		case fs.Directory:
			d = e
		case fs.File:
			f = e
		}
		return nil
	})
	if err != nil || d == nil || f == nil {
		t.Fatalf("listing: %v, dir %v, file %v", err, d, f)
	}
	for _, name := range []string{"d", "f"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(host, filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "secret"), filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Iterate(ctx); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory swapped for a symlink was listed: %v, want it gone", err)
	}
	if r, err := f.Open(ctx); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("a file swapped for a symlink was read: %q", b)
	}
}

// Listings hold at most maxListed entries: the walk lists the rest.
func TestListingsBounded(t *testing.T) {
	dir := edgeTree(t)
	old := maxListed
	maxListed = 3
	defer func() { maxListed = old }()
	ls := NewListings(dir)
	if _, _, err := fsmeta.Scan(context.Background(), dir, fsmeta.ScanOptions{Keep: ls}); err != nil {
		t.Fatal(err)
	}
	if ls.held > 3 {
		t.Errorf("held %d entries, bound 3", ls.held)
	}
	if len(ls.m) == 0 {
		t.Errorf("nothing kept within the bound")
	}
	root, err := Live(dir, "vol", nil, ls)
	if err != nil {
		t.Fatal(err)
	}
	local, err := Filtered(dir, "vol", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedFacts(t, root), sortedFacts(t, local); !reflect.DeepEqual(got, want) {
		t.Errorf("live entries past the bound differ from localfs's:\n got %+v\nwant %+v", got, want)
	}
}
