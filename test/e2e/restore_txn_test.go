package e2e

import (
	"bufio"
	"cmp"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restorePoints are the restore journal's failpoints, in the order a
// restore passes them; each kind of restore passes some of them.
var restorePoints = []string{
	"restore-started", "restore-journalled", "restore-renamed", "restore-stopped",
	"restore-network-made", "restore-volume-made", "restore-dir-made", "restore-extracted",
	"restore-swap-half", "restore-swapped", "restore-container-made", "restore-committed",
}

// killIfReached runs lifeboat with a failpoint and SIGKILLs it there. It
// reports false when lifeboat finished without passing the failpoint (that
// kind of restore has no such step).
func killIfReached(t *testing.T, e *env, point string, args ...string) bool {
	t.Helper()
	cmd, reached, tail := runToFailpoint(t, e, point, 90*time.Second, args...)
	if !reached {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("restore without reaching %s failed: %v\n%s", point, err, strings.Join(tail, "\n"))
		}
		return false
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	return true
}

// runToFailpoint starts lifeboat with a failpoint armed and returns once
// it printed that it is there (reached) or ended without (its stderr so
// far in tail); after the failpoint its stderr is drained so it never
// blocks. A lifeboat doing neither within limit fails the test.
func runToFailpoint(t *testing.T, e *env, point string, limit time.Duration, args ...string) (cmd *exec.Cmd, reached bool, tail []string) {
	t.Helper()
	cmd = exec.Command(lifeboatBin, args...)
	cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), "LIFEBOAT_TEST_FAILPOINT="+point))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan bool, 1)
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if sc.Text() == "failpoint "+point {
				done <- true
				drain(sc)
				return
			}
			lines = append(lines, sc.Text())
		}
		done <- false
	}()
	select {
	case reached = <-done:
		return cmd, reached, lines
	case <-time.After(limit):
		cmd.Process.Kill()
		t.Fatalf("failpoint %s: lifeboat neither got there nor ended in %s", point, limit)
	}
	return cmd, false, nil
}

