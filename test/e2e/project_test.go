package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

const composeFile = `version: "2.4"
services:
  db:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); printf 'record %08d %s end\\n' $$i 0123456789abcdef0123456789abcdef >> /data/log; sleep 0.005; done"]
    volumes: ["data:/data"]
    environment: {ROLE: database, SECRET_TOKEN: s3cr3t}
    labels: {app.tier: db}
    restart: unless-stopped
    networks: {backend: {aliases: [database]}}
    stop_signal: SIGKILL
  web:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "rm /bin/vi; mkdir -p /opt/site; echo hello > /opt/site/index.html; echo ready > /tmp/ready; exec sleep 100000"]
    volumes: ["BIND:/srv:ro", "data:/data:ro"]
    environment: {ROLE: web}
    labels: {app.tier: web}
    restart: always
    networks: [backend]
    depends_on: [db]
    stop_signal: SIGKILL
  worker:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    volumes: ["BIND:/srv"]
    working_dir: /srv
    user: "1000:1000"
    networks: [backend]
    stop_signal: SIGKILL
volumes:
  data: {}
networks:
  backend: {}
`

// compose runs docker-compose for project p against daemon d.
func compose(t *testing.T, d *testutil.Daemon, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-p", "shop"}, args...)...)
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), []string{"DOCKER_HOST=" + d.Host})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
	}
}

// inspectShape is what must survive a restore, field by field: the
// container's configuration without IDs, times and per-instance values.
type inspectShape struct {
	Config struct {
		Env, Cmd, Entrypoint []string
		Labels               map[string]string
		User, WorkingDir     string
		Image                string
		StopSignal           string
	}
	HostConfig struct {
		Binds         []string
		RestartPolicy struct{ Name string }
		NetworkMode   string
		Mounts        any
	}
	Mounts []struct {
		Type, Name, Source, Destination string
		RW                              bool
	}
	NetworkSettings struct {
		Networks map[string]struct{ Aliases []string }
	}
}

