package repository

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/fs/virtualfs"
	"golang.org/x/sys/unix"
)

func TestMadeUpCountsOnlyGeneratedEntries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	// "/" , "volumes", "meta", two generated files: 5; the host directory
	// and its three files are real work.
	root := virtualfs.NewStaticDirectory("", []fs.Entry{
		virtualfs.NewStaticDirectory("volumes", []fs.Entry{local}),
		virtualfs.NewStaticDirectory("meta", []fs.Entry{
			virtualfs.StreamingFileFromReader("x.json", nil),
			virtualfs.StreamingFileFromReader("y.json", nil),
		}),
	})
	if got := madeUp(ctx, root); got != 5 {
		t.Fatalf("madeUp = %d, want 5", got)
	}
	if got, want := uploadParallelism(ctx, root), perCPU*runtime.NumCPU()+5; got != want {
		t.Fatalf("uploadParallelism = %d, want %d", got, want)
	}
}

func TestGateLimitsHostFileReaders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const files = 12
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	root := g.wrap(virtualfs.NewStaticDirectory("", []fs.Entry{local})).(fs.Directory)
	var host fs.Directory
	_ = fs.IterateEntries(ctx, root, func(_ context.Context, e fs.Entry) error {
		host = e.(fs.Directory)
		return nil
	})
	var open, peak atomic.Int32
	var wg sync.WaitGroup
	err = fs.IterateEntries(ctx, host, func(ctx context.Context, e fs.Entry) error {
		f, ok := e.(fs.File)
		if !ok {
			t.Errorf("%s: not a file", e.Name())
			return nil
		}
		wg.Go(func() {
			r, err := f.Open(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			n := open.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			runtime.Gosched()
			open.Add(-1)
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		})
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if p := int(peak.Load()); p < 1 || p > runtime.NumCPU() {
		t.Fatalf("%d host files open at once, want 1..%d", p, runtime.NumCPU())
	}
	if len(g.slots) != 0 {
		t.Fatalf("%d reader slots still held after every reader closed", len(g.slots))
	}
}

// TestGateOpensHostFilesBeneathTheirRoot swaps, after the walk saw
// regular files, one for a symlink to a file outside the tree, a
// directory on its path for a symlink to a directory outside, and one for
// a FIFO: each open fails, and no byte of the outside file is read.
func TestGateOpensHostFilesBeneathTheirRoot(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, p := range []string{"plain", "swapped", "fifo", "sub/inner"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("volume data "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "inner"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	local, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	defer g.close()
	root := g.wrap(virtualfs.NewStaticDirectory("", []fs.Entry{local})).(fs.Directory)
	files := map[string]fs.File{}
	var walk func(d fs.Directory)
	walk = func(d fs.Directory) {
		_ = fs.IterateEntries(ctx, d, func(_ context.Context, e fs.Entry) error {
			switch v := e.(type) {
			case fs.Directory:
				walk(v)
			case fs.File:
				files[v.Name()] = v
			}
			return nil
		})
	}
	walk(root)
	if len(files) != 4 {
		t.Fatalf("walk found %d files, want 4", len(files))
	}
	// The container acts between the walk and the reads.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(dir, "swapped")))
	must(os.Symlink(secret, filepath.Join(dir, "swapped")))
	must(os.RemoveAll(filepath.Join(dir, "sub")))
	must(os.Symlink(outside, filepath.Join(dir, "sub")))
	must(os.Remove(filepath.Join(dir, "fifo")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))

	read := func(name string) (string, error) {
		r, err := files[name].Open(ctx)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}
	if got, err := read("plain"); err != nil || got != "volume data plain" {
		t.Fatalf("plain: %q, %v", got, err)
	}
	for _, name := range []string{"swapped", "inner", "fifo"} {
		got, err := read(name)
		if err == nil || strings.Contains(got, "secret") {
			t.Errorf("%s: read %q, err %v: want an error and nothing read", name, got, err)
		}
	}
	if len(g.slots) != 0 {
		t.Fatalf("%d reader slots held after the failed opens", len(g.slots))
	}
}
