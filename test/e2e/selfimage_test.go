package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

const selfImage = "lifeboat-backup/lifeboat:selftest"

// boat runs the lifeboat image on a private daemon as a user would:
// the engine's socket, its data root at the same path, lifeboat's state.
type boat struct {
	t     *testing.T
	d     *testutil.Daemon
	state string
	n     int
	names []string // every lifeboat container started
}

func (b *boat) mounts() []string {
	return []string{"-v", strings.TrimPrefix(b.d.Host, "unix://") + ":/var/run/docker.sock",
		"-v", b.d.DataRoot + ":" + b.d.DataRoot, "-v", b.state + ":/var/lib/lifeboat"}
}

// run runs one lifeboat command in a fresh container of the image; extra
// are docker run options.
func (b *boat) run(extra []string, args ...string) result {
	b.t.Helper()
	b.n++
	name := "lifeboat-" + strconv.Itoa(b.n)
	b.names = append(b.names, name)
	// --uts=host: restore points carry the host's name, the same from one
	// container to the next, so each backup finds the one before.
	dargs := append([]string{"-H", b.d.Host, "run", "--rm", "--name", name, "--uts=host"}, b.mounts()...)
	dargs = append(append(append(dargs, extra...), selfImage), args...)
	cmd := exec.Command("docker", dargs...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(b.d.Dir, "cli"))
	return runResult(b.t, cmd, "docker run lifeboat", args)
}

