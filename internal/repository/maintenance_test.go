package repository

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMaintainAfterForget(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := snapshotDir(t, r, "volume/v", dir)
	snapshotDir(t, r, "volume/v", dir)
	if err := r.Delete(t.Context(), []string{p.ID}); err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		if res, err := r.Maintain(t.Context(), full); err != nil || res.Full != full || res.BlobsBefore == 0 || res.BytesAfter == 0 {
			t.Fatalf("maintenance (full %v): %+v %v", full, res, err)
		}
	}
	if ps, err := r.List(t.Context(), "volume/v"); err != nil || len(ps) != 1 {
		t.Fatalf("after maintenance: %d points, %v", len(ps), err)
	}
}
