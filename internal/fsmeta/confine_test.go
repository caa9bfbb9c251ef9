package fsmeta

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// confineTree makes width×width directories of two files in root, and a
// sidecar that makes a FIFO, links the files, sets an xattr and dates the
// directories in each.
func confineTree(t *testing.T, root string, width int) *Sidecar {
	t.Helper()
	sc := &Sidecar{Version: Version, Xattrs: map[Path]map[string][]byte{}, Times: map[Path]int64{}}
	for i := range width {
		for j := range width {
			rel := fmt.Sprintf("d%d/s%d", i, j)
			mustFiles(t, filepath.Join(root, rel))
			sc.Specials = append(sc.Specials, Special{Path: Path(rel + "/fifo"), Type: "fifo", Mode: 0o666, MtimeNs: 1})
			sc.HardLinks = append(sc.HardLinks, []Path{Path(rel + "/f0"), Path(rel + "/f1")})
			sc.Xattrs[Path(rel+"/f0")] = map[string][]byte{"user.planted": []byte("x")}
			sc.Times[Path(rel)] = 1
		}
	}
	return sc
}

func mustFiles(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"f0", "f1"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// swapDirs replaces the directories d*/s* of root with symlinks to
// outside, moving each aside first, until stop: a container racing the
// restore of its volume. Its own paths never pass through a symlink.
func swapDirs(root, outside string, width int, stop <-chan struct{}) {
	for n := 0; ; n++ {
		for i := range width * (width + 1) {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("d%d", i/(width+1))
			if j := i % (width + 1); j > 0 {
				name += fmt.Sprintf("/s%d", j-1)
			}
			p := filepath.Join(root, name)
			if fi, err := os.Lstat(filepath.Dir(p)); err != nil || !fi.IsDir() {
				continue
			}
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				os.Rename(p, fmt.Sprintf("%s.moved%d", p, n))
				os.Symlink(outside, p)
			}
		}
	}
}

func TestApplyConfinedUnderRacingSymlinks(t *testing.T) {
	const width, tries = 6, 25
	failed := 0
	for range tries {
		base := t.TempDir()
		root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
		sc := confineTree(t, root, width)
		for j := range width { // what d*/s*/f0 reaches through a symlink
			mustFiles(t, filepath.Join(outside, fmt.Sprintf("s%d", j)))
		}
		old := time.Unix(1e9, 0)
		filepath.Walk(outside, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, old, old) })
		before := testutil.Manifest(t, outside)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { swapDirs(root, outside, width, stop) })
		_, err := Apply(t.Context(), root, sc)
		close(stop)
		wg.Wait()
		if err != nil {
			failed++
		}
		after := testutil.Manifest(t, outside)
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("Apply changed the outside directory:\nbefore %v\nafter  %v", before, after)
		}
		var st unix.Stat_t
		if unix.Lstat(outside, &st) == nil && st.Mtim.Sec != old.Unix() {
			t.Fatal("Apply changed the outside directory's time")
		}
	}
	t.Logf("confine: %d/%d sidecars applied, 0 changes outside (%d stopped by a planted symlink)", tries, tries, failed)
	if failed == 0 {
		t.Fatal("the racer never got in the way: the test proves nothing")
	}
}

// TestApplyRefusesPlantedPath: a symlink between the restore's target and
// the sidecar's tree is refused by ApplyAt too.
func TestApplyRefusesPlantedPath(t *testing.T) {
	base, outside := t.TempDir(), t.TempDir()
	mustFiles(t, filepath.Join(outside, "tree"))
	os.Symlink(outside, filepath.Join(base, "vol"))
	sc := &Sidecar{Version: Version, Specials: []Special{{Path: "fifo", Type: "fifo", Mode: 0o644}}}
	if _, err := ApplyAt(t.Context(), base, "vol/tree", sc); err == nil {
		t.Fatal("ApplyAt went through a symlink")
	}
	if _, err := os.Lstat(filepath.Join(outside, "tree", "fifo")); err == nil {
		t.Fatal("ApplyAt wrote outside")
	}
	os.MkdirAll(filepath.Join(base, "real/tree"), 0o755)
	if res, err := ApplyAt(t.Context(), base, "real/tree", sc); err != nil || res.Specials != 1 {
		t.Fatalf("ApplyAt: %+v %v", res, err)
	}
}
