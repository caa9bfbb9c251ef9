package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// drillProject is PostgreSQL, MariaDB and a web server whose pages come
// from a bind mount, with a published port the sandbox must not take.
const drillProject = `version: "2.4"
services:
  pg:
    image: lifeboat-test/postgres:15
    volumes: ["pgdata:/var/lib/postgresql/data"]
    healthcheck: {test: ["CMD-SHELL", "pg_isready -q && psql -XAtq -c 'select 1' postgres"], interval: 1s, retries: 90}
    networks: [backend]
    stop_signal: SIGINT
  maria:
    image: lifeboat-test/mariadb:10.11
    volumes: ["mariadata:/var/lib/mysql"]
    healthcheck: {test: ["CMD", "mariadb", "-uroot", "-e", "select 1"], interval: 1s, retries: 90}
    networks: [backend]
  web:
    image: lifeboat-test/busybox:1
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    volumes: ["./www:/www:ro"]
    ports: ["18080:8080"]
    labels: {lifeboat.drill.http: "8080/", lifeboat.drill.probe: "test -s /www/index.html"}
    networks: [backend]
    depends_on: {pg: {condition: service_healthy}, maria: {condition: service_healthy}}
    stop_signal: SIGKILL
volumes:
  pgdata: {}
  mariadata: {}
networks:
  backend: {}
`

// engineObjects counts what the engine holds, for leftovers.
type engineObjects struct{ containers, networks, volumes int }

func countObjects(t *testing.T, e *env) engineObjects {
	t.Helper()
	n := func(args ...string) int { return len(strings.Fields(e.d.Docker(t, args...))) }
	return engineObjects{n("ps", "-aq"), n("network", "ls", "-q"), n("volume", "ls", "-q")}
}

// startedState is what the drill must not change in an original
// container: its ID, that it runs, unpaused, since the same start.
func startedState(t *testing.T, e *env, name string) string {
	t.Helper()
	return e.d.Docker(t, "inspect", "-f", "{{.Id}} {{.State.Running}} {{.State.Paused}} {{.State.StartedAt}}", name)
}

func TestDrillProject(t *testing.T) {
	e := newEnvOwnDaemon(t) // it counts every container, network and volume
	e.d.EnsureImages(t, "all")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("<h1>shop</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(drillProject), 0o644); err != nil {
		t.Fatal(err)
	}
	const proj = "drillp"
	e.d.Compose(t, "docker-compose", dir, proj, "up", "-d")
	names := []string{proj + "_pg_1", proj + "_maria_1", proj + "_web_1"}
	t.Cleanup(func() { e.d.DockerErr(append([]string{"rm", "-f"}, names...)...) })
	waitForLong(t, func() bool {
		h, _ := e.d.DockerErr("inspect", "-f", "{{.State.Running}}", proj+"_web_1")
		return h == "true"
	})
	e.d.Docker(t, "exec", proj+"_pg_1", "psql", "-XAtq", "-c", "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g", "postgres")
	e.d.Docker(t, "exec", proj+"_pg_1", "psql", "-XAtq", "-c", "CREATE INDEX ON orders (note)", "postgres")
	e.d.Docker(t, "exec", proj+"_maria_1", "mariadb", "-uroot", "-e",
		"CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40)) ENGINE=InnoDB; INSERT INTO shop.items VALUES (1,'a'),(2,'b'),(3,'c')")
	e.ok("init")
	point := e.backup("project/" + proj)
	t.Logf("point %s, consistency %s", point.ID, point.Consistency)

	before := countObjects(t, e)
	states := map[string]string{}
	for _, n := range names {
		states[n] = startedState(t, e, n)
	}
	since := strconv.FormatInt(time.Now().Unix()-1, 10)
	r := e.run(nil, "drill", "project/"+proj)
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	t.Logf("drill output:\n%s%s", r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("drill of a good point: exit %d", r.code)
	}
	for _, want := range []string{"PASSED", "RTO ", "start", "pg_amcheck", "mariadb-check", "http 8080/", "probe",
		"dump load (postgres)", "dump load (mariadb)", "pg_amcheck (dump)", "mariadb-check (dump)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("drill output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "FAILED") {
		t.Errorf("a check failed")
	}
	rto := regexp.MustCompile(`RTO (\S+)`).FindStringSubmatch(r.stdout)
	after := countObjects(t, e)
	t.Logf("engine objects before the drill %+v, after %+v", before, after)
	if after != before {
		t.Errorf("the drill left objects behind: before %+v, after %+v", before, after)
	}
	for _, n := range names {
		if s := startedState(t, e, n); s != states[n] {
			t.Errorf("original %s changed: before %q, after %q", n, states[n], s)
		}
	}
	// The engine's events say what happened to the originals meanwhile.
	ev := e.d.Docker(t, "events", "--since", since, "--until", until, "--filter", "event=pause", "--filter", "event=unpause",
		"--filter", "event=stop", "--filter", "event=die", "--filter", "event=kill", "--filter", "event=restart", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	for _, line := range strings.Split(ev, "\n") {
		for _, n := range names {
			if strings.HasSuffix(line, " "+n) {
				t.Errorf("the drill touched the original: event %q", line)
			}
		}
	}
	var points []struct {
		ID        string `json:"id"`
		LastDrill *struct {
			Passed bool  `json:"passed"`
			RTOMS  int64 `json:"rto_ms"`
		} `json:"last_drill"`
	}
	if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &points); err != nil || len(points) != 1 {
		t.Fatalf("snapshots --json: %v %+v", err, points)
	}
	if d := points[0].LastDrill; d == nil || !d.Passed || d.RTOMS <= 0 {
		t.Fatalf("snapshots shows last drill %+v, want passed with an RTO", d)
	}
	if out := e.ok("snapshots").stdout; !strings.Contains(out, "passed, RTO") {
		t.Errorf("snapshots does not show the drill:\n%s", out)
	}

	// The same point restored as a plain copy, for the figure; the copy
	// would publish the original web's host port, so that one stops.
	e.d.Docker(t, "stop", proj+"_web_1")
	t0 := time.Now()
	e.ok("restore", point.ID, "--as", "drillcopy")
	plain := time.Since(t0)
	e.d.DockerErr("rm", "-f", "drillcopy_pg_1", "drillcopy_maria_1", "drillcopy_web_1")
	e.d.DockerErr("volume", "rm", "drillcopy_pgdata", "drillcopy_mariadata")
	e.d.DockerErr("network", "rm", "drillcopy_backend")
	t.Logf("FIGURE drill RTO %s (restore into the sandbox, every service healthy, every probe passing) beside plain `restore --as` %s of the same point (restore, start, healthchecks)",
		rto[1], plain.Round(100*time.Millisecond))
}

