package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// cli runs lifeboat commands in-process against a repository of its own
// in a temporary directory: every command writes through cobra's writers,
// so what it prints is what these tests read.
type cli struct {
	t                            *testing.T
	repo, password, state, cache string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	c := &cli{t: t, repo: filepath.Join(dir, "repo"), password: filepath.Join(dir, "password"), state: filepath.Join(dir, "state"), cache: filepath.Join(dir, "cache")}
	if err := os.WriteFile(c.password, []byte("in-process-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Nothing from the caller's environment may point elsewhere.
	for _, k := range []string{"LIFEBOAT_REPOSITORY", "LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_STATE_DIR", "LIFEBOAT_CACHE_DIR"} {
		t.Setenv(k, "")
	}
	return c
}

func (c *cli) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	g := &globalOptions{}
	root := newRootCommand(g)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--repository", c.repo, "--password-file", c.password, "--state-dir", c.state, "--cache-dir", c.cache}, args...))
	err = root.ExecuteContext(c.t.Context())
	return out.String(), errOut.String(), err
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("lifeboat %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// TestCommandsInProcess drives the repository commands that need no
// Docker engine, each in-process, and reads their JSON.
func TestCommandsInProcess(t *testing.T) {
	c := newCLI(t)
	var initRes struct {
		Path string `json:"repository"`
	}
	if err := json.Unmarshal([]byte(c.ok("init", "--json")), &initRes); err != nil || initRes.Path == "" {
		t.Fatalf("init --json: %+v %v", initRes, err)
	}
	if got := strings.TrimSpace(c.ok("snapshots", "--json")); got != "[]" {
		t.Fatalf("snapshots --json of a new repository: %s", got)
	}
	var check repository.CheckResult
	if err := json.Unmarshal([]byte(c.ok("check", "--read-data", "100%", "--json")), &check); err != nil || check.Points != 0 || len(check.Problems) != 0 {
		t.Fatalf("check --json: %+v %v", check, err)
	}
	var maint repository.MaintenanceResult
	if err := json.Unmarshal([]byte(c.ok("maintenance", "--quick", "--json")), &maint); err != nil || maint.BlobsAfter == 0 {
		t.Fatalf("maintenance --json: %+v %v", maint, err)
	}
	if got := strings.TrimSpace(c.ok("forget", "--keep-last", "1", "--json")); got != "[]" {
		t.Fatalf("forget --json with no points: %s", got)
	}
	if got := c.ok("snapshots", "--format", "{{.ID}}"); got != "" {
		t.Fatalf("snapshots --format of a new repository: %q", got)
	}
	if _, _, err := c.run("ack", "volume/none@latest"); !errors.Is(err, repository.ErrNoSuchPoint) {
		t.Fatalf("ack of no point: %v", err)
	}
	if _, _, err := c.run("restore", "volume/none@latest", "--target", t.TempDir()); !errors.Is(err, repository.ErrNoSuchPoint) {
		t.Fatalf("restore of no point: %v", err)
	}
}

// TestCommandsRefuseBadInputFirst: a request that cannot be carried out is
// refused with an invalid-request error before any repository or engine
// is touched (there is none here: touching it would be another error).
func TestCommandsRefuseBadInputFirst(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup"}, "say what to back up"},
		{[]string{"backup", "--all", "volume/v"}, "not both"},
		{[]string{"backup", "pod/x"}, "unknown kind"},
		{[]string{"backup", "--all", "--consistency", "freeze"}, "consistency"},
		{[]string{"forget", "shop", "--keep-last", "1"}, "write project/NAME"},
		{[]string{"check", "--read-data", "200"}, "0 to 100"},
		{[]string{"replicate"}, "--to"},
		{[]string{"drill", "project/shop", "--settle", "-1s"}, "settle"},
		{[]string{"restore", "p", "--path", "volumes/v"}, "path needs target"},
		{[]string{"snapshots", "--format", "{{.ID"}, "--format"},
		{[]string{"ls", "--format", "{{end}}"}, "--format"},
	} {
		_, _, err := c.run(tc.args...)
		if !errors.Is(err, ops.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("lifeboat %s: %v, want an invalid request saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if _, err := os.Stat(c.repo); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused command created the repository: %v", err)
	}
}
