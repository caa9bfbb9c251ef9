package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// composeFilesProject uses what makes Compose recreate a container when
// it differs: a variable from .env, an env_file, a relative bind mount, a
// named and an anonymous volume.
const composeFilesProject = `services:
  web:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    environment: ["GREETING=${GREETING}"]
    env_file: [conf/app.env]
    volumes: ["data:/data", "/cache", "./site:/site"]
    stop_signal: SIGKILL
volumes:
  data: {}
`

// composeProjectFiles are the project's files: the compose file, its .env
// (a secret), and the bind source's page.
var composeProjectFiles = map[string]string{
	"compose.yaml":    composeFilesProject,
	".env":            "GREETING=hello\nDB_PASSWORD=s3cret\n",
	"site/index.html": "<h1>hi</h1>\n",
	"conf/app.env":    "API_TOKEN=t0ken\n",
}

func writeProject(t *testing.T, dir string) {
	t.Helper()
	for name, body := range composeProjectFiles {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".env") {
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// projectIDs are the IDs of the project's containers, sorted.
func projectIDs(t *testing.T, e *env, proj string) []string {
	t.Helper()
	out := e.d.Docker(t, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+proj)
	ids := strings.Fields(out)
	slices.Sort(ids)
	return ids
}

// TestComposeFilesTravelWithProject backs up a Compose v2 project, takes it
// down with its volumes and deletes its directory, and restores it: the
// files come back, `up -d` recreates nothing, the anonymous volume is
// anonymous again (down -v removes it), a second restore over equal files
// and bind sources needs no --force, and differing ones are named.
func TestComposeFilesTravelWithProject(t *testing.T) {
	bin := testutil.ComposeV2(t)
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dir := filepath.Join(t.TempDir(), "shop")
	writeProject(t, dir)
	const proj = "cfiles"
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", proj+"-web-1") })
	e.d.Compose(t, bin, dir, proj, "up", "-d", "--wait")
	e.d.Compose(t, bin, dir, proj, "exec", "-T", "web", "sh", "-c", "echo anon > /cache/c; echo named > /data/d")

	e.ok("init")
	p := e.backup("project/" + proj)
	// down -v, then restore over the untouched originals: no --force.
	e.d.Compose(t, bin, dir, proj, "down", "-v")
	if r := e.run(nil, "restore", p.ID); r.code != 0 {
		t.Fatalf("restore after down -v over the unchanged bind source and files: exit %d\n%s", r.code, r.stderr)
	}
	e.d.Compose(t, bin, dir, proj, "down", "-v")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	// A restore killed after writing a compose file, or after the engine
	// made the anonymous volume, is rolled back by the next command:
	// no file, no container, no volume left.
	vols := e.d.Docker(t, "volume", "ls", "-q")
	for _, point := range []string{"restore-compose-written", "restore-container-made", "restore-extracted"} {
		if !killIfReached(t, e, point, "restore", p.ID) {
			t.Fatalf("the restore never reached %s", point)
		}
		e.ok("snapshots")
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Fatalf("killed at %s: %s left after the rollback (%v)", point, dir, err)
		}
		if ids := projectIDs(t, e, proj); len(ids) != 0 {
			t.Fatalf("killed at %s: containers %v left", point, ids)
		}
		if got := e.d.Docker(t, "volume", "ls", "-q"); got != vols {
			t.Fatalf("killed at %s: volumes %q, before %q", point, got, vols)
		}
	}

	plan := e.ok("restore", p.ID, "--dry-run").stdout
	if !strings.Contains(plan, "would create: compose file "+filepath.Join(dir, ".env")) || !strings.Contains(plan, "anonymous volume") {
		t.Fatalf("the dry run does not say it writes the compose files and makes an anonymous volume:\n%s", plan)
	}
	r := e.ok("restore", p.ID)
	for name, body := range composeProjectFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != body {
			t.Fatalf("%s after the restore: %q %v, want %q", name, b, err, body)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, ".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf(".env after the restore: %v %v, want mode 0600", fi, err)
	}
	if !strings.Contains(r.stdout, "compose files written: ") || !strings.Contains(r.stdout, filepath.Join(dir, "compose.yaml")) {
		t.Fatalf("restore output does not name the compose file: %s", r.stdout)
	}

	// Compose finds its own containers up to date.
	before := projectIDs(t, e, proj)
	out := e.d.Compose(t, bin, dir, proj, "up", "-d")
	if after := projectIDs(t, e, proj); len(before) != 1 || !slices.Equal(before, after) {
		t.Fatalf("up -d after the restore recreated containers: %v then %v\n%s", before, after, out)
	}
	if strings.Contains(out, "Recreate") {
		t.Fatalf("up -d after the restore: %s", out)
	}
	got := e.d.Compose(t, bin, dir, proj, "exec", "-T", "web", "cat", "/cache/c", "/data/d", "/site/index.html")
	if got != "anon\nnamed\n<h1>hi</h1>" {
		t.Fatalf("restored data: %q", got)
	}

	// --force over the running project: the replaced container's
	// anonymous volume goes with it, none is left dangling.
	vols = e.d.Docker(t, "volume", "ls", "-q")
	e.ok("restore", p.ID, "--force")
	if got := e.d.Docker(t, "volume", "ls", "-q"); len(strings.Fields(got)) != len(strings.Fields(vols)) {
		t.Fatalf("restore --force: volumes %q, before %q", got, vols)
	}

	// down -v removes the anonymous volume too.
	mounted := strings.Fields(e.d.Docker(t, "inspect", "-f", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}", proj+"-web-1"))
	if len(mounted) != 2 {
		t.Fatalf("restored container mounts volumes %v, want 2", mounted)
	}
	e.d.Compose(t, bin, dir, proj, "down", "-v")
	for _, v := range mounted {
		if _, err := e.d.DockerErr("volume", "inspect", v); err == nil {
			t.Errorf("down -v left volume %s of the restored project", v)
		}
	}

	// Files and bind source still there and equal: no --force needed.
	e.ok("restore", p.ID)
	e.d.Compose(t, bin, dir, proj, "down", "-v")

	// Different ones are named, and nothing is written.
	if err := os.WriteFile(filepath.Join(dir, "site/index.html"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("GREETING=bye\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run(nil, "restore", p.ID)
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(dir, "site")) || !strings.Contains(r.stderr, filepath.Join(dir, ".env")) {
		t.Fatalf("restore over a changed bind source and .env: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Fatalf("the refusal shows the .env's secret: %s", r.stderr)
	}
	if ids := projectIDs(t, e, proj); len(ids) != 0 {
		t.Fatalf("a refused restore created containers %v", ids)
	}
}

// composeFreshProject has no relative bind: its configuration, and so
// Compose's config hash, does not depend on where its directory is.
const composeFreshProject = `services:
  web:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    environment: ["GREETING=${GREETING}"]
    volumes: ["data:/data", "/cache"]
    stop_signal: SIGKILL
volumes:
  data: {}
`

// TestComposeFilesOntoFreshHost restores a Compose v2 project onto another
// daemon with its files in a new directory (--compose-dir): Compose lists
// it from the restored files and `up -d` recreates nothing. A copy beside
// the original writes its files only with --compose-dir.
func TestComposeFilesOntoFreshHost(t *testing.T) {
	bin := testutil.ComposeV2(t)
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dir := filepath.Join(t.TempDir(), "orig")
	files := map[string]string{"compose.yaml": composeFreshProject, ".env": "GREETING=hello\n"}
	for name, body := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const proj = "cfresh"
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", proj+"-web-1", "cfcopy-web-1") })
	e.d.Compose(t, bin, dir, proj, "up", "-d", "--wait")
	e.d.Compose(t, bin, dir, proj, "exec", "-T", "web", "sh", "-c", "echo anon > /cache/c")
	e.ok("init")
	p := e.backup("project/" + proj)

	// A drill's sandbox mounts its copy of the anonymous volume.
	e.ok("drill", p.ID)

	// A copy beside the original leaves the original's files alone, and
	// writes the point's only into --compose-dir.
	r := e.ok("restore", p.ID, "--as", "cfcopy")
	if !strings.Contains(r.stderr, "--compose-dir") || strings.Contains(r.stdout, "compose files written") {
		t.Fatalf("a copy without --compose-dir: %s\n%s", r.stdout, r.stderr)
	}
	e.d.Docker(t, "rm", "-f", "-v", "cfcopy-web-1")
	copyDir := filepath.Join(t.TempDir(), "copy")
	r = e.ok("restore", p.ID, "--as", "cfcopy2", "--compose-dir", copyDir)
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", "cfcopy2-web-1") })
	if b, err := os.ReadFile(filepath.Join(copyDir, ".env")); err != nil || string(b) != files[".env"] {
		t.Fatalf("the copy's .env: %q %v\n%s", b, err, r.stdout)
	}

	d2, err := testutil.NewDaemon()
	if err != nil {
		t.Fatalf("start a second Docker daemon: %v", err)
	}
	t.Cleanup(func() { d2.Stop() })
	d2.EnsureImages(t, "busybox")
	e2 := *e
	e2.d, e2.vars = d2, append(slices.Clone(e.vars), "DOCKER_HOST="+d2.Host)
	fresh := filepath.Join(t.TempDir(), "fresh")
	e2.ok("restore", p.ID, "--compose-dir", fresh)
	for name, body := range files {
		if b, err := os.ReadFile(filepath.Join(fresh, name)); err != nil || string(b) != body {
			t.Fatalf("%s in --compose-dir: %q %v", name, b, err)
		}
	}
	ps := d2.Compose(t, bin, fresh, proj, "ps", "--format", "{{.Service}} {{.State}}")
	if ps != "web running" {
		t.Fatalf("compose ps from the restored files: %q", ps)
	}
	before := projectIDs(t, &e2, proj)
	out := d2.Compose(t, bin, fresh, proj, "up", "-d")
	if after := projectIDs(t, &e2, proj); len(before) != 1 || !slices.Equal(before, after) || strings.Contains(out, "Recreate") {
		t.Fatalf("up -d on the fresh host recreated: %v then %v\n%s", before, after, out)
	}
	if got := d2.Compose(t, bin, fresh, proj, "exec", "-T", "web", "cat", "/cache/c"); got != "anon" {
		t.Fatalf("anonymous volume on the fresh host: %q", got)
	}
}