// drillFailProject has a service whose healthcheck passes only on a file
// in a tmpfs, which no restore point holds: its points cannot work.
const drillFailProject = `version: "2.4"
services:
  app:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "echo app booting; echo config missing >&2; exec sleep 100000"]
    volumes: ["data:/data"]
    tmpfs: ["/run/app"]
    healthcheck: {test: ["CMD", "test", "-f", "/run/app/ok"], interval: 1s, retries: 3}
    stop_signal: SIGKILL
  side:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    volumes: ["data:/data"]
    labels: {lifeboat.drill.probe: "test -s /data/seed"}
    stop_signal: SIGKILL
volumes:
  data: {}
`

func TestDrillFailsAndIsKilled(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(drillFailProject), 0o644); err != nil {
		t.Fatal(err)
	}
	const proj = "drillf"
	e.d.Compose(t, "docker-compose", dir, proj, "up", "-d")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", proj+"_app_1", proj+"_side_1") })
	e.d.Docker(t, "exec", proj+"_app_1", "sh", "-c", "touch /run/app/ok; echo seed > /data/seed")
	waitForLong(t, func() bool {
		h, _ := e.d.DockerErr("inspect", "-f", "{{.State.Health.Status}}", proj+"_app_1")
		return h == "healthy"
	})
	e.ok("init")
	point := e.backup("project/" + proj)
	before := countObjects(t, e)
	t.Logf("engine objects before: %+v", before)

	t.Run("failing healthcheck", func(t *testing.T) {
		r := e.run(nil, "drill", "project/"+proj, "--settle", "1s")
		t.Logf("drill output (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
		if r.code != 1 {
			t.Fatalf("drill of a point that cannot work: exit %d, want 1", r.code)
		}
		for _, want := range []string{"FAILED", "start " + proj + "_app_1 failed", "unhealthy", "app booting", "config missing"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("drill output lacks %q", want)
			}
		}
		if !strings.Contains(r.stderr, "restore drill failed") || !strings.Contains(r.stderr, "start ("+proj+"_app_1)") {
			t.Errorf("the error does not name the failed check: %q", r.stderr)
		}
		if after := countObjects(t, e); after != before {
			t.Errorf("a failed drill left objects: before %+v, after %+v", before, after)
		} else {
			t.Logf("engine objects after the failed drill: %+v", after)
		}
		if out := e.ok("snapshots").stdout; !strings.Contains(out, "FAILED") {
			t.Errorf("snapshots does not show the failed drill:\n%s", out)
		}
		var js struct {
			Passed bool `json:"passed"`
			Checks []struct {
				Name, Container, Output string
				Passed                  bool
			} `json:"checks"`
		}
		r = e.run(nil, "drill", point.ID, "--settle", "1s", "--json")
		if err := jsonUnmarshal(r.stdout, &js); err != nil || r.code != 1 || js.Passed {
			t.Fatalf("drill --json: exit %d, %v, %s", r.code, err, r.stdout)
		}
		var probed bool
		for _, c := range js.Checks {
			probed = probed || (c.Name == "probe" && c.Container == proj+"_side_1" && c.Passed)
		}
		if !probed {
			t.Errorf("the probe of the healthy service did not pass: %+v", js.Checks)
		}
	})

	t.Run("killed", func(t *testing.T) {
		cmd, wait := startAtFailpoint(t, e, "drill-started", "drill", "project/"+proj, "--settle", "1s")
		during := countObjects(t, e)
		t.Logf("engine objects while the drill runs: %+v", during)
		if during.containers != before.containers+2 || during.volumes != before.volumes+1 {
			t.Errorf("the sandbox is not there: %+v", during)
		}
		// A backup of the unit does not wait for the drill; another drill
		// of it does (here: refuses).
		e.backup("project/" + proj)
		if r := e.run(nil, "drill", "project/"+proj, "--no-wait"); r.code != 11 {
			t.Errorf("a second drill of the unit: exit %d, want 11 (locked)\n%s", r.code, r.stderr)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		wait()
		if after := countObjects(t, e); after == before {
			t.Fatalf("nothing left after the kill: the test killed too late")
		}
		r := e.ok("snapshots")
		t.Logf("the next command said:\n%s", r.stderr)
		if !strings.Contains(r.stderr, "rolled back an interrupted restore") {
			t.Errorf("the next command did not say it removed the sandbox: %q", r.stderr)
		}
		after := countObjects(t, e)
		t.Logf("engine objects after the kill and the next command: %+v (before the drill %+v)", after, before)
		if after != before {
			t.Errorf("the sandbox of a killed drill is left: before %+v, after %+v", before, after)
		}
	})
}

