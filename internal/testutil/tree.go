package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// MakeEdgeTree fills dir with every case a faithful backup must keep.
func MakeEdgeTree(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("make edge tree: %v", err)
		}
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	file := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		must(os.MkdirAll(filepath.Dir(p(rel)), 0o755))
		must(os.WriteFile(p(rel), data, 0o600))
		must(os.Chmod(p(rel), mode))
	}
	must(os.MkdirAll(dir, 0o755))
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	file("content/big.bin", big, 0o644)
	file("content/empty", nil, 0o644)
	file("modes/ro", []byte("read only"), 0o400)
	file("modes/private", []byte("private"), 0o600)
	file("modes/exec", []byte("#!/bin/sh\necho hi\n"), 0o755)
	file("modes/setuid", []byte("suid"), 0o4755)
	file("modes/setgid", []byte("sgid"), 0o2755)
	must(os.MkdirAll(p("modes/setgid-dir"), 0o755))
	must(os.Chmod(p("modes/setgid-dir"), 0o2775))
	must(os.MkdirAll(p("modes/sticky"), 0o755))
	must(os.Chmod(p("modes/sticky"), 0o1777))
	file("owners/user1000", []byte("owned by 1000"), 0o644)
	must(os.Lchown(p("owners/user1000"), 1000, 1000))
	file("owners/mixed", []byte("uid 0 gid 1000"), 0o640)
	must(os.Lchown(p("owners/mixed"), 0, 1000))
	must(os.MkdirAll(p("links/dir"), 0o755))
	file("links/target.txt", []byte("target"), 0o644)
	must(os.Symlink("target.txt", p("links/relative")))
	must(os.Symlink(p("links/target.txt"), p("links/absolute")))
	must(os.Symlink("does-not-exist", p("links/dangling")))
	must(os.Symlink("dir", p("links/to-dir")))
	must(os.Lchown(p("links/relative"), 1000, 1000))
	file("hard/a", []byte("one inode, three names"), 0o640)
	must(os.MkdirAll(p("hard/other"), 0o755))
	must(os.Link(p("hard/a"), p("hard/b")))
	must(os.Link(p("hard/a"), p("hard/other/c")))
	f, err := os.Create(p("sparse.img"))
	must(err)
	for _, off := range []int64{0, 32 << 20, 64<<20 - 4096} {
		_, err := f.WriteAt([]byte(strings.Repeat("sparse", 600)), off)
		must(err)
	}
	must(f.Truncate(64 << 20))
	must(f.Close())
	must(os.MkdirAll(p("empty/nested/deeper"), 0o755))
	for _, name := range []string{"café é", "日本語", "emoji 🚀", "with space", "new\nline", "-leading-dash", `back\slash`, strings.Repeat("n", 255), "bad\xffutf8"} {
		file("names/"+name, []byte(name), 0o644)
	}
	deep := "deep"
	for i := 0; i < 30; i++ {
		deep = filepath.Join(deep, fmt.Sprintf("d%02d", i))
	}
	file(filepath.Join(deep, "leaf"), []byte("deep"), 0o644)
	file("xattr/file", []byte("with xattrs"), 0o644)
	must(unix.Lsetxattr(p("xattr/file"), "user.comment", []byte("kept"), 0))
	must(unix.Lsetxattr(p("xattr/file"), "user.binary", []byte{0, 1, 2, 255}, 0))
	must(unix.Lsetxattr(p("xattr"), "user.dir", []byte("on a dir"), 0))
	file("acl/file", []byte("with an ACL"), 0o640)
	must(os.MkdirAll(p("acl/dir"), 0o750))
	for _, args := range [][]string{{"-m", "u:1000:rw", p("acl/file")}, {"-d", "-m", "g:1000:rx", p("acl/dir")}} {
		if out, err := exec.Command("setfacl", args...).CombinedOutput(); err != nil {
			t.Fatalf("setfacl %v: %v: %s (install the acl package: scripts/install-deps)", args, err, out)
		}
	}
	must(os.MkdirAll(p("special"), 0o755))
	must(unix.Mkfifo(p("special/fifo"), 0o640))
	must(unix.Mknod(p("special/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	// Times last: the 2001 mtimes, with nanoseconds, of files and dirs.
	old := time.Date(2001, 2, 3, 4, 5, 6, 789012345, time.UTC)
	must(filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
}

// Manifest describes a tree, one sorted line per entry: everything a
// faithful restore must bring back. Two trees are the same when their
// manifests are equal; the root's own times are left out.
func Manifest(t testing.TB, dir string) []string {
	t.Helper()
	var lines []string
	inodes := map[[2]uint64][]string{}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		line := fmt.Sprintf("%s type=%o mode=%04o uid=%d gid=%d", strconv.Quote(rel), typ>>12, st.Mode&07777, st.Uid, st.Gid)
		if rel != "." {
			line += fmt.Sprintf(" mtime=%d", st.Mtim.Nano())
		}
		switch typ {
		case unix.S_IFREG:
			sum, err := digest(path)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sha256=%s sparse=%v", st.Size, sum, st.Blocks*512 < st.Size)
			if st.Nlink > 1 {
				k := [2]uint64{uint64(st.Dev), st.Ino}
				inodes[k] = append(inodes[k], rel)
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			line += " target=" + strconv.Quote(target)
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		line += xattrs(path)
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("manifest of %s: %v", dir, err)
	}
	for _, names := range inodes {
		sort.Strings(names)
		for _, n := range names {
			lines = append(lines, fmt.Sprintf("%s linked-with=%s", strconv.Quote(n), strconv.Quote(strings.Join(names, "|"))))
		}
	}
	sort.Strings(lines)
	return lines
}

func digest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func xattrs(path string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err != nil || n == 0 {
		return ""
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, " xattr:%s=%s", name, hex.EncodeToString(v[:m]))
	}
	return b.String()
}

// RequireSameTree fails the test when two trees differ, showing the first
// differing lines.
func RequireSameTree(t testing.TB, want, got string) {
	t.Helper()
	a, b := Manifest(t, want), Manifest(t, got)
	inA := map[string]bool{}
	for _, l := range a {
		inA[l] = true
	}
	inB := map[string]bool{}
	for _, l := range b {
		inB[l] = true
	}
	var diff []string
	for _, l := range a {
		if !inB[l] {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range b {
		if !inA[l] {
			diff = append(diff, "+ "+l)
		}
	}
	if len(diff) > 0 {
		if len(diff) > 40 {
			diff = append(diff[:40], "...")
		}
		t.Fatalf("trees %s and %s differ:\n%s", want, got, strings.Join(diff, "\n"))
	}
}
