package repository

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"

	"github.com/lifeboat-backup/lifeboat/internal/source"
)

// racingDir is a host directory whose listing runs act (delete, swap) on
// a named entry right after handing it to kopia: what a running container
// does between kopia's walk and its read.
type racingDir struct {
	fs.Directory
	act map[string]func()
}

func (d racingDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err
	}
	return racingIter{DirectoryIterator: it, act: d.act}, nil
}

type racingIter struct {
	fs.DirectoryIterator
	act map[string]func()
}

func (it racingIter) Next(ctx context.Context) (fs.Entry, error) {
	e, err := it.DirectoryIterator.Next(ctx)
	if e != nil && err == nil {
		if act := it.act[e.Name()]; act != nil {
			act()
		}
	}
	return e, err
}

func racingSnapshot(t *testing.T, r *Repository, dir string, act map[string]func()) (Point, error) {
	t.Helper()
	return r.Snapshot(t.Context(), SnapshotOptions{Unit: "volume/race", Kind: "volume"},
		func(ctx context.Context, up Uploader) (Labels, error) {
			d, err := source.Local(dir, "data")
			if err != nil {
				return Labels{}, err
			}
			root := source.Dir("", time.Now(), source.Dir("volumes", time.Now(), racingDir{Directory: d.(fs.Directory), act: act}))
			return Labels{Consistency: "none"}, up.Upload(ctx, root)
		})
}

// TestFilesDeletedDuringReadAreLeftOut: a file or directory its container
// deletes after kopia listed it (SQLite's -wal and -shm come and go with
// each connection) is not in the point, and the point is saved; a file
// swapped for a symlink fails the backup naming that file, not "canceled".
func TestFilesDeletedDuringReadAreLeftOut(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	dir := t.TempDir()
	for name, data := range map[string]string{"keep": "kept", "app.db-wal": "wal", "sub/f": "in sub"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := racingSnapshot(t, r, dir, map[string]func(){
		"app.db-wal": func() { os.Remove(filepath.Join(dir, "app.db-wal")) },
		"sub":        func() { os.RemoveAll(filepath.Join(dir, "sub")) },
	})
	if err != nil {
		t.Fatalf("a file deleted during the read failed the backup: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := r.Extract(t.Context(), ExtractOptions{ID: p.ID, Path: "volumes/data", Target: dst}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "keep")); err != nil || string(b) != "kept" {
		t.Fatalf("keep: %q %v", b, err)
	}
	for _, gone := range []string{"app.db-wal", "sub"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); !os.IsNotExist(err) {
			t.Errorf("%s, deleted before it was read, was restored: %v", gone, err)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "swapped"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = racingSnapshot(t, r, dir, map[string]func(){"swapped": func() {
		os.Remove(filepath.Join(dir, "swapped"))
		os.Symlink("/etc/hostname", filepath.Join(dir, "swapped"))
	}})
	if err == nil || !strings.Contains(err.Error(), "swapped") || strings.Contains(err.Error(), "canceled") {
		t.Fatalf("a file swapped for a symlink: %v, want an error naming it", err)
	}
	if ps, _ := r.List(t.Context(), "volume/race"); len(ps) != 1 {
		t.Fatalf("want the one good point, got %d", len(ps))
	}
}
