package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// composePortsFile publishes host ports (one and a range) and sets a
// container_name, as real projects do: both used to stop a copy beside
// the original.
const composePortsFile = `services:
  web:
    image: lifeboat-test/busybox:1
    container_name: portsweb
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["8080:80", "8100-8101:100-101"]
    stop_signal: SIGKILL
`

// TestCopyWithShiftedPorts restores a copy of a Compose v2 project that
// publishes host ports beside the running original: refused without
// --ports, planned by the dry run, then running with every host port
// shifted while the original keeps its containers and ports.
func TestCopyWithShiftedPorts(t *testing.T) {
	bin := testutil.ComposeV2(t)
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composePortsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	const proj = "portsproj"
	e.d.Compose(t, bin, dir, proj, "up", "-d", "--wait")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", "portsweb", "copy_portsweb") })
	origID := e.d.Docker(t, "inspect", "-f", "{{.Id}}", "portsweb")
	origPorts := sortedLines(e.d.Docker(t, "port", "portsweb"))

	e.ok("init")
	p := e.backup("project/" + proj)
	ref := "project/" + proj + "@latest"

	r := e.run(nil, "restore", ref, "--as", "copy")
	if r.code == 0 || !strings.Contains(r.stderr, "host port 8080/tcp of container portsweb is taken by portsweb") || !strings.Contains(r.stderr, "--ports shift=N") {
		t.Fatalf("a copy publishing the original's ports: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	plan := e.ok("restore", ref, "--as", "copy", "--ports", "shift=1000", "--dry-run").stdout
	t.Logf("dry run:\n%s", plan)
	for _, want := range []string{"would create: container copy_portsweb", "ports of copy_portsweb: 8080→9080/tcp, 8100→9100/tcp, 8101→9101/tcp"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the dry run does not say %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "refused") {
		t.Errorf("the dry run refuses a copy with shifted ports:\n%s", plan)
	}
	if out, err := e.d.DockerErr("inspect", "-f", "{{.Id}}", "copy_portsweb"); err == nil {
		t.Fatalf("the dry run created the copy: %s", out)
	}

	r = e.ok("restore", p.ID, "--as", "copy", "--ports", "shift=1000")
	t.Logf("restore: %s%s", r.stdout, r.stderr)
	for name, id := range map[string]string{"portsweb": origID, "copy_portsweb": ""} {
		st := e.d.Docker(t, "inspect", "-f", "{{.Id}} {{.State.Running}}", name)
		if !strings.HasSuffix(st, " true") || id != "" && !strings.HasPrefix(st, id+" ") {
			t.Errorf("%s after the copy: %q (original ID %s)", name, st, origID)
		}
	}
	if got := sortedLines(e.d.Docker(t, "port", "portsweb")); got != origPorts {
		t.Errorf("the original's ports changed:\n%s\nwere:\n%s", got, origPorts)
	}
	copyPorts := e.d.Docker(t, "port", "copy_portsweb")
	t.Logf("docker port copy_portsweb:\n%s", copyPorts)
	for _, want := range []string{"80/tcp -> 0.0.0.0:9080", "100/tcp -> 0.0.0.0:9100", "101/tcp -> 0.0.0.0:9101"} {
		if !strings.Contains(copyPorts, want) {
			t.Errorf("the copy does not publish %q:\n%s", want, copyPorts)
		}
	}
	if strings.Contains(copyPorts, ":8080") {
		t.Errorf("the copy publishes the original's port:\n%s", copyPorts)
	}
	// Both answer on the daemon's host network, each on its own port (the
	// copy has the original's hostname: it serves a page of its own).
	e.d.Docker(t, "exec", "copy_portsweb", "sh", "-c", "echo copy > /www/index.html")
	want := map[string]string{"8080": e.d.Docker(t, "exec", "portsweb", "cat", "/www/index.html"), "9080": "copy"}
	if want["8080"] == "copy" || want["8080"] == "" {
		t.Fatalf("the original serves %q", want["8080"])
	}
	for port, page := range want {
		got := e.d.Docker(t, "run", "--rm", "--network", "host", "lifeboat-test/busybox:1", "wget", "-qO-", "http://127.0.0.1:"+port+"/")
		if strings.TrimSpace(got) != page {
			t.Errorf("host port %s answered %q, want %q", port, got, page)
		}
	}
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
