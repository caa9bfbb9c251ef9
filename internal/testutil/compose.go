package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ComposeV2 returns the path of the pinned Docker Compose v2 binary that
// scripts/build-compose built into the test cache (scripts/install-deps
// runs it). It fails the test, never skips, when the binary is missing.
func ComposeV2(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(RepoRoot(), "scripts", "build-compose"), "--check").Output()
	if err != nil {
		var msg string
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("Compose v2: %v %s", err, msg)
	}
	return strings.TrimSpace(string(out))
}

// Compose runs a compose binary (v1's docker-compose or v2's) for project
// in dir against d, and fails the test on error. Its client config lives
// in the daemon's directory, never in the user's home.
func (d *Daemon) Compose(t testing.TB, bin, dir, project string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-p", project}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	return strings.TrimSpace(string(out))
}
