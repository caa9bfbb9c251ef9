package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// chaosCompose is a project with a database under writes (SQLite, each
// row also appended to a numbered file), a service whose stop takes its
// whole grace period (PID 1 ignores SIGTERM), a plain service, and a
// one-shot that has exited: every backup must leave each in its state.
// slow depends on the others, so it starts last and is stopped first.
const chaosCompose = `version: "2.4"
services:
  db:
    image: lifeboat-test/sqlite:3
    command: ["sh", "-c", "trap 'exit 0' TERM; sqlite3 /data/app.db 'PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)' >/dev/null; touch /data/seq; i=$$(wc -l < /data/seq); while :; do i=$$((i+1)); sqlite3 -cmd '.timeout 10000' /data/app.db \"INSERT INTO t (v) VALUES ($$i)\"; echo $$i >> /data/seq; sleep 0.05; done"]
    volumes: ["data:/data"]
    labels: {lifeboat.sqlite: /data/app.db, lifeboat.consistency: stop}
  web:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    labels: {lifeboat.consistency: stop}
  slow:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
    stop_grace_period: 2s
    depends_on: [db, web]
    labels: {lifeboat.consistency: stop}
  job:
    image: lifeboat-test/busybox:1
    command: ["true"]
    labels: {lifeboat.consistency: stop}
volumes:
  data: {}
`

// chaosGrace is slow's stop_grace_period; states are checked only after
// it has passed since the interruption, so a stop still under way in the
// engine would have ended by then.
const chaosGrace = 2 * time.Second

// chaosCase is one interruption of a backup: at a failpoint's line, plus
// delay, the signal (again a second time with twice).
type chaosCase struct {
	mode  string
	point string // "" for a kill timed from the start
	delay time.Duration
	sig   syscall.Signal
	twice bool
}

func (c chaosCase) String() string {
	s := c.mode + "/" + c.point
	if c.point == "" {
		s = c.mode + "/start"
	}
	if c.delay > 0 {
		s += "+" + c.delay.String()
	}
	if c.sig != syscall.SIGKILL {
		s += "/" + map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[c.sig]
		if c.twice {
			s += "x2"
		}
	}
	return s
}

// chaosBed is the project and what the test knows about it.
type chaosBed struct {
	e       *env
	journal string
	prior   map[string]string // container → status before any backup
	points  int               // complete points so far
	// late counts interruptions that came after the backup had ended.
	late int
}

