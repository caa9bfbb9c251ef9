package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestVolumeRoundTrip backs up a volume holding every case a faithful
// backup must keep, changes it, backs up again, and restores both points
// into directories and into new Docker volumes: each must come back
// identical in content and metadata.
func TestVolumeRoundTrip(t *testing.T) {
	e := newEnv(t)
	mp := e.volume("edge")
	// A file without xattrs, long quiet when backup 1 scans it: the
	// scan's memo then keeps it as bare.
	plain := filepath.Join(mp, "plain.txt")
	if err := os.WriteFile(plain, []byte("no xattr at backup 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.MakeEdgeTree(t, filepath.Join(mp, "edge"))
	e.benchkit("make", filepath.Join(mp, "bench"), "24M", "7")
	e.ok("init")

	want1 := testutil.Manifest(t, mp)
	p1 := e.backup("volume/edge")
	if p1.Consistency != "none" || p1.Files == 0 || p1.Bytes == 0 {
		t.Fatalf("first point: %+v", p1)
	}

	// Change: benchkit's edits, plus a metadata-only change, a new hard
	// link and an xattr, so backup 2 differs in data and in metadata.
	e.benchkit("mutate", filepath.Join(mp, "bench"), "5", "7")
	if err := os.Chmod(filepath.Join(mp, "edge"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "new.txt"), []byte("added after the first backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(mp, "new.txt"), filepath.Join(mp, "new-link.txt")); err != nil {
		t.Fatal(err)
	}
	// Backup 2 must list it again: setting it moved its change time.
	if err := unix.Lsetxattr(plain, "user.after", []byte("set after backup 1"), 0); err != nil {
		t.Fatal(err)
	}
	want2 := testutil.Manifest(t, mp)
	p2 := e.backup("volume/edge")
	if p2.ID == p1.ID {
		t.Fatal("second backup reused the first point's ID")
	}
	// Incremental: the second point stores far less than the data set.
	if p2.BytesAdded >= p1.BytesAdded/3 {
		t.Errorf("second backup stored %d new bytes, first %d: not incremental", p2.BytesAdded, p1.BytesAdded)
	}
	// Unchanged files are not read again: most bytes come from the cache.
	if p1.Unchanged != 0 || p2.Unchanged < p2.Bytes*7/10 {
		t.Errorf("bytes unchanged: first %d, second %d of %d: the metadata cache was not used", p1.Unchanged, p2.Unchanged, p2.Bytes)
	}

	t.Run("both points to directories", func(t *testing.T) {
		for _, tc := range []struct {
			ref  string
			want []string
		}{{p1.ID, want1}, {p2.ID[:8], want2}, {"volume/edge@latest", want2}} {
			dst := filepath.Join(t.TempDir(), "out")
			r := e.ok("restore", tc.ref, "--volume", "edge", "--target", dst, "--json")
			if got := testutil.Manifest(t, dst); !cmp.Equal(tc.want, got) {
				t.Errorf("restore %s: tree differs (-want +got):\n%s", tc.ref, firstLines(cmp.Diff(tc.want, got), 60))
			}
			var s summary
			if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.MessageType != "summary" {
				t.Errorf("restore --json: %q %v", r.stdout, err)
			}
		}
	})

	t.Run("one file or one directory keeps its metadata", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "one")
		e.ok("restore", p2.ID, "--path", "volumes/edge/edge/acl/file", "--target", dst)
		want := testutil.Manifest(t, filepath.Join(mp, "edge", "acl"))
		got := testutil.Manifest(t, dst)
		if line := find(want, `"file"`); line == "" || find(got, `"file"`) != line {
			t.Errorf("single file: want %q, got %q", line, find(got, `"file"`))
		}
		dst = filepath.Join(t.TempDir(), "hard")
		e.ok("restore", p2.ID, "--path", "volumes/edge/edge/hard", "--target", dst)
		if w, g := testutil.Manifest(t, filepath.Join(mp, "edge", "hard")), testutil.Manifest(t, dst); !cmp.Equal(w, g) {
			t.Errorf("directory differs:\n%s", cmp.Diff(w, g))
		}
	})

	t.Run("whole tree has manifest and sidecar", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "tree")
		e.ok("restore", p2.ID, "--target", dst)
		b, err := os.ReadFile(filepath.Join(dst, "lifeboat.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			FormatVersion int    `json:"format_version"`
			Unit          string `json:"unit"`
			Host          string `json:"host"`
			Engine        struct {
				EngineVersion string `json:"engine_version"`
			} `json:"engine"`
			Volumes []struct {
				Name  string `json:"name"`
				Files int64  `json:"files"`
			} `json:"volumes"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.FormatVersion != 1 || m.Unit != "volume/edge" || m.Host == "" || m.Engine.EngineVersion == "" || len(m.Volumes) != 1 || m.Volumes[0].Files == 0 {
			t.Fatalf("manifest: %s", b)
		}
		if got := testutil.Manifest(t, filepath.Join(dst, "volumes", "edge")); !cmp.Equal(want2, got) {
			t.Errorf("volumes/edge differs:\n%s", firstLines(cmp.Diff(want2, got), 60))
		}
		if _, err := os.Stat(filepath.Join(dst, "meta", "volumes", "edge.json")); err != nil {
			t.Errorf("sidecar missing: %v", err)
		}
	})

	t.Run("into new Docker volumes", func(t *testing.T) {
		for _, tc := range []struct {
			ref, as string
			want    []string
		}{{p1.ID, "edge-p1", want1}, {"volume/edge@latest", "edge-p2", want2}} {
			e.ok("restore", tc.ref, "--volume", "edge", "--as", tc.as)
			mp := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", tc.as)
			if got := testutil.Manifest(t, mp); !cmp.Equal(tc.want, got) {
				t.Errorf("volume %s differs:\n%s", tc.as, firstLines(cmp.Diff(tc.want, got), 60))
			}
		}
		// A second restore into the now non-empty volume is refused and
		// changes nothing; --force replaces the contents with the point's.
		before := testutil.Manifest(t, e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "edge-p1"))
		r := e.run(nil, "restore", p2.ID, "--volume", "edge", "--as", "edge-p1")
		if r.code == 0 || !strings.Contains(r.stderr, "--force") {
			t.Fatalf("restore into a non-empty volume: exit %d, %q", r.code, r.stderr)
		}
		mp1 := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "edge-p1")
		if got := testutil.Manifest(t, mp1); !cmp.Equal(before, got) {
			t.Fatal("a refused restore changed the volume")
		}
		e.ok("restore", p2.ID, "--volume", "edge", "--as", "edge-p1", "--force")
		if got := testutil.Manifest(t, mp1); !cmp.Equal(want2, got) {
			t.Errorf("forced restore differs:\n%s", firstLines(cmp.Diff(want2, got), 60))
		}
	})

	t.Run("snapshots lists both, newest first", func(t *testing.T) {
		r := e.ok("snapshots", "volume/edge", "--json")
		var ps []summary
		if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil {
			t.Fatalf("snapshots --json: %v: %q", err, r.stdout)
		}
		if len(ps) != 2 || ps[0].ID != p2.ID || ps[1].ID != p1.ID || ps[0].DowntimeMS == nil || ps[0].Files != p2.Files {
			t.Fatalf("snapshots: %+v", ps)
		}
		if r := e.ok("snapshots"); !strings.Contains(r.stdout, p2.ID[:12]) || !strings.Contains(r.stdout, "volume/edge") {
			t.Fatalf("table: %q", r.stdout)
		}
	})
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

// find returns the first line that starts with prefix.
func find(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
