package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestImagesComeAlong: a container from a locally built image, never
// pushed anywhere, comes back on an engine that has no images at all.
func TestImagesComeAlong(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	// A local image: busybox plus a file, committed here, in no registry.
	e.d.Docker(t, "run", "--name", "imgbuild", "lifeboat-test/busybox:1", "sh", "-c", "echo baked-in > /etc/app.conf; mkdir -p /opt/data; echo old > /opt/data/a; echo old > /opt/data/b")
	e.d.Docker(t, "commit", "imgbuild", "lbtest/app:1")
	e.d.Docker(t, "rm", "imgbuild")
	e.d.Docker(t, "run", "-d", "--name", "imgapp", "--label", "lifeboat.consistency=pause", "lbtest/app:1",
		// Deleting and recreating an image directory makes it opaque in the
		// writable layer: the restored one must not show the image's files.
		"sh", "-c", "rm -rf /opt/data; mkdir /opt/data; echo new > /opt/data/fresh; echo changed > /etc/runtime.txt; exec sleep 100000")
	waitFor(t, func() bool { _, err := e.d.DockerErr("exec", "imgapp", "cat", "/etc/runtime.txt"); return err == nil })
	if r := e.ok("ls"); !strings.Contains(r.stderr, "image lbtest/app:1 exists in no registry: kept in every restore point") {
		t.Errorf("ls does not warn about the local image: %q", r.stderr)
	}
	e.ok("init")
	p1 := e.backup("container/imgapp")
	p2 := e.backup("container/imgapp")
	// The image is stored once: the second point finds it by ID and date
	// and does not export it again.
	if p2.BytesAdded > p1.BytesAdded/4 {
		t.Errorf("second point added %d bytes, first %d: the image was stored again", p2.BytesAdded, p1.BytesAdded)
	}
	var m struct {
		Images []struct {
			Ref    string `json:"ref"`
			Saved  bool   `json:"saved"`
			Reason string `json:"reason"`
		} `json:"images"`
	}
	dst := filepath.Join(t.TempDir(), "tree")
	e.ok("restore", p2.ID, "--path", "lifeboat.json", "--target", dst)
	b, _ := os.ReadFile(filepath.Join(dst, "lifeboat.json"))
	if err := json.Unmarshal(b, &m); err != nil || len(m.Images) != 1 || !m.Images[0].Saved || !strings.Contains(m.Images[0].Reason, "no registry") {
		t.Fatalf("manifest images: %s", b)
	}

	fresh := func() *testutil.Daemon {
		d, err := testutil.NewDaemon()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Stop() })
		return d
	}
	d2 := fresh()
	r := e.run([]string{"DOCKER_HOST=" + d2.Host}, "restore", p2.ID, "--json")
	if r.code != 0 {
		t.Fatalf("restore on an engine with no images: exit %d: %s", r.code, r.stderr)
	}
	if out := d2.Docker(t, "exec", "imgapp", "cat", "/etc/app.conf", "/etc/runtime.txt"); out != "baked-in\nchanged" {
		t.Errorf("restored container sees %q", out)
	}
	if out := d2.Docker(t, "exec", "imgapp", "ls", "/opt/data"); out != "fresh" {
		t.Errorf("opaque directory came back as %q, want only the new file", out)
	}
	if tags := d2.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(tags, "lbtest/app:1") {
		t.Errorf("image tag not restored: %s", tags)
	}

	t.Run("image-only", func(t *testing.T) {
		d3 := fresh()
		r := e.run([]string{"DOCKER_HOST=" + d3.Host}, "restore", p2.ID, "--image-only")
		if r.code != 0 {
			t.Fatalf("--image-only: %s", r.stderr)
		}
		if tags := d3.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(tags, "lbtest/app:1") {
			t.Errorf("--image-only did not load the image: %s", tags)
		}
		if out := d3.Docker(t, "ps", "-aq"); out != "" {
			t.Errorf("--image-only created containers: %s", out)
		}
	})

	t.Run("images none", func(t *testing.T) {
		p3 := parseSummaries(t, e.ok("backup", "container/imgapp", "--images", "none", "--json").stdout)[0]
		d4 := fresh()
		r := e.run([]string{"DOCKER_HOST=" + d4.Host}, "restore", p3.ID)
		if r.code != 1 || !strings.Contains(r.stderr, "image lbtest/app:1") || !strings.Contains(r.stderr, "--images save") {
			t.Fatalf("restore without the image: exit %d, %q", r.code, r.stderr)
		}
		if out := d4.Docker(t, "ps", "-aq"); out != "" {
			t.Fatalf("a refused restore created containers: %s", out)
		}
	})
	e.d.Docker(t, "rm", "-f", "imgapp")
}
