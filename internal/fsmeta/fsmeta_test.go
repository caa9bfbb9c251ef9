package fsmeta

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// kopiaLikeCopy copies a tree the way kopia's restore leaves it: regular
// files as separate copies, directories, symlinks, owners, modes and file
// times; no hard links, xattrs, FIFOs or devices; directories dated by their
// newest entry; names' invalid UTF-8 bytes as U+FFFD.
func kopiaLikeCopy(t *testing.T, src, dst string) {
	t.Helper()
	var dirs []string
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, storedName(rel))
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, out)
		case unix.S_IFREG:
			// kopia restores sparse files sparse when asked.
			if out, err := exec.Command("cp", "--sparse=always", p, out).CombinedOutput(); err != nil {
				return fmt.Errorf("cp: %v: %s", err, out)
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		default:
			return nil // kopia skips the rest
		}
		unix.Lchown(out, int(st.Uid), int(st.Gid))
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			os.Chmod(out, os.FileMode(st.Mode&0o777)|modeBits(st.Mode))
		}
		ts := []unix.Timespec{st.Mtim, st.Mtim}
		return unix.UtimesNanoAt(unix.AT_FDCWD, out, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
	// kopia dates a restored directory by the newest entry below it.
	for _, d := range dirs {
		ts := []unix.Timespec{unix.NsecToTimespec(1), unix.NsecToTimespec(1)}
		unix.UtimesNanoAt(unix.AT_FDCWD, d, ts, 0)
	}
}

func modeBits(m uint32) os.FileMode {
	var fm os.FileMode
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

func TestScanApplyRestoresEverything(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	testutil.MakeEdgeTree(t, src)
	// A socket cannot be kept and must be listed.
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A link whose other name is outside the tree still groups the inside names.
	os.Link(filepath.Join(src, "hard", "a"), filepath.Join(t.TempDir(), "outside"))

	sc, stats, err := Scan(t.Context(), src, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files == 0 || stats.Dirs == 0 || stats.Symlinks != 4 || stats.Specials != 2 || stats.Bytes < 64<<20 {
		t.Errorf("stats %+v", stats)
	}
	if len(sc.NotKept) != 1 || sc.NotKept[0].Path != "sock" {
		t.Errorf("not kept: %+v", sc.NotKept)
	}
	b, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sc2, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "sock")) // compare without it (the root's own times are not compared)
	dst := filepath.Join(t.TempDir(), "dst")
	kopiaLikeCopy(t, src, dst)
	res, err := Apply(t.Context(), dst, sc2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Links != 2 || res.Specials != 2 || res.Xattrs < 5 || len(res.NotKept) != 0 {
		t.Errorf("apply result %+v", res)
	}
	testutil.RequireSameTree(t, src, dst)
}

func TestApplyRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "link"))
	for _, p := range []Path{"../x", "/abs", "d/../../x", "link/passwd", "", "d/./x"} {
		sc := &Sidecar{Version: 1, Xattrs: map[Path]map[string][]byte{p: {"user.x": []byte("y")}}}
		if _, err := Apply(t.Context(), root, sc); err == nil {
			t.Errorf("Apply accepted path %q", p)
		}
	}
	sc := &Sidecar{Version: 1, Specials: []Special{{Path: "link/evil", Type: "fifo", Mode: 0o644}}}
	if _, err := Apply(t.Context(), root, sc); err == nil {
		t.Error("Apply created a file through a symlink")
	}
	if _, err := os.Lstat("/etc/evil"); err == nil {
		t.Fatal("wrote outside the root")
	}
}

func TestPathRoundTrip(t *testing.T) {
	for _, p := range []Path{"plain", "café/日本", "bad\xffname", "b64:looks-encoded", "new\nline"} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Path
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("%q -> %q -> %q, %v", p, b, q, err)
		}
	}
	if got := storedName("a\xff\xfeb/é"); got != "a\uFFFD\uFFFDb/é" {
		t.Errorf("storedName = %q", got)
	}
}

func TestUnmarshalRefusesNewerFormat(t *testing.T) {
	if _, err := Unmarshal([]byte(`{"version":99}`)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("err = %v", err)
	}
}

func TestScanHonoursExcludeAndContext(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "keep"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(root, "skip.log"), []byte("s"), 0o644)
	_, st, err := Scan(t.Context(), root, ScanOptions{Exclude: func(rel string, _ bool) bool { return strings.HasSuffix(rel, ".log") }})
	if err != nil || st.Files != 1 {
		t.Fatalf("files %d, %v", st.Files, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := Scan(ctx, root, ScanOptions{}); err == nil {
		t.Fatal("scan ignored a cancelled context")
	}
}

func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	for i := range 200 {
		d := filepath.Join(root, "d"+string(rune('a'+i%26)), "s"+string(rune('a'+i/26)))
		os.MkdirAll(d, 0o755)
		for j := range 100 {
			os.WriteFile(filepath.Join(d, "f"+string(rune('a'+j%26))+string(rune('a'+j/26))), []byte("x"), 0o644)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := Scan(context.Background(), root, ScanOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSub(t *testing.T) {
	sc := &Sidecar{Version: 1,
		HardLinks: [][]Path{{"a/x", "a/y", "b/z"}},
		Xattrs:    map[Path]map[string][]byte{"a/x": {"user.k": []byte("v")}, "b/z": {"user.k": []byte("w")}},
		Specials:  []Special{{Path: "a/fifo", Type: "fifo"}},
		Times:     map[Path]int64{"a": 5, "a/sub": 6, ".": 1},
		Renames:   []Rename{{Path: "a/bad\xff", Stored: "a/bad\uFFFD"}},
	}
	d := sc.Sub("a", false)
	if len(d.HardLinks) != 1 || len(d.HardLinks[0]) != 2 || d.HardLinks[0][0] != "x" {
		t.Errorf("links %v", d.HardLinks)
	}
	if len(d.Xattrs) != 1 || d.Xattrs["x"] == nil || len(d.Specials) != 1 || d.Specials[0].Path != "fifo" {
		t.Errorf("xattrs %v specials %v", d.Xattrs, d.Specials)
	}
	if d.Times["."] != 5 || d.Times["sub"] != 6 || len(d.Times) != 2 {
		t.Errorf("times %v", d.Times)
	}
	if len(d.Renames) != 1 || d.Renames[0].Path != "bad\xff" || d.Renames[0].Stored != "bad\uFFFD" {
		t.Errorf("renames %v", d.Renames)
	}
	f := sc.Sub("a/x", true)
	if len(f.HardLinks) != 0 || f.Xattrs["x"] == nil || len(f.Xattrs) != 1 {
		t.Errorf("file sub: %+v", f)
	}
}
