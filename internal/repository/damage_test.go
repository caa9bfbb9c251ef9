package repository

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// blobSet lists the blob files of a filesystem repository under prefix.
func blobSet(dir, prefix string) map[string]bool {
	out := map[string]bool{}
	filepath.WalkDir(filepath.Join(dir, prefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p] = true
		}
		return nil
	})
	return out
}

// damaged is a repository of three points, each with its own random file,
// and for each point the index (x) blob and metadata pack (q) blobs its
// backup wrote: its trees and, in the last of them, its record.
type damaged struct {
	opts  Options
	ids   []string
	data  [][]byte
	index []string
	meta  [][]string
}

func newDamaged(t *testing.T) *damaged {
	t.Helper()
	d := &damaged{opts: newTestOptions(t, "pw")}
	r := mustInit(t, d.opts)
	for i := range 3 {
		x0, q0 := blobSet(d.opts.Location, "x"), blobSet(d.opts.Location, "q")
		dir := t.TempDir()
		b := make([]byte, 64<<10)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, "f"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		d.ids = append(d.ids, snapshotDir(t, r, "volume/v", dir).ID)
		d.data = append(d.data, b)
		x := newBlobs(t, x0, blobSet(d.opts.Location, "x"), i)
		if len(x) != 1 {
			t.Fatalf("point %d wrote index blobs %v, want one", i, x)
		}
		d.index = append(d.index, x[0])
		d.meta = append(d.meta, newBlobs(t, q0, blobSet(d.opts.Location, "q"), i))
	}
	r.Close(t.Context())
	// Each open below starts with an empty cache, as on another machine:
	// the damage is in storage, not hidden by a local copy.
	d.opts.StateDir = filepath.Join(t.TempDir(), "state")
	return d
}

func newBlobs(t *testing.T, before, after map[string]bool, i int) []string {
	t.Helper()
	var added []string
	for p := range after {
		if !before[p] {
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		t.Fatalf("point %d wrote no blobs", i)
	}
	return added
}

// expectPoints opens the repository, lists exactly want and restores each
// with its own content.
func (d *damaged) expectPoints(t *testing.T, want ...int) *Repository {
	t.Helper()
	return d.expectPointsWith(t, d.opts, want...)
}

func (d *damaged) expectPointsWith(t *testing.T, opts Options, want ...int) *Repository {
	t.Helper()
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close(t.Context()) })
	ps, err := r.List(t.Context(), "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.ID)
	}
	var exp []string
	for _, i := range want {
		exp = append(exp, d.ids[i])
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("listed %v, want %v", got, exp)
	}
	for _, i := range want {
		dst := t.TempDir()
		if _, err := r.Extract(t.Context(), ExtractOptions{ID: d.ids[i], Path: "volumes/data", Target: dst}); err != nil {
			t.Fatalf("restore point %d: %v", i, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "f")); !bytes.Equal(b, d.data[i]) {
			t.Fatalf("point %d restored other content", i)
		}
	}
	return r
}

func TestTruncatedIndexBlob(t *testing.T) {
	d := newDamaged(t)
	if err := os.Truncate(d.index[1], 20); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), d.opts); !errors.Is(err, ErrDamaged) {
		t.Fatalf("open with a truncated index blob: %v, want ErrDamaged", err)
	}
	// Read-only, the points the rest of the index describes list and
	// restore; check names the blob and the way out.
	ro := d.opts
	ro.ReadOnly = true
	d.expectPointsWith(t, ro, 0, 2)
	res, err := Check(t.Context(), d.opts, CheckOptions{})
	if !errors.Is(err, ErrCheckFailed) || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].What, "lifeboat repair") {
		t.Fatalf("check past a truncated index blob: %+v %v", res, err)
	}
	dry, err := Repair(t.Context(), d.opts, RepairOptions{DryRun: true})
	if err != nil || len(dry.SetAside) != 1 {
		t.Fatalf("dry repair: %+v %v", dry, err)
	}
	if _, err := os.Stat(d.index[1]); err != nil {
		t.Fatalf("a dry run changed the repository: %v", err)
	}
	rep, err := Repair(t.Context(), d.opts, RepairOptions{})
	if err != nil || len(rep.SetAside) != 1 || rep.Recovered == 0 || len(rep.Check.Problems) != 0 || rep.Check.Points != 3 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	r := d.expectPoints(t, 0, 1, 2)
	snapshotDir(t, r, "volume/v", t.TempDir())
}

func TestDeletedIndexBlob(t *testing.T) {
	d := newDamaged(t)
	if err := os.Remove(d.index[1]); err != nil {
		t.Fatal(err)
	}
	d.expectPoints(t, 0, 2)
	res, err := Repair(t.Context(), d.opts, RepairOptions{})
	if err != nil || res.Recovered == 0 || res.Check.Points != 3 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	d.expectPoints(t, 0, 1, 2)
}

func TestDeletedManifestBlob(t *testing.T) {
	d := newDamaged(t)
	for _, q := range d.meta[1] {
		if err := os.Remove(q); err != nil {
			t.Fatal(err)
		}
	}
	d.expectPoints(t, 0, 2)
	res, err := Check(t.Context(), d.opts, CheckOptions{})
	var all strings.Builder
	for _, p := range res.Problems {
		all.WriteString(p.What + " " + strings.Join(p.Points, ",") + "\n")
	}
	if !errors.Is(err, ErrCheckFailed) || res.LostRecords != 1 || res.Points != 2 {
		t.Fatalf("check: %+v %v\n%s", res, err, all.String())
	}
	if dry, err := Repair(t.Context(), d.opts, RepairOptions{DryRun: true}); !errors.Is(err, ErrCheckFailed) || len(dry.LostRecords) != 1 || dry.Check.LostRecords != 1 {
		t.Fatalf("dry repair: %+v %v", dry, err)
	}
	rep, err := Repair(t.Context(), d.opts, RepairOptions{})
	if !errors.Is(err, ErrCheckFailed) || len(rep.LostRecords) != 1 || rep.Check.LostRecords != 0 || len(rep.Check.Problems) != 0 {
		t.Fatalf("repair says nothing of the lost point, or leaves the repository with problems: %+v %v", rep, err)
	}
	r := d.expectPoints(t, 0, 2)
	snapshotDir(t, r, "volume/v", t.TempDir())
}

func TestDamagedManifestBlob(t *testing.T) {
	d := newDamaged(t)
	for _, q := range d.meta[1] {
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		// Every content of the packs damaged: the record among them too.
		for i := 0; i < len(b); i += 64 {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.expectPoints(t, 0, 2)
	res, err := Check(t.Context(), d.opts, CheckOptions{})
	if !errors.Is(err, ErrCheckFailed) || res.LostRecords != 1 || res.Points != 2 {
		t.Fatalf("check: %+v %v", res, err)
	}
}