func inspect(t *testing.T, d *testutil.Daemon, name string) inspectShape {
	t.Helper()
	var out []inspectShape
	if err := json.Unmarshal([]byte(d.Docker(t, "inspect", name)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", name, err)
	}
	s := out[0]
	for i := range s.Mounts {
		if s.Mounts[i].Type == "volume" {
			s.Mounts[i].Source = "" // under each daemon's own data root
		}
	}
	sort.Slice(s.Mounts, func(i, j int) bool { return s.Mounts[i].Destination < s.Mounts[j].Destination })
	for n, ep := range s.NetworkSettings.Networks {
		var keep []string
		for _, a := range ep.Aliases {
			if len(a) != 12 { // the container-ID alias differs by nature
				keep = append(keep, a)
			}
		}
		ep.Aliases = keep
		s.NetworkSettings.Networks[n] = ep
	}
	return s
}

func TestProjectPauseRestoreOnAnotherDaemon(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	dir := t.TempDir()
	bind := filepath.Join(dir, "site")
	if err := os.MkdirAll(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bind, "config.ini"), []byte("[site]\nname=shop\n"), 0o644)
	os.Chown(bind, 1000, 1000)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(strings.ReplaceAll(composeFile, "BIND", bind)), 0o644); err != nil {
		t.Fatal(err)
	}
	compose(t, e.d, dir, "up", "-d")
	waitFor(t, func() bool { _, err := e.d.DockerErr("exec", "shop_web_1", "cat", "/tmp/ready"); return err == nil })
	time.Sleep(500 * time.Millisecond) // let the writer write

	t.Run("ls", func(t *testing.T) {
		var units []struct {
			Unit, Consistency, Reason  string
			Containers, Volumes, Binds []string
		}
		if err := json.Unmarshal([]byte(e.ok("ls", "--json").stdout), &units); err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			if u.Unit != "project/shop" {
				continue
			}
			if len(u.Containers) != 3 || len(u.Volumes) != 1 || u.Volumes[0] != "shop_data" || len(u.Binds) != 1 || u.Consistency != "pause" || !strings.Contains(u.Reason, "auto") {
				t.Fatalf("ls: %+v", u)
			}
			return
		}
		t.Fatalf("project/shop not listed: %+v", units)
	})

	e.ok("init")
	r := e.ok("backup", "project/shop", "--consistency", "pause", "--json", "--state-dir", filepath.Join(dir, "state"))
	p := parseSummaries(t, r.stdout)[0]
	if p.Consistency != "pause" || p.DowntimeMS == nil {
		t.Fatalf("point %+v", p)
	}
	t.Logf("pause downtime: %d ms, duration %d ms, phases %v", *p.DowntimeMS, p.DurationMS, p.PhasesMS)
	checkPhases(t, p, []string{"plan"}, "open", "live_pass", "freeze", "frozen_pass", "thaw", "store")
	var listed []summary
	if err := json.Unmarshal([]byte(e.ok("snapshots", "project/shop", "--json").stdout), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("snapshots --json: %v %+v", err, listed)
	}
	if listed[0].DurationMS != p.DurationMS || len(listed[0].PhasesMS) != len(p.PhasesMS) {
		t.Errorf("snapshots lists duration %d ms and phases %v, backup said %d ms and %v", listed[0].DurationMS, listed[0].PhasesMS, p.DurationMS, p.PhasesMS)
	}
	for _, c := range []string{"shop_db_1", "shop_web_1", "shop_worker_1"} {
		if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", c); st != "running" {
			t.Fatalf("%s is %s after the backup", c, st)
		}
	}
	want := map[string]inspectShape{}
	for _, c := range []string{"shop_db_1", "shop_web_1", "shop_worker_1"} {
		want[c] = inspect(t, e.d, c)
	}

	t.Run("pieces to directories", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "worker")
		e.ok("restore", p.ID, "--container", "shop_worker_1", "--target", dst)
		if b, err := os.ReadFile(filepath.Join(dst, "config.json")); err != nil || !strings.Contains(string(b), `"name": "shop_worker_1"`) {
			t.Errorf("--container --target: config.json %v", err)
		}
		dst = filepath.Join(t.TempDir(), "data")
		e.ok("restore", p.ID, "--path", "volumes/shop_data", "--target", dst)
		if b, err := os.ReadFile(filepath.Join(dst, "log")); err != nil {
			t.Errorf("--path --target: %v", err)
		} else {
			checkRecords(t, string(b))
		}
	})

	t.Run("same host: conflicts listed, copy beside", func(t *testing.T) {
		r := e.run(nil, "restore", p.ID)
		if r.code != 1 || !strings.Contains(r.stderr, "container shop_db_1 exists") || !strings.Contains(r.stderr, "volume shop_data exists") {
			t.Fatalf("restore over the running project: exit %d, %q", r.code, r.stderr)
		}
		r = e.ok("restore", p.ID, "--as", "shop2", "--json")
		for _, c := range []string{"shop2_db_1", "shop2_web_1", "shop2_worker_1"} {
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", c); st != "running" {
				t.Errorf("copy %s is %s", c, st)
			}
		}
		if got := e.d.Docker(t, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.project"}}`, "shop2_db_1"); got != "shop2" {
			t.Errorf("copy's project label %q", got)
		}
		if !strings.Contains(r.stdout, "shop2_data") || !strings.Contains(r.stdout, "bind source") {
			t.Errorf("copy result: %s", r.stdout)
		}
		checkRecords(t, e.d.Docker(t, "exec", "shop2_web_1", "cat", "/data/log"))
		// The original is untouched and still running.
		if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "shop_db_1"); st != "running" {
			t.Errorf("original is %s", st)
		}
		for _, c := range []string{"shop2_db_1", "shop2_web_1", "shop2_worker_1"} {
			e.d.Docker(t, "rm", "-f", c)
		}
		// --force replaces the project in place; the old containers are
		// gone once the new ones run.
		oldID := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "shop_db_1")
		e.ok("restore", p.ID, "--force")
		if id := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "shop_db_1"); id == oldID {
			t.Error("--force kept the old container")
		}
		if names := e.d.Docker(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, "lifeboat-old") {
			t.Errorf("replaced containers left behind: %s", names)
		}
		for _, c := range []string{"shop_db_1", "shop_web_1", "shop_worker_1"} {
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", c); st != "running" {
				t.Errorf("%s is %s after --force", c, st)
			}
		}
	})

	// A second engine that has never run the project nor seen its image
	// ("another host"), and the bind source gone as on a fresh machine: the
	// image, built locally and in no registry, comes from the restore point.
	d2, err := testutil.NewDaemon()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Stop() })

	os.RemoveAll(bind)
	composeYML := filepath.Join(dir, "docker-compose.yml")
	wantYML, _ := os.ReadFile(composeYML)
	os.Remove(composeYML)
	r2 := e.run([]string{"DOCKER_HOST=" + d2.Host}, "restore", "project/shop@latest", "--json")
	if r2.code != 0 {
		t.Fatalf("restore on the second daemon: exit %d: %s", r2.code, r2.stderr)
	}
	// Compose v1 labels its file relative to the working directory: it
	// comes back, and v1 finds its containers up to date.
	if b, err := os.ReadFile(composeYML); err != nil || string(b) != string(wantYML) {
		t.Fatalf("docker-compose.yml after the restore: %v", err)
	}
	ids := d2.Docker(t, "ps", "-aq", "--no-trunc")
	compose(t, d2, dir, "up", "-d")
	if after := d2.Docker(t, "ps", "-aq", "--no-trunc"); after != ids {
		t.Fatalf("docker-compose up -d after the restore recreated containers: %s then %s", ids, after)
	}
	for c, w := range want {
		got := inspect(t, d2, c)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s configuration differs (-want +got):\n%s", c, diff)
		}
		if st := d2.Docker(t, "inspect", "-f", "{{.State.Status}}", c); st != "running" {
			t.Errorf("%s restored but %s", c, st)
		}
	}
	// Writable layers: the deleted image file stays deleted, added files are there.
	if _, err := d2.DockerErr("exec", "shop_web_1", "ls", "/bin/vi"); err == nil {
		t.Error("/bin/vi, deleted in the writable layer, came back")
	}
	if out := d2.Docker(t, "exec", "shop_web_1", "cat", "/opt/site/index.html"); out != "hello" {
		t.Errorf("writable-layer file: %q", out)
	}
	// Bind mount and volume data.
	if b, _ := os.ReadFile(filepath.Join(bind, "config.ini")); string(b) != "[site]\nname=shop\n" {
		t.Errorf("bind content %q", b)
	}
	// The log the writer was appending to is crash-consistent: every record
	// whole, numbered without gaps from 1.
	log := d2.Docker(t, "exec", "shop_web_1", "cat", "/data/log")
	checkRecords(t, log)
	// Resolution by network alias works on the restored network.
	if _, err := d2.DockerErr("exec", "shop_web_1", "ping", "-c1", "-W2", "database"); err != nil {
		t.Errorf("alias 'database' does not resolve on the restored network: %v", err)
	}
}

