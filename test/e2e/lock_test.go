package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// lockWriter appends record N to a, then to b, as fast as it can: a point
// that holds the unit still at one instant has b's last record equal to
// a's, or one behind.
const lockWriter = `i=0; while :; do i=$((i+1)); echo $i >> /data/a; echo $i >> /data/b; done`

// writerCPU caps a busy writer at a quarter of a core, in 10 ms periods so
// it still writes every few milliseconds. Uncapped, it took a whole core
// for as long as its test ran: on a loaded two-core machine the test's
// backups slowed, so the files grew by more per backup, and each later
// backup and restore read more (TestLockOneJobPerUnit: 109 s alone, 775 s
// in CI, its files 179 MB each).
var writerCPU = []string{"--cpu-period", "10000", "--cpu-quota", "2500"}

// runWriter starts a busybox container that runs script, capped by
// writerCPU; opts are more of docker run's (volumes, labels).
func (e *env) runWriter(t *testing.T, name, script string, opts ...string) {
	t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, writerCPU...), opts...)
	e.d.Docker(t, append(args, "lifeboat-test/busybox:1", "sh", "-c", script)...)
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs lifeboat in the background with its stderr in a buffer.
func (e *env) start(extra []string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	e.t.Helper()
	cmd := exec.Command(lifeboatBin, args...)
	cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), extra...))
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out, errb
}

// records reads a file of lines 1..n and returns n, or why it is not one.
func records(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return 0, nil
	}
	for i, l := range strings.Split(s, "\n") {
		if l != strconv.Itoa(i+1) {
			return 0, fmt.Errorf("%s: line %d is %q: a gap or a torn record", filepath.Base(path), i+1, l)
		}
	}
	return strings.Count(s, "\n") + 1, nil
}

// crashConsistent restores the point's volume lockw_data into a directory
// and checks that a and b are gap-free and b is a's last record or one
// behind.
func (e *env) crashConsistent(t *testing.T, id string) error {
	return e.crashConsistentVolume(t, id, "lockw_data")
}

// crashConsistentVolume is crashConsistent for a lockWriter's volume.
func (e *env) crashConsistentVolume(t *testing.T, id, volume string) error {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id[:12])
	if r := e.run(nil, "restore", id, "--volume", volume, "--target", dir); r.code != 0 {
		return fmt.Errorf("restore: exit %d: %s", r.code, r.stderr)
	}
	a, err := records(filepath.Join(dir, "a"))
	if err != nil {
		return err
	}
	b, err := records(filepath.Join(dir, "b"))
	if err != nil {
		return err
	}
	if b != a && b != a-1 {
		return fmt.Errorf("a ends at record %d, b at %d: not one instant", a, b)
	}
	return nil
}

type lockJob struct {
	ID, State, Error, Point, Waiting string
}

