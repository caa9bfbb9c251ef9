package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestDatabasesComeBackWhole: every database of a server is dumped under
// a file of its own, whatever its name; Redis's files in a point hold the
// keys written just before the backup; and a MariaDB dump loaded into
// another server leaves that server's own root login working.
func TestDatabasesComeBackWhole(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "all")
	e.ok("init")
	db := &dbBench{e: e, t: t}
	// Each part fails on its own; e and db report to the part running.
	part := func(name string, f func(t *testing.T)) {
		t.Run(name, func(st *testing.T) {
			e.t, db.t = st, st
			defer func() { e.t, db.t = t, t }()
			f(st)
		})
	}

	part("postgres names", func(t *testing.T) {
		const pgReady = `pg_isready -q && psql -XAtq -c "select 1"`
		db.start("pgw", pgReady, "lifeboat-test/postgres:15")
		// Two names the old file naming put into one file, and names with
		// a space, a leading dot and non-ASCII letters.
		names := map[string]int{"a/b": 3, "a_b": 5, "my db": 2, ".hidden": 1, "Ünïcode": 4}
		for name, rows := range names {
			db.sh("pgw", `createdb "$1" && psql -XAtq -d "$1" -c "CREATE TABLE t AS SELECT generate_series(1, $2) AS id"`, name, strconv.Itoa(rows))
		}
		// A role of its own, and a superuser password the fresh server
		// does not share.
		db.sh("pgw", `psql -XAtq -c "CREATE ROLE owner LOGIN PASSWORD 'owner-pw'" -c "ALTER DATABASE \"a/b\" OWNER TO owner" -c "ALTER ROLE postgres PASSWORD 'src-pw'"`)
		p := db.backup("container/pgw")
		// The dumps' processes, helpers included, end as children of
		// their shell: one reaped by the postmaster (PID 1) after a
		// signal would have restarted the server.
		e.d.Docker(t, "exec", "pgw", "psql", "-XAtq", "-c", "select 1")
		if crash := pgRestarts(t, e.d, "pgw"); crash != "" {
			t.Fatalf("the server restarted during the dumps:\n%s", crash)
		}
		dir := filepath.Join(t.TempDir(), "dumps")
		e.ok("restore", p, "--path", "dumps/pgw", "--target", dir)
		got := listDir(t, dir)
		want := []string{"%2Ehidden.dump", "%C3%9Cn%C3%AFcode.dump", "a%2Fb.dump", "a_b.dump", "globals.sql", "my%20db.dump", "postgres.dump"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("dump files %q, want %q", got, want)
		}
		db.start("pgw-fresh", pgReady, "lifeboat-test/postgres:15")
		const superPW = `psql -XAtq -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'"`
		db.sh("pgw-fresh", `psql -XAtq -c "ALTER ROLE postgres PASSWORD 'fresh-pw'"`)
		before := db.sh("pgw-fresh", superPW)
		e.ok("restore", p, "--dump", "--container", "pgw", "--into", "pgw-fresh")
		if after := db.sh("pgw-fresh", superPW); after != before || after == "" {
			t.Fatalf("the fresh server's superuser password changed with the load")
		}
		if o := db.sh("pgw-fresh", `psql -XAtq -c "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'a/b'"`); o != "owner" {
			t.Fatalf("a/b is owned by %q in the fresh server, want the source's role owner", o)
		}
		for name, rows := range names {
			if n := db.sh("pgw-fresh", `psql -XAtq -d "$1" -c "SELECT count(*) FROM t"`, name); n != strconv.Itoa(rows) {
				t.Fatalf("database %q in the fresh server holds %s rows, want %d", name, n, rows)
			}
		}
	})

	part("failed dump", func(t *testing.T) {
		// The pre hook runs after the databases are listed: the dump of
		// the one it drops fails, and with it the backup.
		db.start("pgfail", `pg_isready -q && psql -XAtq -c "select 1"`, "--label", "lifeboat.hooks.pre=dropdb gone", "lifeboat-test/postgres:15")
		db.sh("pgfail", `createdb gone && createdb kept`)
		r := e.run(nil, "backup", "container/pgfail")
		if r.code == 0 || !strings.Contains(r.stderr, "pg_dump of database 'gone' failed") {
			t.Fatalf("a backup with a failed dump: exit %d, %q", r.code, r.stderr)
		}
		if out := e.ok("snapshots", "container/pgfail", "--json").stdout; strings.TrimSpace(out) != "[]" {
			t.Fatalf("a point was saved: %s", out)
		}
	})

	part("redis keys", func(t *testing.T) {
		// No save points: the server never saves on its own, so its files
		// hold the keys only if lifeboat has it save.
		const auth = `export REDISCLI_AUTH=$REDIS_PASSWORD; `
		db.start("rdw", auth+`redis-cli PING | grep -q PONG`, "-e", "REDIS_PASSWORD=rd-pw", "lifeboat-test/redis:7", "--requirepass", "rd-pw", "--save", "")
		db.sh("rdw", auth+`for i in $(seq 1 500); do echo "SET key$i v$i"; done | redis-cli >/dev/null`)
		for _, mode := range []string{"auto", "stop"} {
			db.sh("rdw", auth+`redis-cli SET last-`+mode+` written-just-before >/dev/null`)
			p := db.backup("container/rdw", "--consistency", mode)
			cp := "rdw-" + mode
			e.ok("restore", p, "--as", cp)
			t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", cp) })
			waitForLong(t, func() bool { _, err := db.shErr(cp, auth+`redis-cli PING | grep -q PONG`); return err == nil })
			if n, _ := strconv.Atoi(db.sh(cp, auth+`redis-cli DBSIZE`)); n < 501 {
				t.Fatalf("%s: the restored copy holds %d keys, want at least 501", mode, n)
			}
			if v := db.sh(cp, auth+`redis-cli GET last-`+mode); v != "written-just-before" {
				t.Fatalf("%s: the key written just before the backup is %q in the copy", mode, v)
			}
			t.Logf("%s: the whole-unit copy holds %s keys", mode, db.sh(cp, auth+`redis-cli DBSIZE`))
		}
	})

	part("mariadb users", func(t *testing.T) {
		mariaReady := func(pw string) string {
			return `MYSQL_PWD=` + pw + ` mariadb -uroot -e "select 1" || mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED BY '` + pw + `'"`
		}
		sql := func(ctr, pw, query string) string {
			return db.sh(ctr, `MYSQL_PWD=$1 mariadb -uroot -N -B -e "$2"`, pw, query)
		}
		db.start("mw", mariaReady("src-pw"), "-e", "MARIADB_ROOT_PASSWORD=src-pw", "lifeboat-test/mariadb:10.11")
		sql("mw", "src-pw", "CREATE DATABASE `a/b`; CREATE TABLE `a/b`.t (id int) ENGINE=InnoDB; INSERT INTO `a/b`.t VALUES (1),(2),(3); "+
			"CREATE DATABASE app; CREATE TABLE app.t (id int) ENGINE=InnoDB; INSERT INTO app.t VALUES (1); "+
			"CREATE USER appuser@'%' IDENTIFIED BY 'app-pw'; GRANT ALL ON app.* TO appuser@'%'")
		p := db.backup("container/mw")

		// Into a fresh server with its own root password: the databases
		// come, the users stay the server's.
		db.start("mw-fresh", mariaReady("fresh-pw"), "-e", "MARIADB_ROOT_PASSWORD=fresh-pw", "lifeboat-test/mariadb:10.11")
		e.ok("restore", p, "--dump", "--container", "mw", "--into", "mw-fresh")
		if n := sql("mw-fresh", "fresh-pw", "SELECT count(*) FROM `a/b`.t"); n != "3" {
			t.Fatalf("a/b holds %s rows in the fresh server", n)
		}
		if n := sql("mw-fresh", "fresh-pw", "SELECT count(*) FROM mysql.user WHERE user = 'appuser'"); n != "0" {
			t.Fatalf("the source's users were loaded without --with-users: %s", n)
		}
		// Its root password works, also once the server reads its grant
		// tables afresh at a restart, and lifeboat backs it up.
		e.d.Docker(t, "restart", "mw-fresh")
		waitForLong(t, func() bool {
			_, err := db.shErr("mw-fresh", `MYSQL_PWD=fresh-pw mariadb -uroot -e "select 1"`)
			return err == nil
		})
		db.backup("container/mw-fresh")

		// With --with-users, the source's users and root password come too.
		db.start("mw-users", mariaReady("other-pw"), "-e", "MARIADB_ROOT_PASSWORD=other-pw", "lifeboat-test/mariadb:10.11")
		e.ok("restore", p, "--dump", "--container", "mw", "--into", "mw-users", "--with-users")
		if n := sql("mw-users", "src-pw", "SELECT count(*) FROM app.t"); n != "1" {
			t.Fatalf("app holds %s rows with --with-users", n)
		}
		if _, err := db.shErr("mw-users", `MYSQL_PWD=app-pw mariadb -uappuser -e "SELECT count(*) FROM app.t"`); err != nil {
			t.Fatalf("the source's user cannot log in after --with-users: %v", err)
		}
	})
}