// startAtFailpoint starts lifeboat with a failpoint and returns once it
// blocks there; wait reaps it after the caller killed it.
func startAtFailpoint(t *testing.T, e *env, point string, args ...string) (*exec.Cmd, func()) {
	t.Helper()
	cmd, reached, tail := runToFailpoint(t, e, point, 3*time.Minute, args...)
	if !reached {
		cmd.Wait()
		t.Fatalf("lifeboat ended before failpoint %s:\n%s", point, strings.Join(tail, "\n"))
	}
	return cmd, func() { cmd.Wait() }
}

// drain drains the rest of a scanner so the process never blocks
// writing to its stderr.
func drain(sc *bufio.Scanner) {
	go func() {
		for sc.Scan() {
		}
	}()
}

// TestDrillCorruptDatabase backs up a PostgreSQL whose table has a page
// damaged on disk, which the server does not notice until it reads it:
// the point starts fine, and only the drill's pg_amcheck tells.
func TestDrillCorruptDatabase(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "all")
	db := &dbBench{e: e, t: t}
	const ready = `pg_isready -q && psql -XAtq -c "select 1"`
	db.start("pgc", ready, "-v", "pgc:/var/lib/postgresql/data", "lifeboat-test/postgres:15")
	t.Cleanup(func() { e.d.DockerErr("volume", "rm", "pgc") })
	db.sh("pgc", `psql -XAtq -c "CREATE TABLE t AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 5000) g" -c CHECKPOINT`)
	rel := db.sh("pgc", `psql -XAtq -c "SELECT pg_relation_filepath('t')"`)
	e.d.Docker(t, "stop", "pgc")
	file := filepath.Join(e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "pgc"), rel)
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The line pointers of the first page, after its header: each one
	// normal, 100 bytes long, at an offset past the end of the page. The
	// page header is whole and data checksums are off, so the server
	// reads the page without complaint; only a check of the heap tells.
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xf0, 0xff, 0xc8, 0x00}, 50), 24); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e.d.Docker(t, "start", "pgc")
	waitForLong(t, func() bool { _, err := db.shErr("pgc", ready); return err == nil })
	e.ok("init")
	// A dump would read the damaged page: the files only.
	e.ok("backup", "container/pgc", "--consistency", "pause")
	r := e.run(nil, "drill", "container/pgc", "--settle", "2s")
	t.Logf("drill output (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 1 || !strings.Contains(r.stdout, "pg_amcheck") || !strings.Contains(r.stderr, "pg_amcheck (pgc)") {
		t.Fatalf("drill of a point with a damaged table: exit %d, want 1 naming pg_amcheck", r.code)
	}
	if !strings.Contains(r.stdout, `heap table "postgres.public.t"`) {
		t.Errorf("pg_amcheck's output does not name the damaged table")
	}
}
