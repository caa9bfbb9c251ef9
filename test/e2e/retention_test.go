package e2e

import (
	"strings"
	"testing"
)

// TestForgetByLabel: forget without --keep-… applies each unit's
// lifeboat.retention label, never drops a unit's newest point, and leaves
// units without a label whole.
func TestForgetByLabel(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	e.d.Docker(t, "run", "-d", "--name", "ret-kept", "--label", "lifeboat.retention=last=2", "lifeboat-test/busybox:1", "sleep", "100000")
	e.d.Docker(t, "run", "-d", "--name", "ret-all", "lifeboat-test/busybox:1", "sleep", "100000")
	defer e.d.Docker(t, "rm", "-f", "ret-kept", "ret-all")
	for range 3 {
		e.backup("container/ret-kept")
		e.backup("container/ret-all")
	}
	count := func(unit string) int {
		n := 0
		for _, p := range e.list(t) {
			if p.Unit == unit {
				n++
			}
		}
		return n
	}
	dry := e.ok("forget", "--dry-run")
	if !strings.Contains(dry.stdout, "would forget") || count("container/ret-kept") != 3 {
		t.Fatalf("dry run: %s", dry.stdout)
	}
	e.ok("forget")
	if a, b := count("container/ret-kept"), count("container/ret-all"); a != 2 || b != 3 {
		t.Fatalf("after forget: labelled unit has %d points (want 2), unlabelled %d (want 3)", a, b)
	}
}
