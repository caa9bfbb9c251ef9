package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestMainJobDefaultRepository runs the README's main job, `lifeboat backup
// --all`, on the embedded default: no repository variables at all. It runs
// in a private mount namespace with tmpfs over /var/lib and /var/cache, so
// the real default paths are used without touching the host's.
func TestMainJobDefaultRepository(t *testing.T) {
	e := newEnvOwnDaemon(t)
	for _, name := range []string{"app-data", "app-logs", "empty"} {
		mp := e.volume(name)
		if name != "empty" {
			if err := os.WriteFile(filepath.Join(mp, name+".txt"), []byte("content of "+name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	existed := map[string]bool{}
	for _, p := range []string{"/var/lib/lifeboat", "/var/cache/lifeboat"} {
		_, err := os.Stat(p)
		existed[p] = err == nil
	}
	restoreDir := t.TempDir()
	script := fmt.Sprintf(`set -e
mount -t tmpfs lbtest-lib /var/lib
mount -t tmpfs lbtest-cache /var/cache
%[1]s backup --all >out1 2>err1
%[1]s backup --all --json >out2 2>err2
%[1]s snapshots --json >snaps
%[1]s restore volume/app-data@latest --volume app-data --target %[2]s/restored
stat -c %%a /var/lib/lifeboat/repository.password >pwmode
`, lifeboatBin, restoreDir)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Dir = restoreDir
	cmd.Env = mergeEnv(os.Environ(), []string{"DOCKER_HOST=" + e.d.Host})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("main job: %v\n%s\n%s", err, out, readAll(restoreDir, "err1", "err2"))
	}
	read := func(name string) string { b, _ := os.ReadFile(filepath.Join(restoreDir, name)); return string(b) }
	if err1 := read("err1"); !strings.Contains(err1, "created repository at /var/lib/lifeboat/repository") || !strings.Contains(err1, "Keep a copy") {
		t.Errorf("first run must announce the new repository and its password file once: %q", err1)
	}
	if err2 := read("err2"); strings.Contains(err2, "created repository") {
		t.Errorf("second run announced again: %q", err2)
	}
	if m := strings.TrimSpace(read("pwmode")); m != "600" {
		t.Errorf("password file mode %s, want 600", m)
	}
	sums := parseSummaries(t, read("out2"))
	if len(sums) != 3 {
		t.Errorf("backup --all --json: %d summaries, want 3: %q", len(sums), read("out2"))
	}
	for _, s := range sums {
		// Counts are the volume's own files, not lifeboat's manifest and sidecar.
		if s.Unit == "volume/app-data" && (s.Files != 1 || s.Bytes != int64(len("content of app-data"))) {
			t.Errorf("app-data counted %d files, %d bytes; want 1 and %d", s.Files, s.Bytes, len("content of app-data"))
		}
		if s.Unit == "volume/empty" && (s.Files != 0 || s.Bytes != 0) {
			t.Errorf("empty volume counted %d files, %d bytes", s.Files, s.Bytes)
		}
	}
	var ps []summary
	if err := json.Unmarshal([]byte(read("snaps")), &ps); err != nil || len(ps) != 6 {
		t.Fatalf("snapshots: %v, %d points: %q", err, len(ps), read("snaps"))
	}
	if b := read("restored/app-data.txt"); b != "content of app-data" {
		t.Errorf("restored file = %q", b)
	}
	for _, p := range []string{"/var/lib/lifeboat", "/var/cache/lifeboat"} {
		if _, err := os.Stat(p); err == nil && !existed[p] {
			t.Errorf("%s appeared on the host: the test leaked out of its mount namespace", p)
		}
	}
}

func readAll(dir string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		c, _ := os.ReadFile(filepath.Join(dir, n))
		fmt.Fprintf(&b, "%s: %s\n", n, c)
	}
	return b.String()
}

// TestConcurrentProcesses starts two lifeboat processes on one repository
// at once, on a fresh machine state each: both must succeed.
func TestConcurrentProcesses(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"c1", "c2"} {
		e.benchkit("make", filepath.Join(e.volume(n), "d"), "8M", "3")
	}
	e.ok("init")
	var wg sync.WaitGroup
	res := make([]result, 4)
	for i := range res {
		extra := []string{"LIFEBOAT_CACHE_DIR=" + t.TempDir()}
		unit := []string{"volume/c1", "volume/c2"}[i%2]
		wg.Go(func() { res[i] = e.run(extra, "backup", unit, "--json") })
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Errorf("process %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if n := len(e.list(t)); n != 4 {
		t.Errorf("%d points, want 4", n)
	}
}

// TestProgressQuietWhenPiped: with stderr not a terminal nothing but errors
// may appear there; on a terminal a progress line is drawn.
func TestProgressQuietWhenPiped(t *testing.T) {
	e := newEnv(t)
	e.benchkit("make", filepath.Join(e.volume("big"), "d"), "200M", "5")
	e.ok("init")
	if r := e.ok("backup", "volume/big"); r.stderr != "" {
		t.Errorf("piped backup wrote to stderr: %q", r.stderr)
	}
	// script(1) gives lifeboat a pseudo-terminal.
	cmd := exec.Command("script", "-qec", lifeboatBin+" restore volume/big@latest --volume big --target "+filepath.Join(t.TempDir(), "r"), "/dev/null")
	cmd.Env = mergeEnv(os.Environ(), e.vars)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restore on a terminal: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "files") || !strings.Contains(s, "/s") || !strings.Contains(s, "\x1b[K") {
		t.Errorf("no progress line on a terminal: %q", firstLines(s, 5))
	}
}
