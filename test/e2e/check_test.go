package e2e

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// packFiles lists a filesystem repository's data packs (p*.f, sharded
// into subdirectories of p/).
func packFiles(t *testing.T, repo string) []string {
	t.Helper()
	var packs []string
	filepath.WalkDir(filepath.Join(repo, "p"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".f") {
			packs = append(packs, path)
		}
		return nil
	})
	return packs
}

// copyRepo copies the repository directory, so each damage is done to a
// copy of its own.
func copyRepo(t *testing.T, repo string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	if out, err := exec.Command("cp", "-a", repo, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the repository: %v: %s", err, out)
	}
	return dst
}

type checkJSON struct {
	Points       int  `json:"points"`
	ReadFiles    int  `json:"read_files"`
	DataVerified bool `json:"data_verified"`
	Problems     []struct {
		What   string   `json:"what"`
		Points []string `json:"points"`
		Paths  []string `json:"paths"`
	} `json:"problems"`
}

func (c checkJSON) pointsNamed() []string {
	var ids []string
	for _, p := range c.Problems {
		ids = append(ids, p.Points...)
	}
	return ids
}

// TestCheck: a clean repository checks clean reading all its data; on
// copies of it, a deleted pack is found from the index alone and a
// damaged one by --read-data, each naming the restore point it hurts and
// not the other one.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	ids := map[string]string{}
	var packsA []string
	for _, v := range []string{"chk-a", "chk-b"} {
		mp := e.volume(v)
		t.Cleanup(func() { e.d.Docker(t, "volume", "rm", v) })
		b := make([]byte, 2<<20)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(mp, "data"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := packFiles(t, e.repo)
		ids[v] = e.backup("volume/" + v).ID
		if v == "chk-a" {
			for _, p := range packFiles(t, e.repo) {
				if !slices.Contains(before, p) {
					packsA = append(packsA, p)
				}
			}
		}
	}
	if len(packsA) == 0 {
		t.Fatal("the first backup wrote no data pack")
	}

	r := e.ok("check", "--read-data", "100%")
	if !strings.Contains(r.stdout, "no problems found") || !strings.Contains(r.stdout, "read back") {
		t.Fatalf("clean check: %s", r.stdout)
	}
	var clean checkJSON
	if err := json.Unmarshal([]byte(e.ok("check", "--read-data", "100", "--json").stdout), &clean); err != nil || clean.Points != 2 || !clean.DataVerified || clean.ReadFiles == 0 {
		t.Fatalf("clean check --json: %+v %v", clean, err)
	}

	t.Run("deleted pack", func(t *testing.T) {
		cp := copyRepo(t, e.repo)
		rel, _ := filepath.Rel(e.repo, packsA[0])
		if err := os.Remove(filepath.Join(cp, rel)); err != nil {
			t.Fatal(err)
		}
		r := e.run([]string{"LIFEBOAT_REPOSITORY=" + cp}, "check")
		if r.code != 1 || !strings.Contains(r.stderr, "missing") || !strings.Contains(r.stderr, ids["chk-a"]) || strings.Contains(r.stderr, ids["chk-b"]) {
			t.Fatalf("exit %d, want 1 naming %s and not %s:\n%s", r.code, ids["chk-a"], ids["chk-b"], r.stderr)
		}
		last := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if summary := last[len(last)-1]; !strings.Contains(summary, "1 of 2 restore points affected") || !strings.Contains(summary, "back up their units again") {
			t.Fatalf("last line is not a summary with a hint: %q", summary)
		}
	})

	t.Run("damaged pack", func(t *testing.T) {
		cp := copyRepo(t, e.repo)
		rel, _ := filepath.Rel(e.repo, packsA[0])
		path := filepath.Join(cp, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) / 3; i < len(b)/3+16; i++ {
			b[i] ^= 0x55
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		env := []string{"LIFEBOAT_REPOSITORY=" + cp}
		// Without --read-data nothing is read: it must pass, and say so.
		r := e.run(env, "check", "--json")
		var quick checkJSON
		if err := json.Unmarshal([]byte(r.stdout), &quick); err != nil || r.code != 0 || quick.DataVerified || quick.ReadFiles != 0 {
			t.Fatalf("check without --read-data: exit %d, %+v %v\n%s", r.code, quick, err, r.stderr)
		}
		if r := e.run(env, "check"); r.code != 0 || !strings.Contains(r.stdout, "not read back") {
			t.Fatalf("check without --read-data: exit %d: %s", r.code, r.stdout)
		}
		r = e.run(env, "check", "--read-data", "100", "--json")
		var full checkJSON
		if err := json.Unmarshal([]byte(r.stdout), &full); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		named := full.pointsNamed()
		if r.code != 1 || !slices.Contains(named, ids["chk-a"]) || slices.Contains(named, ids["chk-b"]) || len(full.Problems[0].Paths) == 0 {
			t.Fatalf("damaged pack: exit %d, %+v\nstderr %s", r.code, full, r.stderr)
		}
		if !strings.Contains(full.Problems[0].Paths[0], "volumes/chk-a/data") {
			t.Fatalf("the damaged file is not named: %v", full.Problems[0].Paths)
		}
	})

	if r := e.run(nil, "check", "--read-data", "150"); r.code != 1 || !strings.Contains(r.stderr, "0 to 100") {
		t.Fatalf("bad percentage: %d %s", r.code, r.stderr)
	}
}
