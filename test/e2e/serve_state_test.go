package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeBacksUpState: serve's upkeep job "state" (queued through the
// API here; daily on its own) makes a lifeboat/state point without the
// config's secrets or the API token, and a restart after the config file
// changed makes another at once.
func TestServeBacksUpState(t *testing.T) {
	e := newEnvOwnDaemon(t) // serve looks at every container
	e.ok("init")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	tokenFile := filepath.Join(dir, "token")
	const token = "state-token-0123456789abcdef-secret"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "lifeboat.yaml")
	const hookSecret = "state-webhook-secret-4711"
	if err := os.WriteFile(cfg, []byte("concurrency: 1\nwebhook:\n  url: http://127.0.0.1:9/hook\n  secret: "+hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.serve(t, freePort(t), tokenFile, "LIFEBOAT_CONFIG="+cfg)
	var j apiJob
	if code := p.api("POST", "/api/v1/jobs", map[string]string{"kind": "state"}, &j); code != 202 || j.ID == "" {
		t.Fatalf("POST a state job: %d %+v", code, j)
	}
	if j = p.waitJob(j.ID, time.Minute); j.State != "succeeded" || j.Point == "" {
		t.Fatalf("state job %+v; log:\n%s", j, p.logs())
	}
	if n := len(p.points("lifeboat/state")); n != 1 {
		t.Fatalf("%d lifeboat/state points after the job, want 1", n)
	}
	got := filepath.Join(t.TempDir(), "got")
	e.ok("restore", "lifeboat/state@latest", "--target", got)
	err := filepath.WalkDir(got, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if strings.Contains(string(b), token) || strings.Contains(string(b), hookSecret) {
			t.Errorf("%s holds a secret", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(got, "state", "lifeboat.yaml")); err != nil || !strings.Contains(string(b), "http://127.0.0.1:9/hook") {
		t.Errorf("the point's config: %v %q", err, b)
	}

	// serve reads its config only at start: a changed file is backed up
	// then.
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(cfg, later, later); err != nil {
		t.Fatal(err)
	}
	p = e.serve(t, freePort(t), tokenFile, "LIFEBOAT_CONFIG="+cfg)
	deadline := time.Now().Add(time.Minute)
	for len(p.points("lifeboat/state")) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no state point after a restart with a changed config; log:\n%s", p.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
