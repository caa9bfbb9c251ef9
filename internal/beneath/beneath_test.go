package beneath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenDirRefusesSymlinksAndEscapes(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	root := filepath.Join(base, "root")
	for _, d := range []string{"root/d/e", "root/f"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, dest := range map[string]string{
		"root/out": outside, "root/d/up": "..", "root/d/in": "e", "root/d/e/abs": "/",
	} {
		if err := os.Symlink(dest, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "openat2", true: "walk"}[walk], func(t *testing.T) {
			noOpenat2.Store(walk)
			t.Cleanup(func() { noOpenat2.Store(false) })
			r, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, ok := range []string{".", "d", "d/e", "f"} {
				d, err := r.OpenDir(ok)
				if err != nil {
					t.Errorf("OpenDir(%q): %v", ok, err)
					continue
				}
				d.Close()
			}
			for _, bad := range []string{"out", "d/up", "d/in", "d/e/abs", "file", "..", "../root", "d/../d", "/d", "", "d/", "./d", "missing"} {
				if d, err := r.OpenDir(bad); err == nil {
					d.Close()
					t.Errorf("OpenDir(%q) succeeded", bad)
				}
				if d, _, err := r.Parent(bad + "/x"); err == nil {
					d.Close()
					t.Errorf("Parent(%q) succeeded", bad+"/x")
				}
			}
			d, name, err := r.Parent("d/e/abs")
			if err != nil || name != "abs" || d.Name() != root+"/d/e" {
				t.Fatalf("Parent(d/e/abs) = %v, %q, %v", d, name, err)
			}
			d.Close()
		})
	}
}