// dbBench runs the database containers of one test.
type dbBench struct {
	e *env
	t *testing.T
}

// start runs a container (docker run arguments, image and command) and
// waits until ready succeeds in it.
func (b *dbBench) start(name, ready string, args ...string) {
	b.t.Helper()
	b.e.d.Docker(b.t, append([]string{"run", "-d", "--name", name}, args...)...)
	b.t.Cleanup(func() { b.e.d.DockerErr("rm", "-f", "-v", name) })
	waitForLong(b.t, func() bool { _, err := b.shErr(name, ready); return err == nil })
}

// sh runs a script in a container with positional arguments.
func (b *dbBench) sh(ctr, script string, args ...string) string {
	b.t.Helper()
	out, err := b.shErr(ctr, script, args...)
	if err != nil {
		b.t.Fatalf("%s: %s: %v\n%s", ctr, script, err, out)
	}
	return out
}

func (b *dbBench) shErr(ctr, script string, args ...string) (string, error) {
	return b.e.d.DockerErr(append([]string{"exec", ctr, "sh", "-c", script, "sh"}, args...)...)
}

// pgRestarts is what a PostgreSQL container's log says of crash restarts
// ("" for none). The server logs on stderr, which docker logs gives on
// its own stderr. The log must show the server started, or this would
// pass on an empty log.
func pgRestarts(t *testing.T, d *testutil.Daemon, name string) string {
	t.Helper()
	out, err := exec.Command("docker", "-H", d.Host, "logs", name).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs %s: %v: %s", name, err, out)
	}
	if !strings.Contains(string(out), "database system is ready to accept connections") {
		t.Fatalf("the log of %s does not show the server started:\n%s", name, out)
	}
	var crash []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "terminated by signal") || strings.Contains(l, "reinitializing") {
			crash = append(crash, l)
		}
	}
	return strings.Join(crash, "\n")
}

// backup backs a unit up and returns its point's ID.
func (b *dbBench) backup(unit string, flags ...string) string {
	b.t.Helper()
	r := b.e.ok(append([]string{"backup", unit, "--json"}, flags...)...)
	return parseSummaries(b.t, r.stdout)[0].ID
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
