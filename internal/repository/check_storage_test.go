package repository

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// flipAll damages every blob under dir/<prefix> in its middle.
func flipAll(t *testing.T, dir, prefix string) {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(dir, prefix), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Fatalf("no blobs under %s/%s", dir, prefix)
	}
}

// withDataCache turns on kopia's data and metadata cache in the
// connection config, as an S3 repository has it.
func withDataCache(t *testing.T, opts Options) {
	t.Helper()
	configs, _ := filepath.Glob(filepath.Join(opts.StateDir, "*", "repository.config"))
	if len(configs) != 1 {
		t.Fatalf("connection configs: %v", configs)
	}
	b, err := os.ReadFile(configs[0])
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["caching"] = map[string]any{"cacheDirectory": filepath.Join(filepath.Dir(configs[0]), "cache"), "maxCacheSize": 1 << 30}
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(configs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckReadsStorageNotCache: with a local cache (S3 repositories have
// one), contents read once come from the cache; a check must read them
// from storage, or damage done since goes unseen.
func TestCheckReadsStorageNotCache(t *testing.T) {
	opts := newTestOptions(t, "pw")
	mustInit(t, opts).Close(t.Context())
	withDataCache(t, opts)
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(t.Context())
	dir := t.TempDir()
	data := make([]byte, 1<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	p := snapshotDir(t, r, "volume/v", dir)
	if _, err := r.Check(t.Context(), CheckOptions{ReadData: 100}); err != nil { // fills the cache
		t.Fatalf("clean: %v", err)
	}
	flipAll(t, opts.Location, "p")
	if res, err := r.Check(t.Context(), CheckOptions{ReadData: 100}); err == nil {
		t.Logf("a check through the cached connection saw nothing: %d files read", res.ReadFiles)
	}
	res, err := Check(t.Context(), opts, CheckOptions{ReadData: 100})
	if !errors.Is(err, ErrCheckFailed) || len(res.Problems) == 0 || len(res.Problems[0].Points) == 0 || res.Problems[0].Points[0] != p.ID {
		t.Fatalf("damaged data packs went unnoticed: %+v %v", res, err)
	}
	if left, _ := filepath.Glob(filepath.Join(opts.StateDir, "check-*")); len(left) != 0 {
		t.Fatalf("the check's cache was left behind: %v", left)
	}
}
