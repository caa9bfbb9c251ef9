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