var recordRE = regexp.MustCompile(`^record (\d{8}) 0123456789abcdef0123456789abcdef end$`)

// checkRecords fails unless log is a gap-free run of whole records. The
// restored writer has started again, so records after the point may follow;
// numbering restarts at 1 there because the restored shell counts anew.
func checkRecords(t *testing.T, log string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d records", len(lines))
	}
	want := 1
	for i, l := range lines {
		m := recordRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("record %d is torn: %q", i+1, l)
		}
		n, _ := strconv.Atoi(m[1])
		if n == 1 && i > 0 {
			want = 1 // the restored writer's first record
		}
		if n != want {
			t.Fatalf("record %d is number %d, want %d: a gap", i+1, n, want)
		}
		want++
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}

// checkPhases asserts that a point records each of the phases named and
// that its duration covers the phases that ran one after another.
// checkPhases checks that p records the phases names, which run one after
// the other and so add up to at most its duration, and beside, which run
// within "open": the repository opens in the background from the lock on,
// while the plan and the images are made.
func checkPhases(t *testing.T, p summary, beside []string, names ...string) {
	t.Helper()
	for _, n := range beside {
		d, ok := p.PhasesMS[n]
		if !ok || d > p.PhasesMS["open"] {
			t.Errorf("point's %s phase is not within its open phase: %v", n, p.PhasesMS)
		}
	}
	var sequential int64
	for _, n := range names {
		d, ok := p.PhasesMS[n]
		if !ok {
			t.Errorf("point records no %s phase: %v", n, p.PhasesMS)
		}
		sequential += d
	}
	// Each phase is rounded down to a millisecond on its own.
	if p.DurationMS+int64(len(names)) < sequential || p.DurationMS <= 0 {
		t.Errorf("duration %d ms is shorter than its phases %v", p.DurationMS, p.PhasesMS)
	}
}
