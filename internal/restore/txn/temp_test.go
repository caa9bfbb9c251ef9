package txn

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// TestReplayRemovesAbandonedLockedTemporaryFiles: a temporary entry that
// was locked before it had a name goes at the next replay once no one
// holds it; one still held stays.
func TestReplayRemovesAbandonedLockedTemporaryFiles(t *testing.T) {
	j := mustOpen(t)
	abandoned, pa, err := flock.CreateTemp(j.dir, "volume_a-00.json", []byte("{"))
	if err != nil {
		t.Fatal(err)
	}
	if err := abandoned.Close(); err != nil {
		t.Fatal(err)
	}
	held, ph, err := flock.CreateTemp(j.dir, "volume_b-00.json", []byte("{"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if !strings.HasSuffix(pa, flock.LockedTemp) {
		t.Fatalf("%s: this filesystem gave no O_TMPFILE, the case is not tested", pa)
	}
	noEngine := func(context.Context, string) (Engine, error) {
		t.Fatal("replay asked for an engine with no entry to settle")
		return nil, nil
	}
	if got, err := j.Replay(t.Context(), noEngine); err != nil || len(got) != 0 {
		t.Fatalf("replay = %v, %v", got, err)
	}
	des, err := os.ReadDir(j.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if !slices.Equal(names, []string{filepath.Base(ph)}) {
		t.Fatalf("journal holds %v, want only the held temporary file %s", names, filepath.Base(ph))
	}
}
