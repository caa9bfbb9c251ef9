package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestRegistryTimeline: --images commit,push pushes each point's timeline
// image to a private registry; a fresh engine restores by pulling it; the
// tag is in `docker images` and in the registry's tag list; forgetting the
// point removes both.
func TestRegistryTimeline(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	reg := e.d.StartRegistry(t)
	e.d.Docker(t, "run", "-d", "--name", "rt", "lifeboat-test/busybox:1", "sh", "-c", "echo v1 > /etc/state; exec sleep 100000")
	waitFor(t, func() bool { _, err := e.d.DockerErr("exec", "rt", "cat", "/etc/state"); return err == nil })
	e.ok("init")
	backup := func() summary {
		return parseSummaries(t, e.ok("backup", "container/rt", "--images", "commit,push", "--registry", reg, "--json").stdout)[0]
	}
	p1 := backup()
	tags := func() string {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+e.d.NetNS, "curl", "-s", "http://"+reg+"/v2/lifeboat/rt/rt/tags/list").Output()
		if err != nil {
			t.Fatalf("registry tag list: %v", err)
		}
		return string(out)
	}
	local := func(d *testutil.Daemon) []string {
		return strings.Fields(d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"))
	}
	tag1 := ""
	for _, ref := range local(e.d) {
		if strings.HasPrefix(ref, reg+"/lifeboat/rt/rt:") {
			tag1 = strings.TrimPrefix(ref, reg+"/lifeboat/rt/rt:")
		}
	}
	if tag1 == "" || !strings.Contains(strings.Join(local(e.d), " "), "lifeboat/rt/rt:"+tag1) {
		t.Fatalf("timeline tags missing locally: %v", local(e.d))
	}
	if !strings.Contains(tags(), tag1) {
		t.Fatalf("registry tag list lacks %s: %s", tag1, tags())
	}

	// Another engine, beside the first so it reaches the same registry,
	// that has no image at all: it pulls the timeline image and runs it.
	d2, err := testutil.NewDaemonBeside(e.d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Stop() })
	r := e.run([]string{"DOCKER_HOST=" + d2.Host}, "restore", p1.ID, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, reg+"/lifeboat/rt/rt:"+tag1) {
		t.Fatalf("restore by pull: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	if out := d2.Docker(t, "exec", "rt", "cat", "/etc/state"); out != "v1" {
		t.Errorf("restored container sees %q", out)
	}

	time.Sleep(1100 * time.Millisecond) // timeline tags name the second
	e.d.Docker(t, "exec", "rt", "sh", "-c", "echo v2 > /etc/state")
	backup()
	// forget talks to the registry, which lives in the daemon's namespace.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+e.d.NetNS, lifeboatBin, "forget", "container/rt", "--keep-last", "1")
	cmd.Env = mergeEnv(os.Environ(), e.vars)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("forget: %v\n%s", err, out)
	}
	if strings.Contains(tags(), tag1) {
		t.Errorf("forgotten point's tag still in the registry: %s", tags())
	}
	for _, ref := range local(e.d) {
		if strings.HasSuffix(ref, ":"+tag1) {
			t.Errorf("forgotten point's local tag remains: %s", ref)
		}
	}
	if n := strings.Count(tags(), "Z\""); n != 1 {
		t.Errorf("registry should hold the kept point's tag only: %s", tags())
	}
	e.d.Docker(t, "rm", "-f", "rt")

	t.Run("push alone", func(t *testing.T) {
		e.d.Docker(t, "run", "--name", "pbuild", "lifeboat-test/busybox:1", "sh", "-c", "echo pushed-image > /etc/origin")
		e.d.Docker(t, "commit", "pbuild", "lbtest/pushme:1")
		e.d.Docker(t, "rm", "pbuild")
		e.d.Docker(t, "run", "-d", "--name", "pm", "lbtest/pushme:1", "sleep", "100000")
		p := parseSummaries(t, e.ok("backup", "container/pm", "--images", "push", "--registry", reg, "--json").stdout)[0]
		d3, err := testutil.NewDaemonBeside(e.d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d3.Stop() })
		if r := e.run([]string{"DOCKER_HOST=" + d3.Host}, "restore", p.ID); r.code != 0 {
			t.Fatalf("restore by pull: %s", r.stderr)
		}
		if out := d3.Docker(t, "exec", "pm", "cat", "/etc/origin"); out != "pushed-image" {
			t.Errorf("restored container sees %q", out)
		}
		if refs := strings.Join(local(d3), " "); !strings.Contains(refs, "lbtest/pushme:1") || !strings.Contains(refs, reg+"/lbtest/pushme:1") {
			t.Errorf("pulled image not tagged as the original: %s", refs)
		}
		e.d.Docker(t, "rm", "-f", "pm")
	})
}