// TestKilledRestoreRollsBackOrFinishes kills restores of every kind at
// each step of the restore journal; the next lifeboat command must leave
// either the state before the restore or the restore complete, and
// nothing in between: no staging directories, no containers renamed
// aside, no journal entry.
func TestKilledRestoreRollsBackOrFinishes(t *testing.T) {
	e := newEnvOwnDaemon(t) // it counts every volume and container there
	e.d.EnsureImages(t, "busybox")
	state := ""
	for _, kv := range e.vars {
		if v, ok := strings.CutPrefix(kv, "LIFEBOAT_STATE_DIR="); ok {
			state = v
		}
	}
	e.d.Docker(t, "volume", "create", "rtvol")
	e.d.Docker(t, "run", "--rm", "-v", "rtvol:/d", "lifeboat-test/busybox:1", "sh", "-c",
		"for i in $(seq 1 40); do mkdir -p /d/dir$i/sub; seq 1 500 > /d/dir$i/sub/n; done; echo v1 > /d/ver")
	// --network none: an engine run with --bridge=none, as the tests' are,
	// cannot rename a container on the default network once it restarted
	// ("sandbox … not found"), which an in-place restore must do.
	e.d.Docker(t, "run", "-d", "--name", "rtc", "--network", "none", "-v", "rtvol:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "rtc", "rtcopy"); e.d.DockerErr("volume", "rm", "rtold") })
	e.ok("init")
	point := parseSummaries(t, e.ok("backup", "container/rtc", "--consistency", "pause", "--json").stdout)[0].ID
	e.d.Docker(t, "exec", "rtc", "sh", "-c", "echo v2 > /data/ver")

	leftovers := func(t *testing.T) {
		t.Helper()
		if names := e.d.Docker(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, "lifeboat") {
			t.Errorf("containers renamed aside are left: %s", names)
		}
		var staged []string
		filepath.WalkDir(filepath.Join(e.d.DataRoot, "volumes"), func(p string, de os.DirEntry, err error) error {
			if err == nil && strings.Contains(de.Name(), ".lifeboat-") {
				staged = append(staged, p)
			}
			if err == nil && de.IsDir() && strings.Count(strings.TrimPrefix(p, e.d.DataRoot), "/") > 3 {
				return filepath.SkipDir // staging sits beside _data, not inside it
			}
			return nil
		})
		if len(staged) > 0 {
			t.Errorf("staging left beside volumes: %v", staged)
		}
		des, _ := os.ReadDir(filepath.Join(state, "restores"))
		for _, de := range des {
			if strings.HasSuffix(de.Name(), ".json") {
				t.Errorf("restore journal entry left: %s", de.Name())
			}
		}
	}
	// settle runs the next command, which replays the restore journal.
	settle := func(t *testing.T) { t.Helper(); e.ok("snapshots") }
	ver := func(t *testing.T, volume string) string {
		t.Helper()
		return e.d.Docker(t, "run", "--rm", "-v", volume+":/d:ro", "lifeboat-test/busybox:1", "sh", "-c",
			"cat /d/ver; test $(cat /d/dir*/sub/n 2>/dev/null | wc -l) -eq 20000 && echo whole; true")
	}

	type kind struct {
		name string
		min  int // failpoints it must pass: a new volume has no swap
		args func(i int) []string
		// check says "rolled back" or "completed", or fails the test.
		check func(t *testing.T, i int) string
	}
	volumes := func() []string {
		out, _ := e.d.DockerErr("volume", "ls", "-q")
		return strings.Fields(out)
	}
	baseline := map[string]bool{"rtold": true}
	for _, v := range volumes() {
		baseline[v] = true
	}
	parent := t.TempDir()
	kinds := []kind{{
		name: "target",
		args: func(i int) []string {
			dst := filepath.Join(parent, "t"+strconv.Itoa(i))
			os.MkdirAll(dst, 0o755)
			os.WriteFile(filepath.Join(dst, "old.txt"), []byte("old"), 0o644)
			return []string{"restore", point, "--volume", "rtvol", "--target", dst, "--force"}
		},
		check: func(t *testing.T, i int) string {
			dst := filepath.Join(parent, "t"+strconv.Itoa(i))
			old, oerr := os.ReadFile(filepath.Join(dst, "old.txt"))
			v, verr := os.ReadFile(filepath.Join(dst, "ver"))
			des, _ := os.ReadDir(parent)
			for _, de := range des {
				if strings.Contains(de.Name(), ".lifeboat-") {
					t.Errorf("staging left beside the target: %s", de.Name())
				}
			}
			switch {
			case oerr == nil && string(old) == "old" && verr != nil:
				return "rolled back"
			case oerr != nil && string(v) == "v1\n":
				if n, err := os.ReadFile(filepath.Join(dst, "dir40", "sub", "n")); err != nil || len(n) == 0 {
					t.Fatalf("completed restore is partial: %v", err)
				}
				return "completed"
			}
			t.Fatalf("target half restored: old.txt %q (%v), ver %q (%v)", old, oerr, v, verr)
			return ""
		},
	}, {
		name: "volume --as", min: 4,
		args: func(i int) []string { return []string{"restore", point, "--volume", "rtvol", "--as", "rtnew"} },
		check: func(t *testing.T, i int) string {
			defer e.d.DockerErr("volume", "rm", "rtnew")
			if out, _ := e.d.DockerErr("volume", "inspect", "rtnew"); !strings.Contains(out, "rtnew") {
				return "rolled back"
			}
			if got := ver(t, "rtnew"); got != "v1\nwhole" {
				t.Fatalf("volume rtnew exists but is %q", got)
			}
			return "completed"
		},
	}, {
		name: "volume --force",
		args: func(i int) []string {
			e.d.DockerErr("volume", "rm", "rtold")
			e.d.Docker(t, "volume", "create", "rtold")
			e.d.Docker(t, "run", "--rm", "-v", "rtold:/d", "lifeboat-test/busybox:1", "sh", "-c", "echo old > /d/ver")
			return []string{"restore", point, "--volume", "rtvol", "--as", "rtold", "--force"}
		},
		check: func(t *testing.T, i int) string {
			switch got := ver(t, "rtold"); got {
			case "old":
				return "rolled back"
			case "v1\nwhole":
				return "completed"
			default:
				t.Fatalf("volume rtold half restored: %q", got)
			}
			return ""
		},
	}, {
		name: "unit --as",
		args: func(i int) []string { return []string{"restore", point, "--as", "rtcopy"} },
		check: func(t *testing.T, i int) string {
			defer func() {
				e.d.DockerErr("rm", "-f", "rtcopy")
				for _, v := range volumes() {
					if !baseline[v] {
						e.d.DockerErr("volume", "rm", v)
					}
				}
			}()
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "rtc"); st != "running" {
				t.Fatalf("the original is %s after a killed copy", st)
			}
			names := e.d.Docker(t, "ps", "-a", "--format", "{{.Names}}")
			if !strings.Contains(names, "rtcopy") {
				for _, v := range volumes() {
					if !baseline[v] {
						t.Fatalf("rolled back copy left volume %s", v)
					}
				}
				return "rolled back"
			}
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "rtcopy"); st != "running" {
				t.Fatalf("completed copy is %s", st)
			}
			if got := e.d.Docker(t, "exec", "rtcopy", "cat", "/data/ver"); got != "v1" {
				t.Fatalf("completed copy holds %q", got)
			}
			return "completed"
		},
	}}
	inPlaceID := ""
	kinds = append(kinds, kind{
		name: "in place --force",
		args: func(i int) []string {
			e.d.Docker(t, "exec", "rtc", "sh", "-c", "echo v2 > /data/ver")
			inPlaceID = e.d.Docker(t, "inspect", "-f", "{{.Id}}", "rtc")
			return []string{"restore", point, "--force"}
		},
		check: func(t *testing.T, i int) string {
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "rtc"); st != "running" {
				t.Fatalf("rtc is %s after a killed in-place restore", st)
			}
			id := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "rtc")
			got := e.d.Docker(t, "exec", "rtc", "cat", "/data/ver")
			switch {
			case id == inPlaceID && got == "v2":
				return "rolled back"
			case id != inPlaceID && got == "v1":
				return "completed"
			}
			t.Fatalf("in-place restore half done: same container %v, ver %q", id == inPlaceID, got)
			return ""
		},
	})

	total, settled := 0, 0
	for _, k := range kinds {
		if os.Getenv("LB_KIND") != "" && os.Getenv("LB_KIND") != k.name {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			reached, counts := 0, map[string]int{}
			for i, fp := range restorePoints {
				args := k.args(i)
				if !killIfReached(t, e, fp, args...) {
					k.check(t, i) // the restore ran through: it must be complete
					settle(t)
					continue
				}
				reached++
				settle(t)
				outcome := k.check(t, i)
				leftovers(t)
				if t.Failed() {
					t.Fatalf("after a kill at %s", fp)
				}
				counts[outcome]++
				t.Logf("killed at %s: %s", fp, outcome)
			}
			if want := cmp.Or(k.min, 5); reached < want {
				t.Errorf("only %d failpoints reached, want at least %d", reached, want)
			}
			total += reached
			settled += counts["rolled back"] + counts["completed"]
			t.Logf("restore kills (%s): %d/%d settled (%d rolled back, %d completed)", k.name, counts["rolled back"]+counts["completed"], reached, counts["rolled back"], counts["completed"])
		})
	}
	t.Logf("restore kills: %d/%d rolled back or completed, nothing left behind", settled, total)
}
