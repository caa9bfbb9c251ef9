package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/manifest"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

func judgedSnapshot(t *testing.T, r *Repository, dir string, reasons []string) (Point, Point) {
	t.Helper()
	var judged Point
	p, err := r.Snapshot(t.Context(), SnapshotOptions{Unit: "volume/v", Kind: "volume", Trigger: "manual", Progress: progress.New(),
		Judge: func(p Point) []string { judged = p; return reasons }},
		func(ctx context.Context, up Uploader) (Labels, error) {
			data, err := source.Local(dir, "v")
			if err != nil {
				return Labels{}, err
			}
			now := time.Now()
			root := source.Dir("", now, source.Dir("volumes", now, data))
			return Labels{Consistency: "none", Counted: true, Files: 1, Bytes: 5, Dumps: map[string]int64{"db/app.sql": 42}}, up.Upload(ctx, root)
		})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return p, judged
}

func TestSuspectPointAndAck(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, judged := judgedSnapshot(t, r, dir, nil)
	if judged.AddedBytes <= 0 || judged.Dumps["db/app.sql"] != 42 || judged.Files != 1 {
		t.Fatalf("judge saw %+v: want the stored bytes, the dump sizes and the counts", judged)
	}
	if good.Suspect || good.AddedBytes != judged.AddedBytes {
		t.Fatalf("good point %+v", good)
	}
	if _, err := r.Ack(t.Context(), good.ID); !errors.Is(err, ErrNotSuspect) {
		t.Fatalf("ack of a good point: %v, want ErrNotSuspect", err)
	}
	bad, _ := judgedSnapshot(t, r, dir, []string{"files shrank 90%", "dump empty"})
	if !bad.Suspect || !slices.Equal(bad.Anomalies, []string{"files shrank 90%", "dump empty"}) || bad.Acked || bad.Good() {
		t.Fatalf("suspect point %+v", bad)
	}
	listed, err := r.List(t.Context(), "volume/v")
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].ID != bad.ID || !listed[0].Suspect || listed[1].Suspect || len(listed[0].Anomalies) != 2 {
		t.Fatalf("listing %+v", listed)
	}
	res, err := r.Ack(t.Context(), bad.ID[:8])
	if err != nil || !res.Acked || res.Already {
		t.Fatalf("ack: %+v %v", res, err)
	}
	again, err := r.Ack(t.Context(), "volume/v@latest")
	if err != nil || !again.Already {
		t.Fatalf("second ack: %+v %v", again, err)
	}
	p, err := r.Resolve(t.Context(), bad.ID)
	if err != nil || !p.Acked || !p.Good() {
		t.Fatalf("resolved after ack: %+v %v", p, err)
	}
	if err := r.Delete(t.Context(), []string{bad.ID}); err != nil {
		t.Fatal(err)
	}
	left, err := r.rep.FindManifests(t.Context(), map[string]string{manifest.TypeLabelKey: ackType})
	if err != nil || len(left) != 0 {
		t.Fatalf("acknowledgements left after the point was forgotten: %d %v", len(left), err)
	}
}