// TestLockOneJobPerUnit runs two backups of one unit at once, twenty
// times, from two CLI processes and from a CLI beside serve: the second
// waits for the first, so every point labelled pause is crash-consistent.
// A held unit is refused with --no-wait (exit 11, naming the holder), and
// a serve job waiting for it shows so and can be cancelled.
func TestLockOneJobPerUnit(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	state := filepath.Join(t.TempDir(), "state")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	e.runWriter(t, "lockw", lockWriter, "-v", "lockw_data:/data")
	t.Cleanup(func() {
		_, _ = e.d.DockerErr("rm", "-f", "lockw")
		_, _ = e.d.DockerErr("volume", "rm", "-f", "lockw_data")
	})
	e.ok("init")
	first := e.backup("container/lockw")
	locks := filepath.Join(state, "locks")
	hold := func(t *testing.T, op string) *unitlock.Lock {
		t.Helper()
		l, err := unitlock.Acquire(t.Context(), locks, "container/lockw", unitlock.Options{Operation: op})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	holder := fmt.Sprintf("the backup of container/lockw by pid %d since ", os.Getpid())

	t.Run("no-wait refuses naming the holder", func(t *testing.T) {
		l := hold(t, unitlock.Backup)
		defer l.Release()
		for _, args := range [][]string{
			{"backup", "container/lockw", "--no-wait"},
			{"restore", first.ID, "--volume", "lockw_data", "--as", "lockw_copy", "--no-wait"},
		} {
			r := e.run(nil, args...)
			if r.code != 11 || !strings.Contains(r.stderr, holder) {
				t.Errorf("%s while held: exit %d (want 11), stderr %q (want %q)", args[0], r.code, r.stderr, holder)
			}
		}
		if _, err := e.d.DockerErr("volume", "inspect", "lockw_copy"); err == nil {
			t.Error("a refused restore created its volume")
		}
	})

	t.Run("waits with a message", func(t *testing.T) {
		l := hold(t, unitlock.Backup)
		defer l.Release()
		cmd, out, errb := e.start(nil, "backup", "container/lockw")
		waitFor(t, func() bool { return strings.Contains(errb.String(), "lifeboat: waiting for "+holder) })
		time.Sleep(300 * time.Millisecond)
		if cmd.ProcessState != nil || out.String() != "" {
			t.Fatalf("the backup did not wait: %s", out)
		}
		_ = l.Release()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("backup after the wait: %v: %s", err, errb)
		}
	})

	t.Run("a pause it did not make is not labelled pause", func(t *testing.T) {
		e.d.Pause(t, "lockw")
		r := e.run(nil, "backup", "container/lockw", "--consistency", "pause", "--json")
		e.d.Docker(t, "unpause", "lockw")
		s := parseSummaries(t, r.stdout)
		if r.code != 0 || len(s) != 1 || s[0].Consistency != "none" || !strings.Contains(r.stderr, "not frozen by this backup") {
			t.Fatalf("backup of a container paused by someone else: exit %d, %+v, stderr %q", r.code, s, r.stderr)
		}
	})

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("lock-test-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	if err := os.WriteFile(cfg, []byte("concurrency: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := e.serve(t, freePort(t), tokenFile, "LIFEBOAT_CONFIG="+cfg)
	submit := func(t *testing.T) string {
		t.Helper()
		var j lockJob
		if code := srv.api("POST", "/api/v1/jobs", map[string]string{"kind": "backup", "unit": "container/lockw"}, &j); code/100 != 2 || j.ID == "" {
			t.Fatalf("submit a backup job: %d %+v", code, j)
		}
		return j.ID
	}

	t.Run("serve job waits, cancellable", func(t *testing.T) {
		l := hold(t, unitlock.Backup)
		defer l.Release()
		id := submit(t)
		var j lockJob
		waitFor(t, func() bool { srv.api("GET", "/api/v1/jobs/"+id, nil, &j); return j.Waiting != "" })
		if j.State != "running" || !strings.Contains(j.Waiting, holder) {
			t.Fatalf("waiting job: %+v", j)
		}
		if code := srv.api("POST", "/api/v1/jobs/"+id+"/cancel", nil, nil); code/100 != 2 {
			t.Fatalf("cancel: %d", code)
		}
		if got := srv.waitJob(id, 10*time.Second); got.State != "cancelled" {
			t.Fatalf("cancelled while waiting: %+v", got)
		}
	})

	// A backup queued behind another records its wait as a phase apart:
	// its duration is its own work, or a queued backup would be judged slow.
	t.Run("a wait is its own phase, not in the duration", func(t *testing.T) {
		l := hold(t, unitlock.Backup)
		began := time.Now()
		cmd, out, errb := e.start(nil, "backup", "container/lockw", "--consistency", "none", "--json")
		time.Sleep(3 * time.Second)
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("backup: %v: %s", err, errb)
		}
		elapsed := time.Since(began).Milliseconds()
		var p summary
		if err := jsonUnmarshal(out.String(), &p); err != nil {
			t.Fatal(err)
		}
		wait := p.PhasesMS["wait"]
		t.Logf("queued backup: wait %d ms, duration %d ms, %d ms in all, phases %v", wait, p.DurationMS, elapsed, p.PhasesMS)
		if wait < 2000 {
			t.Errorf("wait phase %d ms, want the ~3 s the lock was held", wait)
		}
		if p.DurationMS <= 0 || p.DurationMS+wait > elapsed+10 {
			t.Errorf("duration %d ms with a wait of %d ms, in %d ms in all: the wait is counted in the duration", p.DurationMS, wait, elapsed)
		}
		if _, ok := p.PhasesMS["open"]; !ok {
			t.Errorf("no open phase: %v", p.PhasesMS)
		}
	})

	// Twenty pairs: 14 of two CLI processes, 6 of a CLI beside serve.
	const pairs, cliPairs = 20, 14
	waited := 0
	cacheA, cacheB := t.TempDir(), t.TempDir()
	for i := range pairs {
		cmd, _, errb := e.start([]string{"LIFEBOAT_CACHE_DIR=" + cacheA}, "backup", "container/lockw", "--consistency", "pause", "--json")
		var other func() error
		if i < cliPairs {
			c2, _, errb2 := e.start([]string{"LIFEBOAT_CACHE_DIR=" + cacheB}, "backup", "container/lockw", "--consistency", "pause", "--json")
			other = func() error {
				if err := c2.Wait(); err != nil {
					return fmt.Errorf("%v: %s", err, errb2)
				}
				if strings.Contains(errb2.String(), `"action":"waiting"`) {
					waited++
				}
				return nil
			}
		} else {
			id := submit(t)
			other = func() error {
				if j := srv.waitJob(id, 2*time.Minute); j.State != "succeeded" {
					return fmt.Errorf("serve job %s: %s", j.State, j.Error)
				}
				return nil
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pair %d: CLI backup: %v: %s", i, err, errb)
		}
		if strings.Contains(errb.String(), `"action":"waiting"`) {
			waited++
		}
		if err := other(); err != nil {
			t.Fatalf("pair %d: the other backup: %v", i, err)
		}
	}

	var points []summary
	if err := jsonUnmarshal(e.ok("snapshots", "container/lockw", "--json").stdout, &points); err != nil {
		t.Fatal(err)
	}
	paused, consistent := 0, 0
	for _, p := range points {
		if p.Consistency != "pause" {
			continue
		}
		paused++
		if err := e.crashConsistent(t, p.ID); err != nil {
			t.Errorf("point %s labelled pause, downtime %d ms: %v", p.ID[:12], *p.DowntimeMS, err)
			continue
		}
		consistent++
	}
	t.Logf("lock: %d/%d pause points crash-consistent (%d pairs of concurrent backups, %d CLI processes saw a wait message)", consistent, paused, pairs, waited)
	if paused < 2*pairs {
		t.Errorf("%d points labelled pause, want at least %d", paused, 2*pairs)
	}
	if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "lockw"); st != "running" {
		t.Errorf("the writer is %s after the backups", st)
	}
}
