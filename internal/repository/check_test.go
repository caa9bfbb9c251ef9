package repository

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// packs lists the data pack files of a filesystem repository.
func packs(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	// Blob names are sharded into directories by their first letters:
	// data packs ("p…") live under p/.
	filepath.WalkDir(filepath.Join(dir, "p"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if len(out) == 0 {
		names, _ := os.ReadDir(dir)
		t.Fatalf("no pack files in %s: %v", dir, names)
	}
	return out
}

func TestCheck(t *testing.T) {
	opts := newTestOptions(t, "pw")
	r := mustInit(t, opts)
	dir := t.TempDir()
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	p1 := snapshotDir(t, r, "volume/v", dir)
	p2 := snapshotDir(t, r, "volume/v", dir)

	res, err := r.Check(t.Context(), CheckOptions{ReadData: 100})
	if err != nil || res.Points != 2 || res.ReadFiles == 0 || !res.DataVerified {
		t.Fatalf("clean repository: %+v %v", res, err)
	}

	// A flipped byte in a pack: only reading the data finds it.
	ps := packs(t, opts.Location)
	f, err := os.OpenFile(ps[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 1000)
	f.WriteAt([]byte{b[0] ^ 0xff}, 1000)
	f.Close()
	if res, err := r.Check(t.Context(), CheckOptions{}); err != nil || res.DataVerified {
		t.Fatalf("a check without --read-data pretends to have read data, or fails on what it cannot see: %+v %v", res, err)
	}
	res, err = r.Check(t.Context(), CheckOptions{ReadData: 100})
	if !errors.Is(err, ErrCheckFailed) || len(res.Problems) == 0 {
		t.Fatalf("a corrupt pack went unnoticed: %+v %v", res, err)
	}
	// Both points share the file: both are named.
	if pts := strings.Join(res.Problems[0].Points, " "); !strings.Contains(pts, p1.ID) || !strings.Contains(pts, p2.ID) {
		t.Fatalf("problem %+v does not name both points", res.Problems[0])
	}

	// A missing pack: found from the index, without reading data.
	for _, p := range ps {
		os.Remove(p)
	}
	r2, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(t.Context())
	res, err = r2.Check(t.Context(), CheckOptions{})
	var all bytes.Buffer
	for _, p := range res.Problems {
		all.WriteString(p.What + " " + strings.Join(p.Points, ",") + "\n")
	}
	if !errors.Is(err, ErrCheckFailed) || !strings.Contains(all.String(), "missing") || !strings.Contains(all.String(), p1.ID) {
		t.Fatalf("missing packs: %v\n%s", err, all.String())
	}
}
