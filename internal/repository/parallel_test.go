package repository

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/fs/virtualfs"
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
	if got, want := uploadParallelism(ctx, root), runtime.NumCPU()+5; got != want {
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
	if len(g) != 0 {
		t.Fatalf("%d reader slots still held after every reader closed", len(g))
	}
}
