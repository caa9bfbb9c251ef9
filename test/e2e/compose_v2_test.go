package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// composeV2File is a project as Compose v2 users write it: no version key,
// a healthcheck the dependency waits on, a named volume and a network.
const composeV2File = `services:
  db:
    image: lifeboat-test/busybox:1
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); printf 'record %08d %s end\\n' $$i 0123456789abcdef0123456789abcdef >> /data/log; sleep 0.005; done"]
    volumes: ["data:/data"]
    healthcheck: {test: ["CMD", "test", "-s", "/data/log"], interval: 1s, retries: 30}
    networks: [backend]
    stop_signal: SIGKILL
  app:
    image: lifeboat-test/busybox:1
    command: ["sleep", "100000"]
    depends_on: {db: {condition: service_healthy}}
    networks: [backend]
    stop_signal: SIGKILL
volumes:
  data: {}
networks:
  backend: {}
`

// TestComposeV2ProjectRoundTrip backs up a project started by Compose v2,
// takes it down with its volumes, restores it, and checks that Compose v2
// still owns what came back: it lists, execs into and takes down the
// restored containers as its own.
func TestComposeV2ProjectRoundTrip(t *testing.T) {
	bin := testutil.ComposeV2(t)
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeV2File), 0o644); err != nil {
		t.Fatal(err)
	}
	const proj = "webv2"
	e.d.Compose(t, bin, dir, proj, "up", "-d", "--wait")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", proj+"-db-1", proj+"-app-1") })
	time.Sleep(300 * time.Millisecond) // let the writer write

	e.ok("init")
	p := e.backup("project/" + proj)
	if p.Consistency != "pause" {
		t.Fatalf("auto on a running project: consistency %q, want pause", p.Consistency)
	}
	e.d.Compose(t, bin, dir, proj, "down", "-v")
	if out, _ := e.d.DockerErr("volume", "ls", "-q"); strings.Contains(out, proj+"_data") {
		t.Fatalf("down -v left the volume: %s", out)
	}

	e.ok("restore", p.ID)
	var ps []struct{ Service, State string }
	out := e.d.Compose(t, bin, dir, proj, "ps", "--format", "json")
	for _, line := range strings.Split(out, "\n") {
		var s struct{ Service, State string }
		if line = strings.TrimSpace(line); line == "" || json.Unmarshal([]byte(line), &s) != nil {
			continue
		}
		ps = append(ps, s)
	}
	if len(ps) != 2 {
		t.Fatalf("compose ps after the restore lists %d services, want 2: %s", len(ps), out)
	}
	for _, s := range ps {
		if s.State != "running" {
			t.Errorf("service %s is %s after the restore", s.Service, s.State)
		}
	}
	checkRecords(t, e.d.Compose(t, bin, dir, proj, "exec", "-T", "db", "cat", "/data/log"))
	// The service name resolves on the restored network.
	e.d.Compose(t, bin, dir, proj, "exec", "-T", "app", "ping", "-c1", "-W2", "db")

	e.d.Compose(t, bin, dir, proj, "down", "-v")
	if names, _ := e.d.DockerErr("ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, proj+"-") {
		t.Errorf("compose down left restored containers: %s", names)
	}
}
