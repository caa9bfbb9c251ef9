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

// TestXattrMemo: a scan with a memo reads the xattrs of an inode whose
// change time moved, and takes the memo's for one whose did not; a
// change time not yet quiet is never remembered.
func TestXattrMemo(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"changed", "same"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(p, "user.v", []byte("1"), 0); err != nil {
			t.Fatalf("this test needs user xattrs on %s: %v", dir, err)
		}
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
	scan(memo)
	if len(memo.m) != 3 { // the root and both files
		t.Fatalf("remembered %d inodes, want 3", len(memo.m))
	}
	// Mark what the memo holds for "same", to see it used.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "same"), &st); err != nil {
		t.Fatal(err)
	}
	k := inodeKey{st.Dev, st.Ino}
	memo.m[k] = xattrMemo{ctime: memo.m[k].ctime, x: map[string][]byte{"user.v": []byte("from the memo")}}
	if err := unix.Lsetxattr(filepath.Join(dir, "changed"), "user.v", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	got := scan(memo)
	if v := string(got.Xattrs["changed"]["user.v"]); v != "2" {
		t.Errorf("changed: %q, want the new value 2", v)
	}
	if v := string(got.Xattrs["same"]["user.v"]); v != "from the memo" {
		t.Errorf("same: %q, want the memo's", v)
	}
}
