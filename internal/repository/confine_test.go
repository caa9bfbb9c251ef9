package repository

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kopia/kopia/snapshot/restore"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func TestExtractKeepsEdgeTree(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	src := filepath.Join(t.TempDir(), "src")
	testutil.MakeEdgeTree(t, src)
	// os.Chmod needs os.ModeSetuid and friends, not 0o4000 bits.
	special := map[string]os.FileMode{
		"suid/file": os.ModeSetuid | os.ModeSetgid | 0o750, "suid/dir": os.ModeSetgid | os.ModeSticky | 0o775,
	}
	os.MkdirAll(filepath.Join(src, "suid/dir"), 0o755)
	os.WriteFile(filepath.Join(src, "suid/file"), []byte("x"), 0o600)
	for name, mode := range special {
		os.Lchown(filepath.Join(src, name), 1000, 1000)
		if err := os.Chmod(filepath.Join(src, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	sc, _, err := fsmeta.Scan(t.Context(), src, fsmeta.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := snapshotDir(t, r, "volume/edge", src)
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst}); err != nil {
		t.Fatal(err)
	}
	if _, err := fsmeta.Apply(t.Context(), dst, sc); err != nil {
		t.Fatal(err)
	}
	testutil.RequireSameTree(t, src, dst)
	for name, mode := range special {
		if fi, err := os.Lstat(filepath.Join(dst, name)); err != nil || fi.Mode()&^os.ModeType != mode {
			t.Errorf("%s: %v, want %v (%v)", name, fi.Mode(), mode, err)
		}
	}
	// A single file lands inside the target under its own name.
	one := t.TempDir()
	if _, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data/suid/file", Target: one}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(one, "file")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("single file: %v %v", fi, err)
	}
}

// nestedTree makes width directories, each holding width directories of
// files: many directory names for a racer to swap.
func nestedTree(t *testing.T, dir string, width int) {
	t.Helper()
	for i := range width {
		for j := range width {
			d := filepath.Join(dir, fmt.Sprintf("d%d", i), fmt.Sprintf("s%d", j))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := range 4 {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", k)), []byte("data"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// racer swaps the tree's directories in dst for symlinks to outside in a
// loop, as a container writing to the volume being restored could: a
// created one is moved aside and replaced, and if early a name not yet
// created gets the symlink first.
func racer(dst, outside string, width int, early bool, stop <-chan struct{}, planted *atomic.Int64) {
	var names []string
	for i := range width {
		names = append(names, fmt.Sprintf("d%d", i))
		for j := range width {
			names = append(names, fmt.Sprintf("d%d/s%d", i, j))
		}
	}
	for n := 0; ; n++ {
		for _, name := range names {
			select {
			case <-stop:
				return
			default:
			}
			p := filepath.Join(dst, name)
			// Only the racer plants symlinks: with its parent a real
			// directory, it never writes outside itself.
			if fi, err := os.Lstat(filepath.Dir(p)); err != nil || !fi.IsDir() {
				continue
			}
			fi, err := os.Lstat(p)
			switch {
			case err == nil && fi.IsDir():
				os.Rename(p, fmt.Sprintf("%s.moved%d", p, n))
			case !early:
				continue // only swap what the restore created
			}
			if os.Symlink(outside, p) == nil {
				planted.Add(1)
			}
		}
	}
}

// countEntries counts everything below dir.
func countEntries(t *testing.T, dir string) int {
	t.Helper()
	n := -1
	filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
	return n
}

// raceExtract restores the nested tree into an empty directory tries times
// while a racer plants symlinks to an outside directory; it returns how
// many tries wrote outside and how many restores failed.
func raceExtract(t *testing.T, tries, width int, extract func(dst string) error) (escaped, failed int, planted int64) {
	t.Helper()
	var total atomic.Int64
	for try := range tries {
		base := t.TempDir()
		dst, outside := filepath.Join(base, "target"), filepath.Join(base, "outside")
		for _, d := range []string{dst, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for j := range width { // so that d*/s* paths through a symlink resolve
			os.Mkdir(filepath.Join(outside, fmt.Sprintf("s%d", j)), 0o755)
		}
		before := countEntries(t, outside)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { racer(dst, outside, width, try%2 == 1, stop, &total) })
		err := extract(dst)
		close(stop)
		wg.Wait()
		if err != nil {
			failed++
		}
		if countEntries(t, outside) != before {
			escaped++
		}
	}
	return escaped, failed, total.Load()
}

func TestExtractConfinedUnderRacingSymlinks(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	const width, tries = 8, 25
	src := t.TempDir()
	nestedTree(t, src, width)
	p := snapshotDir(t, r, "volume/nested", src)

	escaped, failed, planted := raceExtract(t, tries, width, func(dst string) error {
		_, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst})
		return err
	})
	t.Logf("confine: %d/%d restores, %d writes outside (%d failed on a planted symlink, %d symlinks planted)", tries, tries, escaped, failed, planted)
	if escaped != 0 {
		t.Fatalf("%d of %d restores wrote outside their target", escaped, tries)
	}
	if failed == 0 || planted == 0 {
		t.Fatalf("the racer never got in the way (%d planted): the test proves nothing", planted)
	}

	// The same racer against kopia's own writer, to show it is a real attack.
	kopiaEscaped, _, _ := raceExtract(t, tries, width, func(dst string) error {
		return kopiaExtract(t.Context(), r, p.ID, dst)
	})
	t.Logf("kopia's FilesystemOutput: %d/%d restores wrote outside", kopiaEscaped, tries)
}

func kopiaExtract(ctx context.Context, r *Repository, id, dst string) error {
	e, err := r.entry(ctx, id, "volumes/data")
	if err != nil {
		return err
	}
	out := &restore.FilesystemOutput{TargetPath: dst, WriteSparseFiles: true}
	if err := out.Init(ctx); err != nil {
		return err
	}
	_, err = restore.Entry(ctx, r.rep, out, e, restore.Options{Parallel: 8, RestoreDirEntryAtDepth: math.MaxInt32})
	return err
}

// TestExtractIntoPlantedTarget: with MergeDirs (a target that holds
// entries already, as --force allows), symlinks planted before the restore
// at directory and file positions are refused, not followed.
func TestExtractIntoPlantedTarget(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	src := t.TempDir()
	nestedTree(t, src, 2)
	p := snapshotDir(t, r, "volume/nested", src)
	for _, plant := range []string{"d0", "d1/s1", "d1/s0/f2"} {
		t.Run(plant, func(t *testing.T) {
			dst, outside := t.TempDir(), t.TempDir()
			victim := filepath.Join(outside, "f2")
			os.WriteFile(victim, []byte("keep"), 0o600)
			os.MkdirAll(filepath.Join(dst, filepath.Dir(plant)), 0o755)
			dest := outside
			if filepath.Base(plant) == "f2" {
				dest = victim
			}
			if err := os.Symlink(dest, filepath.Join(dst, plant)); err != nil {
				t.Fatal(err)
			}
			_, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst, MergeDirs: true})
			if err == nil {
				t.Fatal("extract through a planted symlink succeeded")
			}
			if dest == outside && !errors.Is(err, beneath.ErrNotBeneath) {
				t.Errorf("extract: %v, want ErrNotBeneath", err)
			}
			b, _ := os.ReadFile(victim)
			fi, _ := os.Stat(victim)
			if n := countEntries(t, outside); n != 1 || string(b) != "keep" || fi.Mode().Perm() != 0o600 {
				t.Fatalf("outside changed: %d entries, victim %q %v (extract: %v)", n, b, fi.Mode(), err)
			}
		})
	}
}
