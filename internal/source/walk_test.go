package source

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// edgeTree makes a tree of what a walk must describe as kopia's localfs
// does and as the sidecar scan records: setuid, setgid and sticky modes,
// another owner, a FIFO, a symlink, hard links, an xattr, a name that is
// not UTF-8, nesting, and an excluded directory.
func edgeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "skipped/deep"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a/b/c/file"), []byte("content"), 0o640))
	must(os.WriteFile(filepath.Join(dir, "skipped/deep/x"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "suid"), 0o4755|os.ModeSetuid|os.ModeSetgid))
	must(os.Chmod(filepath.Join(dir, "a"), 0o1777|os.ModeSticky))
	must(os.Chown(filepath.Join(dir, "a/b/c/file"), 1234, 5678))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(os.Symlink("a/b/c/file", filepath.Join(dir, "link")))
	must(os.Link(filepath.Join(dir, "a/b/c/file"), filepath.Join(dir, "hard")))
	must(os.WriteFile(filepath.Join(dir, "bad\xffname"), []byte("y"), 0o600))
	// Some in a subdirectory too, which a walk on two cores lists apart.
	must(unix.Mkfifo(filepath.Join(dir, "a/fifo2"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "a/b/bad\xfe"), nil, 0o600))
	must(os.WriteFile(filepath.Join(dir, "a-c"), nil, 0o600))
	must(os.Link(filepath.Join(dir, "a/b/c/file"), filepath.Join(dir, "a/hard2")))
	if err := unix.Setxattr(filepath.Join(dir, "suid"), "user.lifeboat", []byte("v"), 0); err != nil && err != unix.ENOTSUP {
		t.Fatal(err)
	}
	return dir
}

type entryFacts struct {
	Name       string
	Size       int64
	Mode       os.FileMode
	MtimeNanos int64
	Owner      fs.OwnerInfo
	Device     fs.DeviceInfo
	Kind       string
}

// facts lists every entry under d, depth first, as kopia's uploader sees it.
func facts(t *testing.T, d fs.Directory, prefix string) []entryFacts {
	t.Helper()
	var out []entryFacts
	err := fs.IterateEntries(context.Background(), d, func(ctx context.Context, e fs.Entry) error {
		f := entryFacts{Name: prefix + e.Name(), Size: e.Size(), Mode: e.Mode(), MtimeNanos: e.ModTime().UnixNano(), Owner: e.Owner(), Device: e.Device()}
		switch e := e.(type) {
		case fs.Directory:
			f.Kind, f.Size = "dir", 0 // a directory's size is the file system's, not compared
			out = append(out, f)
			out = append(out, facts(t, e, f.Name+"/")...)
			return nil
		case fs.Symlink:
			target, err := e.Readlink(ctx)
			if err != nil {
				return err
			}
			f.Kind = "symlink " + target
		case fs.File:
			f.Kind = "file"
		case fs.ErrorEntry:
			f.Kind = "error"
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedFacts are facts of the tree at root in name order: kopia sorts,
// the file system's order is its own.
func sortedFacts(t *testing.T, root Entry) []entryFacts {
	t.Helper()
	f := facts(t, root.(fs.Directory), "")
	slices.SortFunc(f, func(a, b entryFacts) int { return strings.Compare(a.Name, b.Name) })
	return f
}

// TestCaptureDescribesEntriesAsKopiaDoes: the frozen walk stats each
// entry itself (from its directory's descriptor) instead of through
// kopia's localfs; kopia must see the same entries, with the same modes,
// owners, times and devices, as the live pass's localfs walk gave it, or
// its cache would miss and the point would differ.
func TestCaptureDescribesEntriesAsKopiaDoes(t *testing.T) {
	dir := edgeTree(t)
	skip := func(rel string, isDir bool) bool { return rel == "skipped" && isDir }
	live, err := Filtered(dir, "vol", skip)
	if err != nil {
		t.Fatal(err)
	}
	root, err := Capture(context.Background(), dir, "vol", skip, NewSeen(), &Stage{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedFacts(t, root), sortedFacts(t, live); !reflect.DeepEqual(got, want) {
		t.Errorf("captured entries differ from localfs's:\n got %+v\nwant %+v", got, want)
	} else if len(want) < 9 {
		t.Fatalf("the live walk saw only %d entries: %+v", len(want), want)
	}
	ld, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := root.(fs.Directory); r.Mode() != ld.Mode() || r.Owner() != ld.Owner() || r.ModTime() != ld.ModTime() {
		t.Errorf("root: mode %v owner %v mtime %v, localfs %v %v %v", r.Mode(), r.Owner(), r.ModTime(), ld.Mode(), ld.Owner(), ld.ModTime())
	}
}

// TestCaptureFeedsTheSidecar: the sidecar a capture's walk feeds is the
// one a scan of its own makes, byte for byte.
func TestCaptureFeedsTheSidecar(t *testing.T) {
	dir := edgeTree(t)
	skip := func(rel string, isDir bool) bool { return rel == "skipped" && isDir }
	sc, err := fsmeta.NewScanner(context.Background(), dir, fsmeta.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Capture(context.Background(), dir, "vol", skip, NewSeen(), &Stage{Dir: t.TempDir()}, sc); err != nil {
		t.Fatal(err)
	}
	fed, fedStats := sc.Result()
	scanned, scanStats, err := fsmeta.Scan(context.Background(), dir, fsmeta.ScanOptions{Exclude: skip})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fed)
	b, _ := json.Marshal(scanned)
	if string(a) != string(b) || fedStats != scanStats {
		t.Errorf("fed sidecar %s %+v\nscanned     %s %+v", a, fedStats, b, scanStats)
	}
	if len(scanned.HardLinks) != 1 || len(scanned.HardLinks[0]) != 3 || len(scanned.Specials) != 2 || len(scanned.Renames) != 2 {
		t.Errorf("the tree's edge cases are not all in the sidecar: %s", b)
	}
}
