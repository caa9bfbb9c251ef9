package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// blobFiles lists a filesystem repository's blob files under prefix/.
func blobFiles(repo, prefix string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(repo, prefix), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".f") {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// damagePoint is a restore point with its own data and the blobs its
// backup wrote, relative to the repository.
type damagePoint struct {
	id, volume string
	data       []byte
	blobs      map[string][]string // prefix → new blobs: p data, q metadata, x index
}

// TestDamage: four points of two units; on a fresh copy of the repository
// for each class of damage (flipped bytes in a pack, a deleted pack, a
// truncated index blob, a deleted manifest blob) check fails naming
// exactly the points hurt, every other point lists and restores with its
// content, and after repair a new backup works.
func TestDamage(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	var points []*damagePoint
	for _, v := range []string{"dmg-a", "dmg-b"} {
		mp := e.volume(v)
		t.Cleanup(func() { e.d.Docker(t, "volume", "rm", v) })
		for range 2 {
			p := &damagePoint{volume: v, data: make([]byte, 1<<20), blobs: map[string][]string{}}
			rand.Read(p.data)
			if err := os.WriteFile(filepath.Join(mp, "data"), p.data, 0o644); err != nil {
				t.Fatal(err)
			}
			before := map[string][]string{}
			for _, pre := range []string{"p", "q", "x"} {
				before[pre] = blobFiles(e.repo, pre)
			}
			p.id = e.backup("volume/" + v).ID
			for _, pre := range []string{"p", "q", "x"} {
				for _, b := range blobFiles(e.repo, pre) {
					if !slices.Contains(before[pre], b) {
						rel, _ := filepath.Rel(e.repo, b)
						p.blobs[pre] = append(p.blobs[pre], rel)
					}
				}
				if len(p.blobs[pre]) == 0 {
					t.Fatalf("backup %s wrote no %s blob", p.id, pre)
				}
			}
			points = append(points, p)
		}
	}
	a1, a2, b1, b2 := points[0], points[1], points[2], points[3]
	classes := []struct {
		name   string
		damage func(repo string)
		hurt   []*damagePoint // named by check
		lost   []*damagePoint // gone from the listing until repair, or for ever
		check  []string       // extra check arguments
		says   string         // what check's stderr must say
		// repaired: repair rebuilds the index and brings the lost points
		// back; nothing stays lost.
		repaired bool
	}{
		{name: "flipped pack bytes", check: []string{"--read-data", "100"}, hurt: []*damagePoint{a1}, damage: func(repo string) {
			path := filepath.Join(repo, a1.blobs["p"][0])
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := len(b) / 2; i < len(b)/2+16; i++ {
				b[i] ^= 0x55
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		// b2 holds b1's unchanged files (lifeboat.json, the volume's
		// metadata), deduplicated into b1's pack: it is hurt too.
		{name: "deleted pack", hurt: []*damagePoint{b1, b2}, damage: func(repo string) {
			for _, p := range b1.blobs["p"] {
				if err := os.Remove(filepath.Join(repo, p)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "truncated index blob", lost: []*damagePoint{a2}, says: "lifeboat repair", repaired: true, damage: func(repo string) {
			for _, x := range a2.blobs["x"] {
				if err := os.Truncate(filepath.Join(repo, x), 20); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "deleted manifest blob", lost: []*damagePoint{b2}, says: "restore point record(s) lost", damage: func(repo string) {
			for _, q := range b2.blobs["q"] {
				if err := os.Remove(filepath.Join(repo, q)); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	detected, restored, unaffected, recovered := 0, 0, 0, 0
	for _, c := range classes {
		t.Run(c.name, func(t *testing.T) {
			cp := copyRepo(t, e.repo)
			c.damage(cp)
			env := []string{"LIFEBOAT_REPOSITORY=" + cp}
			r := e.run(env, append([]string{"check", "--json"}, c.check...)...)
			var res checkJSON
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 {
				t.Fatalf("check: exit %d, %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
			}
			var want []string
			for _, p := range c.hurt {
				want = append(want, p.id)
			}
			named := res.pointsNamed()
			slices.Sort(named)
			named = slices.Compact(named)
			slices.Sort(want)
			if !slices.Equal(named, want) {
				t.Fatalf("check named %v, want %v\n%s", named, want, r.stdout)
			}
			if !strings.Contains(r.stdout+r.stderr, c.says) {
				t.Fatalf("check does not say %q:\n%s\n%s", c.says, r.stdout, r.stderr)
			}
			detected++
			// Every point not hurt lists and restores, byte for byte.
			n, ok := e.restoreAll(t, env, points, c.hurt, c.lost)
			unaffected += n
			restored += ok
			if len(c.lost) > 0 {
				// A backup cannot go past a lost index blob or record
				// as a listing does: it says to repair.
				if r := e.run(env, "backup", "volume/dmg-a"); r.code != 1 || !strings.Contains(r.stderr, "lifeboat repair") {
					t.Fatalf("backup before repair: exit %d, want 1 with a hint to repair\n%s", r.code, r.stderr)
				}
			}
			rr := e.run(env, append([]string{"repair"}, c.check...)...)
			if c.repaired {
				if rr.code != 0 || !strings.Contains(rr.stdout, "set aside") || !strings.Contains(rr.stdout, "no problems found") {
					t.Fatalf("repair: exit %d\n%s\n%s", rr.code, rr.stdout, rr.stderr)
				}
				// Nothing is lost any more: every point lists and restores.
				n, ok := e.restoreAll(t, env, c.lost, nil, nil)
				recovered += ok
				if n != ok {
					t.Fatal("a point repair brought back did not restore")
				}
			} else if rr.code != 1 {
				t.Fatalf("repair of a repository that lost data: exit %d, want 1\n%s\n%s", rr.code, rr.stdout, rr.stderr)
			}
			e.runOK(t, env, "backup", "volume/dmg-a")
		})
	}
	t.Logf("damage: %d/%d classes detected, %d/%d unaffected points restored, %d point(s) brought back by repair", detected, len(classes), restored, unaffected, recovered)
	if detected != len(classes) || restored != unaffected {
		t.Fatal("some damage went undetected, or an unaffected point did not restore")
	}
}

// restoreAll checks that the listing holds every point of points but the
// lost ones, and restores each neither hurt nor lost with its content. It
// returns how many it tried and how many came back whole.
func (e *env) restoreAll(t *testing.T, env []string, points, hurt, lost []*damagePoint) (tried, ok int) {
	t.Helper()
	var listed []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(e.runOK(t, env, "snapshots", "--json").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range listed {
		ids = append(ids, l.ID)
	}
	for _, p := range points {
		if slices.Contains(lost, p) {
			if slices.Contains(ids, p.id) {
				t.Errorf("point %s listed, though its record is unreadable", p.id)
			}
			continue
		}
		if !slices.Contains(ids, p.id) {
			t.Errorf("point %s not listed", p.id)
			continue
		}
		if slices.Contains(hurt, p) {
			continue
		}
		tried++
		dst := t.TempDir()
		e.runOK(t, env, "restore", p.id, "--target", dst)
		if got := findFile(t, dst, "data"); !bytes.Equal(got, p.data) {
			t.Errorf("point %s restored other content (%d bytes)", p.id, len(got))
			continue
		}
		ok++
	}
	return tried, ok
}

// runOK runs lifeboat with extra variables and fails unless it exits 0.
func (e *env) runOK(t *testing.T, extra []string, args ...string) result {
	t.Helper()
	r := e.run(extra, args...)
	if r.code != 0 {
		t.Fatalf("lifeboat %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// findFile reads the one file called name beneath dir.
func findFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			found = append(found, path)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("files called %s under %s: %v", name, dir, found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrapFlags: a negative --keep-* count is refused before anything is
// forgotten, and an empty password file is exit 12 with a hint.
func TestTrapFlags(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	mp := e.volume("trap-v")
	t.Cleanup(func() { e.d.Docker(t, "volume", "rm", "trap-v") })
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup("volume/trap-v")
	e.backup("volume/trap-v")
	for _, flag := range []string{"--keep-last", "--keep-hourly", "--keep-daily", "--keep-weekly", "--keep-monthly", "--keep-yearly"} {
		r := e.run(nil, "forget", "volume/trap-v", flag, "-1")
		if r.code != 1 || !strings.Contains(r.stderr, "cannot be negative") {
			t.Fatalf("forget %s -1: exit %d\n%s", flag, r.code, r.stderr)
		}
	}
	var listed []json.RawMessage
	if err := json.Unmarshal([]byte(e.ok("snapshots", "--json").stdout), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("after refused forgets: %d points, %v", len(listed), err)
	}
	empty := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run([]string{"LIFEBOAT_PASSWORD_FILE=" + empty}, "snapshots")
	if r.code != 12 || !strings.Contains(r.stderr, "empty password file") || !strings.Contains(r.stderr, "LIFEBOAT_PASSWORD_FILE") {
		t.Fatalf("empty password file: exit %d\n%s", r.code, r.stderr)
	}
}