// TestChaosBackup interrupts backups of a three-container project in
// every consistency mode at every phase — SIGKILL at failpoints and at
// timed moments, SIGTERM (also twice), SIGINT, an API cancel and a
// daemon's SIGTERM — and checks after each that the next command leaves
// every container in its prior state (looked at after the grace period),
// lists no partial point, and empties the freeze journal. Older points
// still restore gap-free.
func TestChaosBackup(t *testing.T) {
	mnt := testutil.Btrfs(t, "3G")
	d, err := testutil.NewDaemonWithDataRoot(filepath.Join(mnt, "docker"))
	if err != nil {
		t.Fatalf("start a Docker daemon on btrfs: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	e := newEnvOn(t, d)
	e.d.EnsureImages(t, "all")
	state := filepath.Join(t.TempDir(), "state")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(chaosCompose), 0o644); err != nil {
		t.Fatal(err)
	}
	chaosCompose := func(args ...string) {
		t.Helper()
		cmd := exec.Command("docker-compose", append([]string{"-p", "chaos"}, args...)...)
		cmd.Dir = dir
		cmd.Env = mergeEnv(os.Environ(), []string{"DOCKER_HOST=" + d.Host})
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
	chaosCompose("up", "-d")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "chaos_db_1", "chaos_web_1", "chaos_slow_1", "chaos_job_1") })
	b := &chaosBed{e: e, journal: filepath.Join(state, "journal"), prior: map[string]string{
		"chaos_db_1": "running", "chaos_web_1": "running", "chaos_slow_1": "running", "chaos_job_1": "exited"}}
	waitFor(t, func() bool { return b.records(t) > 20 && b.status(t, "chaos_job_1") == "exited" })
	if grace := e.d.Docker(t, "inspect", "-f", "{{.Config.StopTimeout}}", "chaos_slow_1"); grace != "2" {
		t.Fatalf("slow's StopTimeout is %s: compose did not pass stop_grace_period", grace)
	}
	e.ok("init")
	var good []string
	for _, mode := range []string{"pause", "stop"} {
		good = append(good, b.backup(t, mode))
	}

	start := time.Now()
	var cases []chaosCase
	kill := func(mode, point string, delay time.Duration) {
		cases = append(cases, chaosCase{mode: mode, point: point, delay: delay, sig: syscall.SIGKILL})
	}
	for _, p := range []string{"journalled", "stop-sent", "stop-sent", "stopped-one", "frozen", "capturing", "captured", "thaw-between", "thawed", "saving"} {
		kill("stop", p, 0)
	}
	cases[2].delay = 1200 * time.Millisecond
	cases[1].delay = 300 * time.Millisecond
	kill("stop", "", 1500*time.Millisecond)
	kill("stop", "", 3000*time.Millisecond)
	for _, p := range []string{"journalled", "frozen", "capturing", "captured", "thawed", "saving"} {
		kill("pause", p, 0)
	}
	kill("pause", "capturing", 30*time.Millisecond)
	for _, p := range []string{"journalled", "frozen", "captured", "thawed", "saving"} {
		kill("dump+pause", p, 0)
	}
	for _, p := range []string{"journalled", "frozen", "captured", "thawed", "saving"} {
		kill("snapshot", p, 0)
	}
	kill("snapshot", "capturing", 0)
	cases = append(cases,
		chaosCase{mode: "stop", point: "stop-sent", delay: 500 * time.Millisecond, sig: syscall.SIGTERM},
		chaosCase{mode: "stop", point: "stop-sent", delay: 500 * time.Millisecond, sig: syscall.SIGTERM, twice: true},
		chaosCase{mode: "stop", point: "stop-sent", delay: 500 * time.Millisecond, sig: syscall.SIGINT},
		chaosCase{mode: "pause", point: "capturing", sig: syscall.SIGINT, twice: true},
		chaosCase{mode: "snapshot", point: "capturing", sig: syscall.SIGTERM},
	)
	var kills, killsOK, signals, signalsOK int
	for _, c := range cases {
		ok := t.Run(c.String(), func(t *testing.T) { b.interrupt(t, c) })
		if c.sig == syscall.SIGKILL {
			kills++
			if ok {
				killsOK++
			}
		} else {
			signals++
			if ok {
				signalsOK++
			}
		}
	}
	cancels, cancelsOK := b.daemonCases(t)
	t.Logf("interruptions took %v", time.Since(start).Round(time.Second))

	// Every mode still works, and every good point restores gap-free.
	for _, mode := range []string{"pause", "stop", "dump+pause", "snapshot"} {
		good = append(good, b.backup(t, mode))
	}
	if n := len(b.e.list(t)); n != b.points {
		t.Errorf("%d points listed, want the %d complete ones", n, b.points)
	}
	for _, id := range good {
		dst := filepath.Join(t.TempDir(), "r")
		e.ok("restore", id, "--volume", "chaos_data", "--target", dst)
		seq, err := os.ReadFile(filepath.Join(dst, "seq"))
		if err != nil {
			out, _ := exec.Command("find", dst).CombinedOutput()
			t.Fatalf("point %s: %v; restored:\n%s", id, err, out)
		}
		gapFree(t, "point "+id, string(seq))
	}
	t.Logf("chaos: %d/%d kills, %d/%d signals, %d/%d daemon cancels and shutdowns, containers back in state (%d came after the backup ended); %d good points restore gap-free",
		killsOK, kills, signalsOK, signals, cancelsOK, cancels, b.late, len(good))
	if killsOK != kills || signalsOK != signals || cancelsOK != cancels {
		t.Fail()
	}
}

