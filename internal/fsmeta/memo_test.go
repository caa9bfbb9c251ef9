package fsmeta

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/changetime"
)

// TestXattrMemo: a scan with a memo does not list the xattrs of an inode
// an earlier scan found bare while its change time has not moved, and
// lists them once it moved; a change time not yet quiet, and an inode
// with xattrs, are never remembered.
func TestXattrMemo(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"bare", "tagged"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tagged := filepath.Join(dir, "tagged")
	if err := unix.Lsetxattr(tagged, "user.v", []byte("1"), 0); err != nil {
		t.Fatalf("this test needs user xattrs on %s: %v", dir, err)
	}
	defer func(q, c time.Duration) { changetime.QuietFor, changetime.CoarseQuietFor = q, c }(changetime.QuietFor, changetime.CoarseQuietFor)
	scan := func(memo *XattrMemo) *Sidecar {
		t.Helper()
		sc, _, err := Scan(context.Background(), dir, ScanOptions{Memo: memo})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}

	changetime.QuietFor, changetime.CoarseQuietFor = time.Hour, time.Hour // nothing quiet
	memo := NewXattrMemo(dir)
	scan(memo)
	if len(memo.m) != 0 {
		t.Fatalf("remembered %d inodes whose change time was not quiet", len(memo.m))
	}

	changetime.QuietFor, changetime.CoarseQuietFor = -time.Hour, -time.Hour // every one quiet
	if got := scan(memo); string(got.Xattrs["tagged"]["user.v"]) != "1" {
		t.Fatalf("tagged: %q", got.Xattrs["tagged"])
	}
	if len(memo.m) != 2 { // the root and bare
		t.Fatalf("remembered %d inodes, want 2 (the root and bare, not tagged)", len(memo.m))
	}
	// Mark tagged bare in the memo, at its change time, to see the memo
	// used: its xattr is then not listed.
	var st unix.Stat_t
	if err := unix.Lstat(tagged, &st); err != nil {
		t.Fatal(err)
	}
	memo.m[inodeKey{st.Dev, st.Ino}] = st.Ctim
	if got := scan(memo); got.Xattrs["tagged"] != nil {
		t.Errorf("tagged listed although the memo has it bare at its change time: %q", got.Xattrs["tagged"])
	}
	// Its change time moves: listed again.
	if err := unix.Lsetxattr(tagged, "user.v", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if got := scan(memo); string(got.Xattrs["tagged"]["user.v"]) != "2" {
		t.Errorf("tagged after its xattr changed: %q, want 2", got.Xattrs["tagged"])
	}
}

// TestXattrMemoKeptInFile: a memo saved by one scan and loaded by the
// next holds the inodes found bare, and no deleted one; an xattr set
// since is listed (its change time moved); a torn or foreign file is an
// empty memo; a change time of zero never vouches.
func TestXattrMemoKeptInFile(t *testing.T) {
	dir, file := t.TempDir(), filepath.Join(t.TempDir(), "memo")
	for _, n := range []string{"bare", "gone", "tagged"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "tagged"), "user.v", []byte("1"), 0); err != nil {
		t.Fatalf("this test needs user xattrs on %s: %v", dir, err)
	}
	defer func(q, c time.Duration) { changetime.QuietFor, changetime.CoarseQuietFor = q, c }(changetime.QuietFor, changetime.CoarseQuietFor)
	changetime.QuietFor, changetime.CoarseQuietFor = -time.Hour, -time.Hour // every one quiet
	// scan loads the memo, scans with it and saves it: the sidecar, and
	// how many inodes were loaded and kept.
	scan := func() (*Sidecar, int, int) {
		t.Helper()
		memo := LoadXattrMemo(dir, file)
		loaded := len(memo.m)
		sc, _, err := Scan(context.Background(), dir, ScanOptions{Memo: memo})
		if err != nil {
			t.Fatal(err)
		}
		if err := memo.Save(file); err != nil {
			t.Fatal(err)
		}
		return sc, loaded, len(memo.next)
	}
	if _, loaded, kept := scan(); loaded != 0 || kept != 3 {
		t.Fatalf("first scan: loaded %d inodes from no file, kept %d (want the root, bare and gone)", loaded, kept)
	}
	if err := os.Remove(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	sc, loaded, kept := scan()
	if loaded != 3 || kept != 2 {
		t.Errorf("loaded %d inodes (want the root, bare and gone), kept %d (want the root and bare)", loaded, kept)
	}
	if string(sc.Xattrs["tagged"]["user.v"]) != "1" {
		t.Errorf("tagged: %q", sc.Xattrs["tagged"])
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "bare"), "user.v", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if sc, _, _ := scan(); string(sc.Xattrs["bare"]["user.v"]) != "new" {
		t.Errorf("an xattr set since the memo was saved is missed: %q", sc.Xattrs["bare"])
	}
	if memo := LoadXattrMemo(dir, file); len(memo.m) != 1 { // the root; bare has one now
		t.Errorf("after bare got an xattr: %d inodes, want 1", len(memo.m))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append([]byte("x"), b[1:]...), nil} {
		if err := os.WriteFile(file, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if memo := LoadXattrMemo(dir, file); len(memo.m) != 0 {
			t.Errorf("a torn or foreign file gave %d inodes", len(memo.m))
		}
	}
	defer func(n int) { maxKept = n }(maxKept)
	maxKept = 1
	if _, _, kept := scan(); kept != 1 {
		t.Errorf("kept %d inodes, bound 1", kept)
	}
	zero := &unix.Stat_t{Dev: 1, Ino: 2}
	memo := LoadXattrMemo(dir, file)
	memo.m[inodeKey{1, 2}] = unix.Timespec{}
	if memo.bare(zero) {
		t.Error("a change time of zero vouched for an inode")
	}
}
