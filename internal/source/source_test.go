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

// names walks d and returns every path under it, slash-separated.
func names(t *testing.T, d fs.Directory, prefix string) []string {
	t.Helper()
	var out []string
	err := fs.IterateEntries(context.Background(), d, func(ctx context.Context, e fs.Entry) error {
		p := prefix + e.Name()
		out = append(out, p)
		if sub, ok := e.(fs.Directory); ok {
			out = append(out, names(t, sub, p+"/")...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFilteredHidesExcludedAtEveryDepth(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"keep/a.txt", "keep/app.log", "cache/x", "keep/cache/y", "top.log"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	skip := func(rel string, isDir bool) bool {
		return strings.HasSuffix(rel, ".log") || (isDir && filepath.Base(rel) == "cache")
	}
	e, err := Filtered(dir, "vol", skip)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name() != "vol" {
		t.Errorf("name %q, want vol", e.Name())
	}
	got := names(t, e.(fs.Directory), "")
	slices.Sort(got)
	if want := []string{"keep", "keep/a.txt"}; !slices.Equal(got, want) {
		t.Errorf("walk = %v, want %v", got, want)
	}
	if _, err := Filtered(filepath.Join(dir, "missing"), "v", nil); err == nil {
		t.Error("Filtered of a missing directory succeeded")
	}
}

func TestVirtualEntries(t *testing.T) {
	at := time.Date(2026, 11, 24, 15, 30, 0, 0, time.UTC)
	b := Bytes("config.json", []byte(`{"a":1}`), 0o600, at)
	if b.Mode() != 0o600 || b.ModTime() != at || b.Size() != 7 {
		t.Errorf("Bytes entry: mode %v time %v size %d", b.Mode(), b.ModTime(), b.Size())
	}
	calls := 0
	lazy := Lazy("lifeboat.json", 0o644, at, func() ([]byte, error) { calls++; return []byte("late"), nil })
	r, err := lazy.(fs.File).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "late" || lazy.Size() != 4 || calls != 1 {
		t.Errorf("Lazy: %q size %d, %d calls", got, lazy.Size(), calls)
	}
	d := Dir("containers", at, b)
	if !d.IsDir() || d.Mode() != os.ModeDir|0o755 || d.ModTime() != at {
		t.Errorf("Dir: mode %v time %v", d.Mode(), d.ModTime())
	}
	if got := names(t, d.(fs.Directory), ""); !slices.Equal(got, []string{"config.json"}) {
		t.Errorf("Dir children %v", got)
	}
}
