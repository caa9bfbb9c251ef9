package e2e

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck: a clean repository checks clean, reading all data; a damaged
// byte in a pack is found by --read-data and named with its points; a
// missing pack is found from the index alone.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	mp := e.volume("chk")
	defer e.d.Docker(t, "volume", "rm", "chk")
	b := make([]byte, 2<<20)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join(mp, "data"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := e.backup("volume/chk")
	out := e.ok("check", "--read-data", "100%").stdout
	if !strings.Contains(out, "no problems found") || !strings.Contains(out, "read back") {
		t.Fatalf("clean check: %s", out)
	}
	var packs []string
	filepath.WalkDir(filepath.Join(e.repo, "p"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			packs = append(packs, path)
		}
		return nil
	})
	for _, pk := range packs {
		f, err := os.OpenFile(pk, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		f.ReadAt(one, 4096)
		f.WriteAt([]byte{one[0] ^ 0x55}, 4096)
		f.Close()
	}
	if r := e.run(nil, "check"); r.code != 0 || !strings.Contains(r.stdout, "not read back") {
		t.Fatalf("a check without --read-data: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r := e.run(nil, "check", "--read-data", "100", "--json")
	var res struct {
		Problems []struct {
			What   string
			Points []string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if r.code != 1 || len(res.Problems) == 0 || !strings.Contains(strings.Join(res.Problems[0].Points, ","), p.ID) {
		t.Fatalf("damaged pack: exit %d, %+v, stderr %s", r.code, res, r.stderr)
	}
	for _, pk := range packs {
		os.Remove(pk)
	}
	r = e.run(nil, "check")
	if r.code != 1 || !strings.Contains(r.stderr, "missing") || !strings.Contains(r.stderr, p.ID) {
		t.Fatalf("missing packs: exit %d: %s", r.code, r.stderr)
	}
	if r := e.run(nil, "check", "--read-data", "150"); r.code != 1 || !strings.Contains(r.stderr, "0 to 100") {
		t.Fatalf("bad percentage: %d %s", r.code, r.stderr)
	}
}