func (b *boat) ok(extra []string, args ...string) result {
	b.t.Helper()
	r := b.run(extra, args...)
	if r.code != 0 {
		b.t.Fatalf("containerised lifeboat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// TestSelfImage: the image scripts/build-image makes backs up a busybox
// writer and a PostgreSQL container from inside a container of the same
// engine, in auto (pause for the writer, dump+pause for the database),
// pause and dump modes, restores the volume equal and the database as a
// copy, and never pauses itself or its own Compose project; a path not
// mounted into it fails naming the path.
func TestSelfImage(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "all")
	start := time.Now()
	build := exec.Command(filepath.Join(repoRoot(), "scripts", "build-image"), selfImage)
	build.Env = append(os.Environ(), "DOCKER_HOST="+e.d.Host, "DOCKER_CONFIG="+filepath.Join(e.d.Dir, "cli"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-image: %v\n%s", err, out)
	}
	size := e.d.Docker(t, "image", "inspect", "-f", "{{.Size}}", selfImage)
	t.Logf("scripts/build-image: %v, image %s bytes", time.Since(start).Round(time.Millisecond), size)

	wdata := e.volume("wdata")
	testutil.MakeEdgeTree(t, filepath.Join(wdata, "fixed"))
	e.d.Docker(t, "run", "-d", "--name", "writer", "-v", "wdata:/data", "lifeboat-test/busybox:1",
		"sh", "-c", "mkdir -p /data/live; i=0; while true; i=$((i+1)); do echo $i >> /data/live/log; sleep 0.01; done")
	e.d.Docker(t, "run", "-d", "--name", "pg", "-e", "POSTGRES_DB=app", "lifeboat-test/postgres:15")
	psql := func(ctr, sql string) (string, error) {
		return e.d.DockerErr("exec", ctr, "psql", "-XAtq", "-d", "app", "-c", sql)
	}
	waitForLong(t, func() bool { _, err := psql("pg", "select 1"); return err == nil })
	if out, err := psql("pg", "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g"); err != nil {
		t.Fatalf("create table: %v %s", err, out)
	}
	if out, err := psql("pg", "CHECKPOINT"); err != nil {
		t.Fatalf("checkpoint: %v %s", err, out)
	}
	// Lifeboat in a Compose project of its own, with a sidecar that must
	// never be frozen either.
	project := []string{"--label", "com.docker.compose.project=lbself", "--label", "com.docker.compose.service=lifeboat"}
	e.d.Docker(t, "run", "-d", "--name", "sidecar", "--label", "com.docker.compose.project=lbself",
		"--label", "com.docker.compose.service=sidecar", "lifeboat-test/busybox:1", "sleep", "100000")

	b := &boat{t: t, d: e.d, state: t.TempDir()}
	t0 := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	b.ok(project, "init")

	var units []struct{ Unit string }
	if err := jsonUnmarshal(b.ok(project, "ls", "--json").stdout, &units); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, u := range units {
		listed = append(listed, u.Unit)
	}
	if strings.Contains(strings.Join(listed, " "), "lbself") || len(listed) != 2 {
		t.Fatalf("ls in lifeboat's container lists %v: want container/pg and container/writer, never its own project", listed)
	}

	points := map[string]summary{}
	r := b.ok(project, "backup", "--all", "--json")
	for _, s := range parseSummaries(t, r.stdout) {
		if s.MessageType == "summary" {
			points["auto "+s.Unit] = s
		}
	}
	if len(points) != 2 || points["auto container/writer"].Consistency != "pause" || points["auto container/pg"].Consistency != "dump+pause" {
		t.Fatalf("backup --all in a container made %v; want writer by pause and pg by dump+pause\n%s", points, r.stdout)
	}
	for _, m := range []struct{ unit, mode string }{{"container/writer", "pause"}, {"container/pg", "dump"}} {
		s := parseSummaries(t, b.ok(project, "backup", m.unit, "--consistency", m.mode, "--json").stdout)
		if len(s) != 1 || s[0].Consistency != m.mode {
			t.Fatalf("backup %s --consistency %s: %+v", m.unit, m.mode, s)
		}
		points[m.mode+" "+m.unit] = s[0]
	}
	host, _ := os.Hostname()
	if p := points["pause container/writer"]; p.Unchanged == 0 {
		t.Fatalf("the second backup of the writer, from a new container, read everything again: %+v", p)
	}
	if r := b.ok(nil, "snapshots", "--json").stdout; strings.Count(r, `"host":"`+host+`"`) != 4 {
		t.Fatalf("points are not all recorded under the host's name %q: %s", host, r)
	}
	for k, p := range points {
		t.Logf("%s: %s, %d files, %d bytes, paused %d ms", k, p.ID, p.Files, p.Bytes, *p.DowntimeMS)
	}

	// Its own unit named: refused with one line, nothing frozen.
	for _, unit := range []string{"project/lbself", "container/"} {
		if unit == "container/" {
			unit += "lifeboat-" + strconv.Itoa(b.n+1) // the one about to run
		}
		r := b.run(project, "backup", unit)
		if r.code == 0 || !strings.Contains(r.stderr, "lifeboat's own container") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Fatalf("backup %s from inside it: exit %d, stderr %q; want one line refusing its own unit", unit, r.code, r.stderr)
		}
	}

	paused := e.d.Docker(t, "events", "--since", t0, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=pause", "--format", "{{.Actor.Attributes.name}}")
	counts := map[string]int{}
	for _, n := range strings.Fields(paused) {
		counts[n]++
	}
	if counts["writer"] < 2 || counts["pg"] < 1 || counts["sidecar"] != 0 || len(counts) != 2 {
		t.Fatalf("paused containers %v; want writer (auto, pause) and pg (auto) only: never lifeboat (%v) or its project's sidecar", counts, b.names)
	}
	if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "sidecar"); st != "running" {
		t.Fatalf("sidecar of lifeboat's own project is %s", st)
	}
	t.Logf("pause events: %v", counts)
	e.d.Docker(t, "rm", "-f", "sidecar")
	b.serve()

	// The volume, restored by the containerised lifeboat beside the
	// original: the fixed tree equal, the writer's log a prefix.
	e.d.Docker(t, "stop", "-t", "1", "writer")
	b.ok(nil, "restore", points["pause container/writer"].ID, "--volume", "wdata", "--as", "wdata-back")
	back := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "wdata-back")
	testutil.RequireSameTree(t, filepath.Join(wdata, "fixed"), filepath.Join(back, "fixed"))
	orig, err1 := os.ReadFile(filepath.Join(wdata, "live", "log"))
	got, err2 := os.ReadFile(filepath.Join(back, "live", "log"))
	if err1 != nil || err2 != nil || len(got) == 0 || !bytes.HasPrefix(orig, got) {
		t.Fatalf("restored log (%d bytes, %v) is not a prefix of the original (%d bytes, %v)", len(got), err2, len(orig), err1)
	}

	// The database, restored as a copy from the auto point.
	b.ok(nil, "restore", points["auto container/pg"].ID, "--as", "pg-copy")
	waitForLong(t, func() bool { _, err := psql("pg-copy", "select 1"); return err == nil })
	if n, err := psql("pg-copy", "SELECT count(*) FROM t"); err != nil || n != "5000" {
		t.Fatalf("the restored copy holds %q rows (%v); want 5000", n, err)
	}

	// A bind source not mounted into lifeboat's container: named, with the
	// mount that shows it.
	hidden := t.TempDir()
	e.d.Docker(t, "run", "-d", "--name", "bindy", "-v", hidden+":/b", "lifeboat-test/busybox:1", "sleep", "100000")
	r = b.run(nil, "backup", "container/bindy")
	if r.code == 0 || !strings.Contains(r.stderr, hidden+" is not mounted into lifeboat's container") || !strings.Contains(r.stderr, "-v "+hidden+":"+hidden) {
		t.Fatalf("backup of a bind lifeboat cannot see: exit %d, %q", r.code, r.stderr)
	}
	e.d.Docker(t, "rm", "-f", "bindy")
}

// serve brings up deploy/compose.yaml with Compose v2, as the README
// shows, on the private daemon: /healthz answers through the port it
// publishes on 127.0.0.1 (of the daemon's network namespace), the daemon's
// units leave its own project out, and a backup --all exec'd in its
// container freezes the writer and pg but never the daemon.
func (b *boat) serve() {
	t := b.t
	t.Helper()
	t1 := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	up := exec.Command(testutil.ComposeV2(t), "-f", filepath.Join(repoRoot(), "deploy", "compose.yaml"), "up", "-d")
	up.Env = append(os.Environ(), "DOCKER_HOST="+b.d.Host, "DOCKER_CONFIG="+filepath.Join(b.d.Dir, "cli"),
		"LIFEBOAT_IMAGE="+selfImage, "DOCKER_SOCKET="+strings.TrimPrefix(b.d.Host, "unix://"),
		"DOCKER_DATA_ROOT="+b.d.DataRoot, "LIFEBOAT_STATE="+b.state, "LIFEBOAT_PORT=18420")
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("docker compose -f deploy/compose.yaml up -d: %v\n%s", err, out)
	}
	const name = "lifeboat-lifeboat-1"
	curl := func(args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + b.d.NetNS, "curl", "-sf", "--max-time", "5"}, args...)...).Output()
		return string(out), err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := curl("http://127.0.0.1:18420/healthz"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := b.d.DockerErr("logs", name)
			t.Fatalf("lifeboat serve from compose.yaml did not answer /healthz on 127.0.0.1:18420 in 60 s; its log:\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	token, err := os.ReadFile(filepath.Join(b.state, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	units, err := curl("-H", "Authorization: Bearer "+strings.TrimSpace(string(token)), "http://127.0.0.1:18420/api/v1/units")
	if err != nil || !strings.Contains(units, `"container/pg"`) || strings.Contains(units, `"project/lifeboat"`) {
		t.Fatalf("the daemon's units (%v): want container/pg and never its own project/lifeboat:\n%s", err, units)
	}
	out, err := b.d.DockerErr("exec", name, "/lifeboat", "backup", "--all", "--json")
	if err != nil || strings.Count(out, `"message_type":"summary"`) != 2 {
		t.Fatalf("backup --all exec'd in the serving container: %v\n%s", err, out)
	}
	paused := b.d.Docker(t, "events", "--since", t1, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "event=pause", "--format", "{{.Actor.Attributes.name}}")
	if st := b.d.Docker(t, "inspect", "-f", "{{.State.Status}}", name); st != "running" || strings.Contains(paused, name) || !strings.Contains(paused, "writer") {
		t.Fatalf("after backup --all in the daemon's container: it is %s; paused since: %q", st, paused)
	}
	t.Logf("compose.yaml: serve answered /healthz, paused meanwhile: %q", strings.Fields(paused))
}
