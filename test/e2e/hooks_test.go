package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHooks: pre hooks run before the capture, post hooks after it and
// always; a failing or hanging pre hook aborts cleanly, and so does a
// failed upload: containers keep running and no point is listed.
func TestHooks(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	start := func(name string, labels ...string) {
		args := []string{"run", "-d", "--name", name, "-v", name + "-data:/data"}
		for _, l := range labels {
			args = append(args, "--label", l)
		}
		e.d.Docker(t, append(args, "lifeboat-test/busybox:1", "sleep", "100000")...)
		t.Cleanup(func() { e.d.DockerErr("rm", "-f", name) })
	}
	posts := func(name string) int {
		out, _ := e.d.DockerErr("exec", name, "sh", "-c", "cat /tmp/post 2>/dev/null | wc -l")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	running := func(name string) {
		t.Helper()
		if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Fatalf("%s is %s after the backup", name, st)
		}
	}
	post := "lifeboat.hooks.post=echo post >> /tmp/post"

	t.Run("pre and post run around the capture", func(t *testing.T) {
		start("hk-ok", "lifeboat.hooks.pre=date +%s%N > /data/flushed; echo hello-from-pre", post)
		r := e.run([]string{"LIFEBOAT_LOG_LEVEL=info"}, "backup", "container/hk-ok", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "hello-from-pre") {
			t.Errorf("the hook's output is not in the job log: %s", r.stderr)
		}
		p := parseSummaries(t, r.stdout)[0]
		dst := t.TempDir() + "/r"
		e.ok("restore", p.ID, "--path", "volumes/hk-ok-data/flushed", "--target", dst)
		if posts("hk-ok") != 1 {
			t.Fatal("the post hook did not run")
		}
		running("hk-ok")
	})

	check := func(t *testing.T, name string, r result, want string) {
		t.Helper()
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("exit %d, stderr %q: want %q", r.code, r.stderr, want)
		}
		running(name)
		if posts(name) != 1 {
			t.Fatalf("post hook ran %d times, want once", posts(name))
		}
		for _, pt := range e.list(t) {
			if pt.Unit == "container/"+name {
				t.Fatalf("a failed backup left point %s", pt.ID)
			}
		}
	}

	t.Run("a failing pre hook aborts", func(t *testing.T) {
		start("hk-fail", "lifeboat.hooks.pre=echo cannot lock tables >&2; exit 3", post)
		check(t, "hk-fail", e.run(nil, "backup", "container/hk-fail"), "exited 3: cannot lock tables")
	})

	t.Run("a hanging pre hook is killed at its timeout", func(t *testing.T) {
		start("hk-hang", "lifeboat.hooks.pre=sleep 600", "lifeboat.hooks.timeout=2s", post)
		began := time.Now()
		check(t, "hk-hang", e.run(nil, "backup", "container/hk-hang"), "timed out after 2s")
		t.Logf("aborted after %v", time.Since(began).Round(time.Millisecond))
		if top := e.d.Docker(t, "top", "hk-hang"); strings.Contains(top, "sleep 600") {
			t.Fatalf("the hung hook still runs:\n%s", top)
		}
	})

	t.Run("a hook killed in PostgreSQL's container leaves the server up", func(t *testing.T) {
		// The postmaster is the container's PID 1: it reaps any orphan,
		// and one killed by a signal restarts the server as after a crash.
		// The hook's shell must reap its sleep before it dies itself.
		e.d.EnsureImages(t, "all")
		db := &dbBench{e: e, t: t}
		db.start("hk-pg", `pg_isready -q && psql -XAtq -c "select 1"`, "--label", "lifeboat.hooks.pre=sleep 600; echo after",
			"--label", "lifeboat.hooks.timeout=2s", "--label", post, "lifeboat-test/postgres:15")
		check(t, "hk-pg", e.run(nil, "backup", "container/hk-pg"), "timed out after 2s")
		if top := e.d.Docker(t, "top", "hk-pg"); strings.Contains(top, "sleep 600") {
			t.Fatalf("the hung hook still runs:\n%s", top)
		}
		db.sh("hk-pg", `psql -XAtq -c "select 1"`)
		if crash := pgRestarts(t, e.d, "hk-pg"); crash != "" {
			t.Fatalf("killing the hook restarted the server:\n%s", crash)
		}
	})

	t.Run("post hooks run after a failed upload", func(t *testing.T) {
		// The dump stream fails in the middle of the upload: busybox has no
		// redis-cli.
		start("hk-upload", "lifeboat.dump=redis", post)
		check(t, "hk-upload", e.run(nil, "backup", "container/hk-upload"), "redis-cli --rdb failed")
	})
}
