package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPostgresDump: --consistency dump streams pg_dumpall --globals-only
// and a pg_dump per database out of the container while a writer commits
// a row per transaction; the dump restores into a fresh container and
// holds a gap-free prefix of the rows.
func TestPostgresDump(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "all")
	e.d.Docker(t, "run", "-d", "--name", "pgdb", "-e", "POSTGRES_DB=app", "lifeboat-test/postgres:15")
	waitFor(t, func() bool { _, err := e.d.DockerErr("exec", "pgdb", "pg_isready", "-q"); return err == nil })
	psql := func(ctr, db, sql string) string {
		return e.d.Docker(t, "exec", ctr, "psql", "-XAtq", "-d", db, "-c", sql)
	}
	waitFor(t, func() bool {
		_, err := e.d.DockerErr("exec", "pgdb", "psql", "-XAtq", "-d", "app", "-c", "select 1")
		return err == nil
	})
	psql("pgdb", "app", "CREATE TABLE t (id bigserial PRIMARY KEY, v text NOT NULL)")
	e.d.Docker(t, "exec", "-d", "pgdb", "sh", "-c", `while true; do psql -XAtq -d app -c "INSERT INTO t (v) VALUES (now()::text)"; done`)
	waitFor(t, func() bool { n, _ := strconv.Atoi(psql("pgdb", "app", "SELECT count(*) FROM t")); return n > 50 })

	e.ok("init")
	p := parseSummaries(t, e.ok("backup", "container/pgdb", "--consistency", "dump", "--json").stdout)[0]
	if p.Consistency != "dump" || *p.DowntimeMS != 0 {
		t.Fatalf("point %+v", p)
	}
	dir := filepath.Join(t.TempDir(), "dumps")
	e.ok("restore", p.ID, "--path", "dumps/pgdb", "--target", dir)
	for _, f := range []string{"globals.sql", "app.dump", "postgres.dump"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("dump %s: %v %v", f, st, err)
		}
	}

	e.d.Docker(t, "run", "-d", "--name", "pgfresh", "lifeboat-test/postgres:15")
	waitFor(t, func() bool {
		_, err := e.d.DockerErr("exec", "pgfresh", "psql", "-XAtq", "-c", "select 1")
		return err == nil
	})
	restore := exec.Command("docker", "-H", e.d.Host, "exec", "-i", "pgfresh", "pg_restore", "--create", "-d", "postgres")
	f, err := os.Open(filepath.Join(dir, "app.dump"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	restore.Stdin = f
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	got := strings.Split(psql("pgfresh", "app", "SELECT count(*), min(id), max(id) FROM t"), "|")
	n, _ := strconv.Atoi(got[0])
	lo, _ := strconv.Atoi(got[1])
	hi, _ := strconv.Atoi(got[2])
	if n < 50 || lo != 1 || hi != n {
		t.Fatalf("restored rows: count %d, ids %d..%d: not a gap-free prefix", n, lo, hi)
	}
	if out := psql("pgfresh", "app", "SELECT count(*) FROM t WHERE v IS NULL"); out != "0" {
		t.Fatalf("integrity: %s rows without value", out)
	}
	t.Logf("dump restored %d rows, gap-free", n)

	t.Run("a failing dump fails the backup", func(t *testing.T) {
		e.d.Docker(t, "run", "-d", "--name", "notadb", "--label", "lifeboat.dump=postgres", "lifeboat-test/busybox:1", "sleep", "100000")
		before := len(e.list(t))
		r := e.run(nil, "backup", "container/notadb", "--consistency", "dump")
		if r.code == 0 || !strings.Contains(r.stderr, "psql") {
			t.Fatalf("exit %d, stderr %q: want the tool's error", r.code, r.stderr)
		}
		if after := len(e.list(t)); after != before {
			t.Fatalf("a failed dump left a point: %d → %d", before, after)
		}
		// A dump that fails while it streams (not at planning) fails too.
		e.d.Docker(t, "run", "-d", "--name", "notredis", "--label", "lifeboat.dump=redis", "lifeboat-test/busybox:1", "sleep", "100000")
		r = e.run(nil, "backup", "container/notredis", "--consistency", "dump")
		if r.code == 0 || !strings.Contains(r.stderr, "redis-cli --rdb failed") {
			t.Fatalf("streaming failure: exit %d, stderr %q", r.code, r.stderr)
		}
		if after := len(e.list(t)); after != before {
			t.Fatalf("a failed dump left a point: %d → %d", before, after)
		}
		e.d.Docker(t, "rm", "-f", "notadb", "notredis")
	})
	e.d.Docker(t, "rm", "-f", "pgdb", "pgfresh")
}