func (b *chaosBed) status(t *testing.T, name string) string {
	t.Helper()
	return b.e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", name)
}

// records is how many rows the writer has appended so far.
func (b *chaosBed) records(t *testing.T) int {
	t.Helper()
	out, err := b.e.d.DockerErr("exec", "chaos_db_1", "sh", "-c", "wc -l < /data/seq")
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(out, &n)
	return n
}

// backup makes a complete point in mode and returns its ID.
func (b *chaosBed) backup(t *testing.T, mode string) string {
	t.Helper()
	r := b.e.ok("backup", "project/chaos", "--consistency", mode, "--json")
	s := parseSummaries(t, r.stdout)
	if len(s) != 1 || s[0].ID == "" || s[0].Consistency != mode {
		t.Fatalf("backup in %s: %q", mode, r.stdout)
	}
	b.points++
	b.settle(t, time.Now(), "")
	return s[0].ID
}

// interrupt runs one backup to c's moment, interrupts it, and checks.
func (b *chaosBed) interrupt(t *testing.T, c chaosCase) {
	cmd := exec.Command(lifeboatBin, "backup", "project/chaos", "--consistency", c.mode)
	vars := append([]string{}, b.e.vars...)
	if c.point != "" {
		vars = append(vars, "LIFEBOAT_TEST_FAILPOINT="+c.point)
	}
	cmd.Env = mergeEnv(os.Environ(), vars)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out bytes.Buffer
	reached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !seen && c.point != "" && sc.Text() == "failpoint "+c.point {
				seen = true
				reached <- true
			}
		}
		if !seen {
			reached <- false
		}
	}()
	if c.point == "" {
		time.Sleep(c.delay)
	} else {
		select {
		case ok := <-reached:
			if !ok {
				cmd.Wait()
				t.Fatalf("lifeboat ended before failpoint %s:\n%s", c.point, out.String())
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("failpoint %s not reached", c.point)
		}
		time.Sleep(c.delay)
	}
	at := time.Now()
	cmd.Process.Signal(c.sig)
	if c.twice {
		time.Sleep(200 * time.Millisecond)
		cmd.Process.Signal(c.sig)
	}
	werr := cmd.Wait()
	mu.Lock()
	log := out.String()
	mu.Unlock()
	if cmd.ProcessState.Success() {
		b.points++ // it finished before the interruption
		b.late++
		t.Logf("the backup completed before the interruption")
	}
	if c.sig != syscall.SIGKILL {
		// A signal is handled: the process thaws before it exits, and
		// a second signal does not cut that short.
		if code := cmd.ProcessState.ExitCode(); code != 130 && code != 0 {
			t.Errorf("exit %v after %s, want 130 (interrupted); stderr:\n%s", werr, c.sig, log)
		}
		if ents, _ := os.ReadDir(b.journal); len(ents) != 0 {
			t.Errorf("the interrupted process exited with its freeze still journalled: %v; stderr:\n%s", ents, log)
		}
		for name, want := range b.prior {
			if st := b.status(t, name); st != want {
				t.Errorf("right after the interrupted process exited, %s is %s, want %s", name, st, want)
			}
		}
	}
	b.settle(t, at, log)
}

// settle runs the next command, then, once the grace period has passed
// since the interruption at at, checks every container against its prior
// state, the listed points and the journal.
func (b *chaosBed) settle(t *testing.T, at time.Time, log string) {
	t.Helper()
	r := b.e.run(nil, "snapshots", "--json")
	if r.code != 0 {
		t.Fatalf("the next command: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "could not resume") {
		t.Errorf("the next command could not resume: %s", r.stderr)
	}
	var ps []summary
	if err := jsonUnmarshal(r.stdout, &ps); err != nil {
		t.Fatalf("snapshots --json: %v", err)
	}
	if len(ps) != b.points {
		t.Errorf("%d points listed, want the %d complete ones", len(ps), b.points)
		b.points = len(ps) // one error, not one per case from here on
	}
	time.Sleep(time.Until(at.Add(chaosGrace + 1500*time.Millisecond)))
	for name, want := range b.prior {
		if st := b.status(t, name); st != want {
			t.Errorf("%s is %s after the grace period, want %s; the next command said %q; the interrupted one:\n%s", name, st, want, r.stderr, log)
			// Put it back, so the next case starts from the prior state
			// and counts on its own.
			b.e.d.DockerErr("unpause", name)
			b.e.d.DockerErr("start", name)
		}
	}
	if ents, _ := os.ReadDir(b.journal); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("journal not emptied: %v", names)
	}
}

