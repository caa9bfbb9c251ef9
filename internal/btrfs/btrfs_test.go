package btrfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func TestSetSnapshotsEachSubvolumeOnce(t *testing.T) {
	mnt := testutil.Btrfs(t, "256M")
	testutil.Subvolume(t, filepath.Join(mnt, "vol"))
	must(t, os.MkdirAll(filepath.Join(mnt, "plain", "data"), 0o755))
	must(t, os.WriteFile(filepath.Join(mnt, "vol", "a"), []byte("one"), 0o644))
	must(t, os.WriteFile(filepath.Join(mnt, "plain", "data", "b"), []byte("two"), 0o644))
	vol, plain := filepath.Join(mnt, "vol"), filepath.Join(mnt, "plain", "data")

	s, err := Plan([]string{vol, plain})
	must(t, err)
	if s.Count() != 2 {
		t.Fatalf("%d snapshots planned, want 2 (the subvolume and the top level)", s.Count())
	}
	must(t, s.Take())
	// Written after the snapshot: must not be in it.
	must(t, os.WriteFile(filepath.Join(vol, "a"), []byte("changed"), 0o644))
	for p, want := range map[string]string{filepath.Join(s.Path(vol), "a"): "one", filepath.Join(s.Path(plain), "b"): "two"} {
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Path(vol), "x"), nil, 0o644); err == nil {
		t.Fatal("the snapshot is writable")
	}
	must(t, s.Remove())
	if entries, _ := os.ReadDir(mnt); len(entries) != 2 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestNestedSubvolumeIsCaught(t *testing.T) {
	mnt := testutil.Btrfs(t, "256M")
	vol := filepath.Join(mnt, "vol")
	testutil.Subvolume(t, vol)
	testutil.Subvolume(t, filepath.Join(vol, "inner"))
	must(t, os.WriteFile(filepath.Join(vol, "inner", "f"), []byte("x"), 0o644))
	s, err := Plan([]string{vol})
	must(t, err)
	must(t, s.Take())
	defer s.Remove()
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(s.Path(vol), "inner"), &st))
	if err := CheckDir("inner", &st); err == nil {
		t.Fatal("a nested subvolume's empty placeholder passed")
	}
	must(t, unix.Lstat(filepath.Join(s.Path(vol)), &st))
	if err := CheckDir(".", &st); err != nil {
		t.Fatal(err)
	}
}

func TestPlanRefusesOtherStorage(t *testing.T) {
	_, err := Plan([]string{t.TempDir()})
	if ok, _ := IsBtrfs(os.TempDir()); ok {
		t.Fatal("the temporary directory is on btrfs: this test needs another filesystem")
	}
	if !errors.Is(err, ErrNotBtrfs) {
		t.Fatalf("err = %v, want ErrNotBtrfs", err)
	}
}

func TestStaleSnapshotsAreRemoved(t *testing.T) {
	mnt := testutil.Btrfs(t, "256M")
	testutil.Subvolume(t, filepath.Join(mnt, "vol"))
	stale := filepath.Join(mnt, SnapshotDir, "999999999-x")
	must(t, os.MkdirAll(stale, 0o700))
	must(t, Snapshot(filepath.Join(mnt, "vol"), filepath.Join(stale, "0")))
	s, err := Plan([]string{filepath.Join(mnt, "vol")})
	must(t, err)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a dead owner's snapshot is still there: %v", err)
	}
	must(t, s.Remove())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
