package source

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
)

// read returns the content the captured tree gives for rel.
func read(t *testing.T, root fs.Entry, rel string) (string, error) {
	t.Helper()
	e := root
	for _, part := range strings.Split(rel, "/") {
		c, err := e.(fs.Directory).Child(context.Background(), part)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		e = c
	}
	r, err := e.(fs.File).Open(context.Background())
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// TestCaptureCopiesWhatChangedSinceTheLiveWalk: a file the live walk saw
// as it is is not copied; one changed or added since is, and the tree
// gives its content as it was when captured, whatever happens to the
// file after; a file seen unchanged but changed after the capture is
// refused rather than read torn. Excluded paths stay out, links keep the
// target they had.
func TestCaptureCopiesWhatChangedSinceTheLiveWalk(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("db/base", "base v1")
	write("db/wal", "wal v1")
	write("tmp/x", "excluded")
	os.Symlink("db/base", filepath.Join(dir, "link"))
	skip := func(rel string, _ bool) bool { return rel == "tmp" }

	seen := NewSeen()
	live, err := Recorded(dir, "vol", skip, seen)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, live.(fs.Directory), ""); !slices.Contains(got, "db/wal") || slices.Contains(got, "tmp") {
		t.Fatalf("live walk: %v", got)
	}

	past := time.Now().Add(-time.Hour)
	write("db/wal", "wal v2, longer")
	os.Chtimes(filepath.Join(dir, "db/wal"), past, past)
	write("db/new", "new v1")
	stage := &Stage{Dir: t.TempDir()}
	root, err := Capture(context.Background(), dir, "vol", skip, seen, stage)
	if err != nil {
		t.Fatal(err)
	}
	if n := stage.Files.Load(); n != 2 {
		t.Errorf("staged %d files, want 2 (db/wal, db/new)", n)
	}
	if root.Name() != "vol" {
		t.Errorf("root named %q", root.Name())
	}
	write("db/wal", "wal v3 after the thaw")
	write("db/new", "new v2 after the thaw")
	for rel, want := range map[string]string{"db/wal": "wal v2, longer", "db/new": "new v1", "db/base": "base v1"} {
		if got, err := read(t, root, rel); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, want)
		}
	}
	write("db/base", "base v2 after the thaw")
	if got, err := read(t, root, "db/base"); err == nil {
		t.Errorf("db/base changed after the capture and not staged, read %q", got)
	}
	got := names(t, root.(fs.Directory), "")
	slices.Sort(got)
	if want := []string{"db", "db/base", "db/new", "db/wal", "link"}; !slices.Equal(got, want) {
		t.Errorf("captured tree %v, want %v", got, want)
	}
	l, _ := root.(fs.Directory).Child(context.Background(), "link")
	if target, _ := l.(fs.Symlink).Readlink(context.Background()); target != "db/base" {
		t.Errorf("link -> %q", target)
	}
}
