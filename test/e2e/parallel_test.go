package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// TestBackupAllParallel: backup --all backs units up a few at once. Two
// writers frozen at the same time each get a crash-consistent point, every
// volume comes back equal, --json has one summary per unit, and a unit that
// another job holds fails alone under --no-wait (exit 3, partial) while the
// others are backed up.
func TestBackupAllParallel(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	state := filepath.Join(t.TempDir(), "state")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	var want []string
	manifests := map[string][]string{}
	for i := range 6 {
		name := fmt.Sprintf("pv%d", i)
		mp := e.volume(name)
		for j := range 3 {
			if err := os.WriteFile(filepath.Join(mp, fmt.Sprintf("f%d", j)), []byte(strings.Repeat(name, j+1)), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		manifests[name] = testutil.Manifest(t, mp)
		want = append(want, "volume/"+name)
	}
	for _, w := range []string{"pw1", "pw2"} {
		e.runWriter(t, w, lockWriter, "-v", w+"_data:/data")
		want = append(want, "container/"+w)
	}
	slices.Sort(want)
	e.ok("init")

	r := e.ok("backup", "--all", "--json", "--parallel", "4")
	var got []string
	ids := map[string]string{}
	for _, s := range parseSummaries(t, r.stdout) {
		if s.MessageType != "summary" || s.ID == "" {
			t.Fatalf("backup --all --json: incomplete line %+v", s)
		}
		got = append(got, s.Unit)
		ids[s.Unit] = s.ID
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("one summary per unit (-want +got):\n%s", diff)
	}
	for _, w := range []string{"pw1", "pw2"} {
		if err := e.crashConsistentVolume(t, ids["container/"+w], w+"_data"); err != nil {
			t.Errorf("%s, frozen beside another unit: %v", w, err)
		}
	}
	for name, m := range manifests {
		dst := filepath.Join(t.TempDir(), name)
		e.ok("restore", ids["volume/"+name], "--volume", name, "--target", dst)
		if diff := cmp.Diff(m, testutil.Manifest(t, dst)); diff != "" {
			t.Errorf("volume %s differs (-want +got):\n%s", name, diff)
		}
	}

	l, err := unitlock.Acquire(t.Context(), filepath.Join(state, "locks"), "volume/pv3", unitlock.Options{Operation: unitlock.Backup})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	r = e.run(nil, "backup", "--all", "--json", "--parallel", "3", "--no-wait")
	if n := len(parseSummaries(t, r.stdout)); r.code != 3 || n != len(want)-1 || !strings.Contains(r.stderr, "volume/pv3") {
		t.Errorf("--all with volume/pv3 held: exit %d (want 3), %d summaries (want %d), stderr %q", r.code, n, len(want)-1, r.stderr)
	}
}
