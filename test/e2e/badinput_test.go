package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput checks that every bad input gets a one-line error on stderr
// that says what to do, a non-zero exit, and writes nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	mp := e.volume("data")
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.ok("init")
	first := e.backup("volume/data")
	ids := []string{first.ID}
	// Two IDs sharing a first character make an ambiguous prefix; IDs are
	// random hex, so by the pigeonhole principle 17 points always do.
	var ambiguous string
	for ambiguous == "" {
		seen := map[byte]bool{}
		for _, id := range ids {
			if seen[id[0]] {
				ambiguous = id[:1]
				break
			}
			seen[id[0]] = true
		}
		if ambiguous == "" {
			ids = append(ids, e.backup("volume/data").ID)
		}
	}
	points := len(ids)

	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOnly := t.TempDir()
	mustRun(t, "mount", "-t", "tmpfs", "-o", "ro,size=1m", "lbtest-ro", readOnly)
	t.Cleanup(func() { exec.Command("umount", readOnly).Run() })
	wrongPw := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongPw, []byte("not the password\n"), 0o600)

	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		code  int
		words []string // the error must say these
	}{
		{"missing volume name", nil, []string{"backup", "volume/"}, 1, []string{"no name"}},
		{"nothing to back up", nil, []string{"backup"}, 1, []string{"--all"}},
		{"unknown volume", nil, []string{"backup", "volume/nope"}, 1, []string{"nope", "not found"}},
		{"wrong password", []string{"LIFEBOAT_PASSWORD_FILE=" + wrongPw}, []string{"snapshots"}, 12, []string{"wrong repository password", "LIFEBOAT_PASSWORD_FILE"}},
		{"wrong password, fresh machine", []string{"LIFEBOAT_PASSWORD_FILE=" + wrongPw, "LIFEBOAT_CACHE_DIR=" + t.TempDir()}, []string{"backup", "volume/data"}, 12, []string{"wrong repository password"}},
		{"no password", []string{"LIFEBOAT_PASSWORD_FILE="}, []string{"snapshots"}, 12, []string{"LIFEBOAT_PASSWORD_FILE"}},
		{"no repository", []string{"LIFEBOAT_REPOSITORY=" + filepath.Join(t.TempDir(), "none")}, []string{"snapshots"}, 10, []string{"no repository", "lifeboat init"}},
		{"no repository for backup", []string{"LIFEBOAT_REPOSITORY=" + filepath.Join(t.TempDir(), "none")}, []string{"backup", "volume/data"}, 10, []string{"lifeboat init"}},
		{"repository not writable", []string{"LIFEBOAT_REPOSITORY=" + filepath.Join(readOnly, "repo")}, []string{"init"}, 1, []string{"not writable"}},
		{"init over existing", nil, []string{"init"}, 1, []string{"already exists"}},
		{"unknown snapshot", nil, []string{"restore", "ffffffffffffff", "--target", t.TempDir()}, 1, []string{"no such restore point", "lifeboat snapshots"}},
		{"unknown unit", nil, []string{"restore", "volume/other@latest", "--target", t.TempDir()}, 1, []string{"no restore points"}},
		{"ambiguous snapshot", nil, []string{"restore", ambiguous, "--target", t.TempDir()}, 1, []string{"ambiguous", "more of the ID"}},
		{"target not empty", nil, []string{"restore", first.ID, "--volume", "data", "--target", nonEmpty}, 1, []string{"not empty", "--force"}},
		{"volume not empty", nil, []string{"restore", first.ID, "--volume", "data"}, 1, []string{"already holds data", "--as"}},
		{"engine unreachable", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"backup", "volume/data"}, 1, []string{"cannot reach the Docker Engine", "DOCKER_HOST"}},
		{"engine unreachable for volume restore", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"restore", first.ID, "--volume", "data", "--as", "x2"}, 1, []string{"cannot reach the Docker Engine"}},
		{"unknown consistency", nil, []string{"backup", "volume/data", "--consistency", "bogus"}, 1, []string{"unknown consistency"}},
		{"recover from nowhere", nil, []string{"recover"}, 1, []string{"--from s3://"}},
		{"recover an unknown unit", nil, []string{"recover", "--from", e.repo, "project/none"}, 1, []string{"no unit project/none", "recover --list"}},
		{"recover another host", nil, []string{"recover", "--from", e.repo, "--from-host", "elsewhere"}, 1, []string{"no points of host", "recover --list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(tc.env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "lifeboat: ") {
				t.Errorf("want one error line on stderr, got %q", r.stderr)
			}
			for _, w := range tc.words {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not say %q", r.stderr, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty: %q", r.stdout)
			}
		})
	}

	// Nothing was written: the same points, the same data, no new volume.
	if got := len(e.list(t)); got != points {
		t.Errorf("repository has %d points after the bad inputs, want %d", got, points)
	}
	if b, _ := os.ReadFile(filepath.Join(nonEmpty, "keep")); string(b) != "mine" {
		t.Error("target directory was changed")
	}
	if ents, _ := os.ReadDir(nonEmpty); len(ents) != 1 {
		t.Errorf("target directory gained entries: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(mp, "f")); string(b) != "precious" {
		t.Error("volume was changed")
	}
	if out := e.d.Docker(t, "volume", "ls", "-q"); strings.Contains(out, "x2") {
		t.Error("a failed restore left a volume behind")
	}
	if ents, _ := os.ReadDir(readOnly); len(ents) != 0 {
		t.Error("read-only path gained entries")
	}

	t.Run("json error", func(t *testing.T) {
		r := e.run(nil, "backup", "volume/nope", "--json")
		if r.code != 1 || !strings.Contains(r.stderr, `"message_type":"error"`) || r.stdout != "" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}

func (e *env) list(t *testing.T) []summary {
	t.Helper()
	r := e.ok("snapshots", "--json")
	var ps []summary
	if err := jsonUnmarshal(r.stdout, &ps); err != nil {
		t.Fatalf("snapshots --json: %v", err)
	}
	return ps
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
