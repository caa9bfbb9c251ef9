package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestMain stops the private daemons the tests started.
func TestMain(m *testing.M) { testutil.Main(m) }

const busybox = "lifeboat-test/busybox:1"

// testClient starts (or reuses) the private daemon with the busybox image
// and connects a Client to it.
func testClient(t *testing.T) (*Client, *testutil.Daemon) {
	t.Helper()
	d := testutil.StartDaemon(t)
	d.EnsureImages(t, "busybox")
	t.Setenv("DOCKER_HOST", d.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Connect(ctx, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, d
}

// names returns a prefix unique to the test, as the daemon is shared.
func names(t *testing.T) string {
	r := strings.NewReplacer("/", "-", "_", "-")
	return strings.ToLower(r.Replace(t.Name())) + "-"
}

// removeAfter removes containers, networks or volumes when the test ends.
// Cleanups run in reverse, so tests register containers last: they hold the
// others.
func removeAfter(t *testing.T, d *testutil.Daemon, kind string, objs ...string) {
	t.Cleanup(func() {
		args := map[string][]string{"container": {"rm", "-f"}, "network": {"network", "rm"}, "volume": {"volume", "rm", "-f"}}[kind]
		for _, o := range objs {
			// Best effort: a failed test may not have made them all.
			_, _ = dockerTry(d, append(args, o)...)
		}
	})
}

// dockerTry runs the docker CLI against d and returns its output and error
// instead of failing the test.
func dockerTry(d *testutil.Daemon, args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"-H", d.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// inspect returns `docker inspect` of one object as generic JSON.
func inspect(t *testing.T, d *testutil.Daemon, args ...string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(d.Docker(t, append([]string{"inspect"}, args...)...)), &out); err != nil || len(out) != 1 {
		t.Fatalf("docker inspect %v: %v (%d objects)", args, err, len(out))
	}
	return out[0]
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
