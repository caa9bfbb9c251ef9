// Package e2e runs the built lifeboat binary against a real private Docker
// Engine and real repositories, as a user would.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

var (
	lifeboatBin string
	benchkitBin string
)

func TestMain(m *testing.M) {
	// scripts/e2e-parallel runs each test in a process of its own and
	// builds the binaries once for all of them into this directory.
	if dir := os.Getenv("LIFEBOAT_E2E_BINARIES"); dir != "" {
		if err := useOrBuildBinaries(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		testutil.Main(m) // exits
		return
	}
	dir, err := os.MkdirTemp("", "lb-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	testutil.Main(m)
}

// useOrBuildBinaries uses the binaries in dir, building them there first
// when they are not all there.
func useOrBuildBinaries(dir string) error {
	lifeboatBin, benchkitBin = filepath.Join(dir, "lifeboat"), filepath.Join(dir, "benchkit")
	_, err1 := os.Stat(lifeboatBin)
	_, err2 := os.Stat(benchkitBin)
	if err1 == nil && err2 == nil {
		return nil
	}
	return buildBinaries(dir)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildBinaries builds lifeboat from this tree and benchkit from the
// shared benchmark kit beside the checkout.
func buildBinaries(dir string) error {
	root := repoRoot()
	lifeboatBin = filepath.Join(dir, "lifeboat")
	// The failpoints the tests kill at exist only with this tag.
	build := exec.Command("go", "build", "-tags", "lifeboattest", "-o", lifeboatBin, "./cmd/lifeboat")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build lifeboat: %v\n%s", err, out)
	}
	kit := filepath.Join(root, "..", "shared", "bench")
	if _, err := os.Stat(filepath.Join(kit, "main.go")); err != nil {
		return fmt.Errorf("benchkit sources not found at %s (shared/ must sit beside the checkout): %v", kit, err)
	}
	benchkitBin = filepath.Join(dir, "benchkit")
	build = exec.Command("go", "build", "-o", benchkitBin, ".")
	build.Dir = kit
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build benchkit: %v\n%s", err, out)
	}
	return nil
}

// env is one user's environment: a daemon, a repository and a password.
type env struct {
	t      *testing.T
	d      *testutil.Daemon
	repo   string
	vars   []string
	cache  string
	pwFile string
	// kdf is init's --key-derivation: pbkdf2 (0.1 s of a core) unless a
	// test clears it for the default, scrypt (0.15–0.4 s, and seconds on
	// a loaded machine), since every command derives the key again.
	kdf string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, testutil.StartDaemon(t))
}

// newEnvOwnDaemon gives the test a daemon of its own, for tests that look
// at everything on the host.
func newEnvOwnDaemon(t *testing.T) *env {
	t.Helper()
	d, err := testutil.NewDaemon()
	if err != nil {
		t.Fatalf("start a private Docker daemon: %v", err)
	}
	t.Cleanup(func() { d.Stop() })
	return newEnvOn(t, d)
}

func newEnvOn(t *testing.T, d *testutil.Daemon) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, d: d, repo: filepath.Join(dir, "repo"), cache: filepath.Join(dir, "cache"), pwFile: filepath.Join(dir, "pw"), kdf: "pbkdf2"}
	if err := os.WriteFile(e.pwFile, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = []string{"DOCKER_HOST=" + d.Host, "LIFEBOAT_REPOSITORY=" + e.repo, "LIFEBOAT_PASSWORD_FILE=" + e.pwFile,
		"LIFEBOAT_CACHE_DIR=" + e.cache, "LIFEBOAT_STATE_DIR=" + filepath.Join(dir, "state")}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs lifeboat with the env's variables plus extra ones ("KEY=" unsets).
func (e *env) run(extra []string, args ...string) result {
	e.t.Helper()
	if len(args) > 0 && args[0] == "init" && e.kdf != "" && !slices.Contains(args, "--key-derivation") {
		args = append(slices.Clip(args), "--key-derivation", e.kdf)
	}
	cmd := exec.Command(lifeboatBin, args...)
	cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), extra...))
	return runResult(e.t, cmd, "run lifeboat", args)
}

// runResult runs cmd and keeps its output and exit status; a command that
// could not run at all fails the test.
func runResult(t *testing.T, cmd *exec.Cmd, what string, args []string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", what, args, err)
	}
	return r
}

// ok runs lifeboat and fails the test unless it exits 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.code != 0 {
		e.t.Fatalf("lifeboat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// mergeEnv starts from base without any LIFEBOAT_* or DOCKER_HOST, then
// applies extra in order: a later KEY=VALUE replaces an earlier one, and
// "KEY=" removes it.
func mergeEnv(base, extra []string) []string {
	var keys []string
	vals := map[string]string{}
	set := func(kv string, fromBase bool) {
		k, v, _ := strings.Cut(kv, "=")
		if fromBase && (strings.HasPrefix(k, "LIFEBOAT_") || k == "DOCKER_HOST") {
			return
		}
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
		if !fromBase && v == "" {
			delete(vals, k)
		}
	}
	for _, kv := range base {
		set(kv, true)
	}
	for _, kv := range extra {
		set(kv, false)
	}
	var out []string
	for _, k := range keys {
		if v, ok := vals[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// summary is a line of `backup --json` or `restore --json`.
type summary struct {
	MessageType string           `json:"message_type"`
	ID          string           `json:"id"`
	Unit        string           `json:"unit"`
	Consistency string           `json:"consistency"`
	DowntimeMS  *int64           `json:"downtime_ms"`
	Bytes       int64            `json:"bytes"`
	Files       int64            `json:"files"`
	BytesAdded  int64            `json:"bytes_added"`
	Unchanged   int64            `json:"bytes_unchanged"`
	Time        string           `json:"time"`
	NotKept     []string         `json:"not_kept"`
	DurationMS  int64            `json:"duration_ms"`
	PhasesMS    map[string]int64 `json:"phases_ms"`
}

func parseSummaries(t *testing.T, out string) []summary {
	t.Helper()
	var res []summary
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var s summary
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		res = append(res, s)
	}
	return res
}

func (e *env) backup(unit string) summary {
	e.t.Helper()
	r := e.ok("backup", unit, "--json")
	s := parseSummaries(e.t, r.stdout)
	if len(s) != 1 || s[0].MessageType != "summary" || s[0].ID == "" || s[0].Unit != unit || s[0].DowntimeMS == nil || s[0].Time == "" || s[0].Consistency == "" {
		e.t.Fatalf("backup %s --json: want one complete summary, got %q", unit, r.stdout)
	}
	return s[0]
}

// volume creates a volume on the test daemon and returns its mount point.
func (e *env) volume(name string) string {
	e.t.Helper()
	e.d.Docker(e.t, "volume", "create", name)
	return e.d.Docker(e.t, "volume", "inspect", "-f", "{{.Mountpoint}}", name)
}

func (e *env) benchkit(args ...string) {
	e.t.Helper()
	out, err := exec.Command(benchkitBin, args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("benchkit %v: %v\n%s", args, err, out)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