// daemonCases cancels a stop-mode job of `lifeboat serve` through the API
// while the engine waits out slow's grace period, then sends the daemon
// SIGTERM at the same moment of another job: it returns how many of the
// two left everything in its state.
func (b *chaosBed) daemonCases(t *testing.T) (n, ok int) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("chaos-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := b.e.serve(t, freePort(t), tokenFile, "LIFEBOAT_TEST_FAILPOINT=stop-sent")
	submit := func(t *testing.T) apiJob {
		seen := strings.Count(p.logs(), "failpoint stop-sent")
		var j apiJob
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "project/chaos"}, &j); code/100 != 2 {
			t.Fatalf("submit: %d %+v", code, j)
		}
		deadline := time.Now().Add(60 * time.Second)
		for strings.Count(p.logs(), "failpoint stop-sent") == seen {
			if time.Now().After(deadline) {
				t.Fatalf("the job never sent a stop; log:\n%s", p.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		return j
	}
	n++
	if t.Run("api-cancel", func(t *testing.T) {
		j := submit(t)
		at := time.Now()
		p.api("POST", "/api/v1/jobs/"+j.ID+"/cancel", nil, nil)
		done := p.waitJob(j.ID, 60*time.Second)
		if done.State == "succeeded" {
			b.points++
			t.Logf("the job completed before the cancel")
		}
		for name, want := range b.prior {
			if st := b.status(t, name); st != want {
				t.Errorf("when the cancelled job ended, %s is %s, want %s", name, st, want)
			}
		}
		b.settle(t, at, p.logs())
	}) {
		ok++
	}
	n++
	if t.Run("serve-SIGTERM", func(t *testing.T) {
		j := submit(t)
		at := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
		for name, want := range b.prior {
			if st := b.status(t, name); st != want {
				t.Errorf("when the daemon exited, %s is %s, want %s", name, st, want)
			}
		}
		// The daemon gives running jobs a grace period before it cancels
		// them: this one may have completed.
		if len(b.e.list(t)) == b.points+1 {
			b.points++
			t.Logf("job %s completed within the daemon's shutdown grace", j.ID)
		}
		b.settle(t, at, p.logs())
	}) {
		ok++
	}
	return n, ok
}

// TestReleaseBinaryHasNoFailpoints builds lifeboat as a release is built
// (without the lifeboattest tag): the failpoint variable is not in the
// binary, and a backup with it set runs through instead of blocking.
func TestReleaseBinaryHasNoFailpoints(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lifeboat")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lifeboat")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for path, want := range map[string]bool{bin: false, lifeboatBin: true} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(b, []byte("LIFEBOAT_TEST_FAILPOINT")); got != want {
			t.Errorf("%s holds the failpoint variable: %v, want %v", path, got, want)
		}
	}

	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.d.Docker(t, "run", "-d", "--name", "relfp", "lifeboat-test/busybox:1", "sleep", "100000")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "relfp") })
	e.ok("init")
	cmd := exec.Command(bin, "backup", "container/relfp", "--consistency", "pause")
	cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), "LIFEBOAT_TEST_FAILPOINT=frozen"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || strings.Contains(out.String(), "failpoint") {
			t.Fatalf("release backup with the failpoint set: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the release binary blocked at a failpoint:\n%s", out.String())
	}
	if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "relfp"); st != "running" {
		t.Fatalf("container %s after the backup", st)
	}
}
