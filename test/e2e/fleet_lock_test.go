package e2e

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFleetLockAcrossHosts stands two hosts up as two lifeboat processes
// with their own state dirs (so their flocks never meet) sharing one
// repository and one engine. The unit's lease in the repository keeps
// their jobs apart: the second waits, naming the first; pairs run at
// once never overlap (every pause point is one instant); and a holder
// SIGKILLed mid-backup blocks the other only until its lease expires.
func TestFleetLockAcrossHosts(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.runWriter(t, "fleetlk", lockWriter, "-v", "fleetlk_data:/data")
	t.Cleanup(func() {
		_, _ = e.d.DockerErr("rm", "-f", "fleetlk")
		_, _ = e.d.DockerErr("volume", "rm", "-f", "fleetlk_data")
	})
	e.ok("init")
	const ttl = 3 * time.Second
	host := func(name string) []string {
		dir := t.TempDir()
		return []string{"LIFEBOAT_STATE_DIR=" + filepath.Join(dir, "state"), "LIFEBOAT_CACHE_DIR=" + filepath.Join(dir, "cache"),
			"LIFEBOAT_TEST_LEASE_TTL=" + ttl.String()}
	}
	hostA, hostB, hostC := host("a"), host("b"), host("c")

	t.Run("pairs never overlap", func(t *testing.T) {
		const pairs = 5
		waited := 0
		var ids []string
		for i := range pairs {
			for _, r := range e.pair(t, i, hostA, hostB, "backup", "container/fleetlk", "--consistency", "pause", "--json") {
				if strings.Contains(r.stderr, `"action":"waiting"`) {
					waited++
				}
				for _, s := range parseSummaries(t, r.stdout) {
					ids = append(ids, s.ID)
				}
			}
		}
		for _, id := range ids {
			if err := e.crashConsistentVolume(t, id, "fleetlk_data"); err != nil {
				t.Errorf("point %s: %v", id[:12], err)
			}
		}
		t.Logf("%d pairs from two state dirs: %d points, all one instant; %d backups waited for the other host's lease", pairs, len(ids), waited)
		if len(ids) != 2*pairs || waited == 0 {
			t.Fatalf("points %d (want %d), waited %d (want at least 1)", len(ids), 2*pairs, waited)
		}
	})

	// A capture that changes nothing outside the repository runs while
	// its lease settles and confirms it only before its point is saved:
	// of two hosts that claim at one instant, the one outraced drops
	// its pass, waits for the other and starts again.
	t.Run("read-only claims at one instant", func(t *testing.T) {
		const pairs = 4
		var points, waited, outraced int
		for i := range pairs {
			// Each host stops 400 ms between seeing the lease free and
			// writing it: both claim.
			race := []string{"LIFEBOAT_TEST_FAILPOINT=lease-free", "LIFEBOAT_LOG_LEVEL=info"}
			a, b := append(slices.Clone(hostA), race...), append(slices.Clone(hostB), race...)
			for _, r := range e.pair(t, i, a, b, "backup", "volume/fleetlk_data", "--consistency", "none", "--json") {
				if strings.Contains(r.stderr, `"action":"waiting"`) {
					waited++
				}
				outraced += strings.Count(r.stderr, "claimed the unit at the same moment")
				points += len(parseSummaries(t, r.stdout))
			}
		}
		t.Logf("%d pairs of read-only backups from two state dirs: %d points, %d waited for the other's lease, %d claims outraced and started again", pairs, points, waited, outraced)
		if points != 2*pairs || waited == 0 || outraced == 0 {
			t.Fatalf("points %d (want %d), waited %d, outraced %d (want at least 1 each)", points, 2*pairs, waited, outraced)
		}
		if left := leaseFiles(e.repo); len(left) > 0 {
			t.Fatalf("leases left after the pairs: %v", left)
		}
	})

	t.Run("killed holder's lease expires", func(t *testing.T) {
		a, _, errA := e.start(append(hostA, "LIFEBOAT_TEST_FAILPOINT=saving"), "backup", "container/fleetlk", "--consistency", "none")
		waitForLong(t, func() bool { return strings.Contains(errA.String(), "failpoint saving") || a.ProcessState != nil })
		if !strings.Contains(errA.String(), "failpoint saving") {
			t.Fatalf("the holder did not reach its failpoint: %s", errA)
		}
		holder := fmt.Sprintf("the backup of container/fleetlk by pid %d since ", a.Process.Pid)
		r := e.run(hostC, "backup", "container/fleetlk", "--no-wait")
		if r.code != 11 || !strings.Contains(r.stderr, holder) {
			t.Fatalf("no-wait on another host while held: exit %d (want 11), stderr %q (want %q)", r.code, r.stderr, holder)
		}
		b, outB, errB := e.start(hostB, "backup", "container/fleetlk", "--json")
		told := fmt.Sprintf(`"action":"waiting","holder":{"unit":"container/fleetlk","operation":"backup","pid":%d`, a.Process.Pid)
		for i := 0; i < 100 && !strings.Contains(errB.String(), told); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(errB.String(), told) {
			t.Fatalf("the other host does not say it waits for %q: %s", told, errB)
		}
		if held := leaseFiles(e.repo); len(held) != 1 {
			t.Fatalf("lease records in the repository while held: %v", held)
		}
		time.Sleep(ttl) // renewed all along: still waiting
		if b.ProcessState != nil || outB.String() != "" {
			t.Fatalf("the other host did not wait for a renewed lease: %s %s", outB, errB)
		}
		killed := time.Now()
		if err := a.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = a.Wait()
		if err := b.Wait(); err != nil {
			t.Fatalf("backup after the holder died: %v: %s", err, errB)
		}
		took := time.Since(killed)
		t.Logf("holder SIGKILLed: the other host's backup ended %v later (lease TTL %v)", took.Round(time.Millisecond), ttl)
		if took > 4*ttl {
			t.Fatalf("took over %v after the kill, TTL %v", took, ttl)
		}
		if s := parseSummaries(t, outB.String()); len(s) != 1 {
			t.Fatalf("points after take-over: %+v", s)
		}
	})

	t.Run("no lease left behind", func(t *testing.T) {
		if left := leaseFiles(e.repo); len(left) > 0 {
			t.Fatalf("leases left in the repository after every job ended: %v", left)
		}
	})
}

// pairRun is what one command of a pair printed.
type pairRun struct{ stdout, stderr string }

// pair runs lifeboat with args from two hosts' environments at once
// and waits for both; either failing fails the test.
func (e *env) pair(t *testing.T, i int, hostA, hostB []string, args ...string) [2]pairRun {
	t.Helper()
	a, outA, errA := e.start(hostA, args...)
	b, outB, errB := e.start(hostB, args...)
	var out [2]pairRun
	for k, p := range []struct {
		cmd       interface{ Wait() error }
		out, errb *syncBuffer
	}{{a, outA, errA}, {b, outB, errB}} {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("pair %d: %v: %s", i, err, p.errb)
		}
		out[k] = pairRun{stdout: p.out.String(), stderr: p.errb.String()}
	}
	return out
}

// leaseFiles are the lease records in a filesystem repository.
func leaseFiles(repo string) []string {
	var out []string
	_ = filepath.WalkDir(repo, func(path string, _ fs.DirEntry, err error) error {
		if err == nil && strings.Contains(path, "lease-") {
			out = append(out, path)
		}
		return nil
	})
	return out
}
