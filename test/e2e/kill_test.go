package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKilledBackupLeavesNothingFrozen kills lifeboat with SIGKILL at
// several points of pause and stop backups: the next lifeboat command
// resumes every container, no partial point is listed, and the older
// point still restores.
func TestKilledBackupLeavesNothingFrozen(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	state := filepath.Join(t.TempDir(), "state")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	e.d.Docker(t, "volume", "create", "killdata")
	e.d.Docker(t, "run", "-d", "--name", "killme", "-v", "killdata:/data", "lifeboat-test/busybox:1",
		"sh", "-c", "trap exit TERM; while true; do date >> /data/log; sleep 0.01; done")
	e.d.Docker(t, "run", "-d", "--name", "killme-peer", "--label", "lifeboat.consistency=pause", "lifeboat-test/busybox:1", "sleep", "100000")
	e.ok("init")
	good := e.backup("container/killme")
	for _, mode := range []string{"pause", "stop"} {
		for _, point := range []string{"journalled", "frozen", "captured"} {
			t.Run(mode+"/"+point, func(t *testing.T) {
				killAt(t, e, point, "backup", "container/killme", "--consistency", mode)
				st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "killme")
				if point != "journalled" && st == "running" {
					t.Fatalf("killed while %s, yet the container is running: the kill came too late to test anything", point)
				}
				// Any next command replays the journal.
				r := e.ok("snapshots", "--json")
				if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "killme"); st != "running" {
					t.Fatalf("after the next command the container is %s; stderr %q", st, r.stderr)
				}
				if point != "journalled" && !strings.Contains(r.stderr, "resumed killme") {
					t.Errorf("the replay did not say what it resumed: %q", r.stderr)
				}
				if n := len(e.list(t)); n != 1 {
					t.Fatalf("%d points listed after a killed backup, want only the good one", n)
				}
				if ents, _ := os.ReadDir(filepath.Join(state, "journal")); len(ents) != 0 {
					t.Errorf("journal not emptied: %v", ents)
				}
			})
		}
	}
	dst := filepath.Join(t.TempDir(), "r")
	e.ok("restore", good.ID, "--volume", "killdata", "--target", dst)
	if b, err := os.ReadFile(filepath.Join(dst, "log")); err != nil || len(b) == 0 {
		t.Fatalf("older point does not restore: %v", err)
	}
}

// killAt starts lifeboat with a failpoint and SIGKILLs it when it gets
// there; a run that ends without getting there fails the test.
func killAt(t *testing.T, e *env, point string, args ...string) {
	t.Helper()
	if !killIfReached(t, e, point, args...) {
		t.Fatalf("lifeboat ended before failpoint %s", point)
	}
}
