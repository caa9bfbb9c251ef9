package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/changetime"
)

// read returns the content the captured tree gives for rel.
func read(t *testing.T, root fs.Entry, rel string) (string, error) {
	t.Helper()
	e := root
	for _, part := range strings.Split(rel, "/") {
		c, err := e.(fs.Directory).Child(context.Background(), part)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		e = c
	}
	r, err := e.(fs.File).Open(context.Background())
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// TestCaptureCopiesWhatChangedSinceTheLiveWalk: a file the live walk saw
// as it is is not copied; one changed or added since is, and the tree
// gives its content as it was when captured, whatever happens to the
// file after; a file seen unchanged but changed after the capture is
// refused rather than read torn. Excluded paths stay out, links keep the
// target they had.
func TestCaptureCopiesWhatChangedSinceTheLiveWalk(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("db/base", "base v1")
	write("db/wal", "wal v1")
	write("tmp/x", "excluded")
	os.Symlink("db/base", filepath.Join(dir, "link"))
	skip := func(rel string, _ bool) bool { return rel == "tmp" }

	seen := NewSeen()
	live, err := Recorded(dir, "vol", skip, seen)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(t, live.(fs.Directory), ""); !slices.Contains(got, "db/wal") || slices.Contains(got, "tmp") {
		t.Fatalf("live walk: %v", got)
	}

	past := time.Now().Add(-time.Hour)
	write("db/wal", "wal v2, longer")
	os.Chtimes(filepath.Join(dir, "db/wal"), past, past)
	write("db/new", "new v1")
	stage := &Stage{Dir: t.TempDir()}
	root, err := Capture(context.Background(), dir, "vol", skip, seen, stage, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := stage.Files.Load(); n != 2 {
		t.Errorf("staged %d files, want 2 (db/wal, db/new)", n)
	}
	if root.Name() != "vol" {
		t.Errorf("root named %q", root.Name())
	}
	write("db/wal", "wal v3 after the thaw")
	write("db/new", "new v2 after the thaw")
	for rel, want := range map[string]string{"db/wal": "wal v2, longer", "db/new": "new v1", "db/base": "base v1"} {
		if got, err := read(t, root, rel); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, want)
		}
	}
	write("db/base", "base v2 after the thaw")
	if got, err := read(t, root, "db/base"); err == nil {
		t.Errorf("db/base changed after the capture and not staged, read %q", got)
	}
	got := names(t, root.(fs.Directory), "")
	slices.Sort(got)
	if want := []string{"db", "db/base", "db/new", "db/wal", "link"}; !slices.Equal(got, want) {
		t.Errorf("captured tree %v, want %v", got, want)
	}
	l, _ := root.(fs.Directory).Child(context.Background(), "link")
	if target, _ := l.(fs.Symlink).Readlink(context.Background()); target != "db/base" {
		t.Errorf("link -> %q", target)
	}
}

// TestPrestagedCopyBroughtUpToDate: a copy made before the freeze is
// brought to the file's content at the capture, whether the file was
// rewritten in place, grew or shrank, and only changed blocks are written.
func TestPrestagedCopyBroughtUpToDate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ibdata")
	big := make([]byte, 40*syncBlock+100)
	for i := range big {
		big[i] = byte(i * 7)
	}
	os.WriteFile(p, []byte("x"), 0o644)
	seen := NewSeen()
	live, _ := Recorded(dir, "vol", nil, seen)
	names(t, live.(fs.Directory), "")
	os.WriteFile(p, big, 0o644)
	stage := &Stage{Dir: t.TempDir()}
	if err := Prestage(context.Background(), dir, nil, seen, stage, nil); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name  string
		edit  func([]byte) []byte
		wrote int64
	}{
		{"one block rewritten", func(b []byte) []byte { b[2*syncBlock+5] ^= 0xff; return b }, syncBlock},
		{"a run rewritten", func(b []byte) []byte { b[10*syncBlock] ^= 1; b[12*syncBlock-1] ^= 1; return b }, 2 * syncBlock},
		{"grown", func(b []byte) []byte { return append(b, make([]byte, syncBlock)...) }, 2 * syncBlock},
		{"shrunk", func(b []byte) []byte { return b[:syncBlock+1] }, 0},
	} {
		big = step.edit(big)
		os.WriteFile(p, big, 0o644)
		stage.Bytes.Store(0)
		root, err := Capture(context.Background(), dir, "vol", nil, seen, stage, nil)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte("after the thaw"), 0o644)
		if got, err := read(t, root, "ibdata"); err != nil || got != string(big) {
			t.Fatalf("%s: copy differs (%d bytes, %v), want %d bytes", step.name, len(got), err, len(big))
		}
		if n := stage.Bytes.Load(); step.name != "grown" && n != step.wrote {
			t.Errorf("%s: wrote %d bytes, want %d", step.name, n, step.wrote)
		}
		// The next step starts from the captured copy, as a new prestage would.
		f, _ := root.(fs.Directory).Child(context.Background(), "ibdata")
		stage.pre = map[string]string{p: f.(*capturedFile).staged}
	}
	if n := stage.Synced.Load(); n != 4 {
		t.Errorf("synced %d copies, want 4", n)
	}
}

// TestPrestageKeepsToItsBudget: copies that would pass the budget are
// refused before the freeze, when the caller can still read in place.
func TestPrestageKeepsToItsBudget(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644)
	stage := &Stage{Dir: t.TempDir(), Budget: 999}
	if err := Prestage(context.Background(), dir, nil, NewSeen(), stage, nil); !errors.Is(err, ErrStageFull) {
		t.Fatalf("prestage of 1000 bytes with a budget of 999: %v", err)
	}
	stage = &Stage{Dir: t.TempDir(), Budget: 1000}
	if err := Prestage(context.Background(), dir, nil, NewSeen(), stage, nil); err != nil {
		t.Fatalf("prestage of 1000 bytes with a budget of 1000: %v", err)
	}
}

// TestSyncCopyInParts: a file larger than one part is compared part by
// part at once; blocks changed in several parts, and across a part's
// end, are all rewritten, nothing else.
func TestSyncCopyInParts(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	b := make([]byte, 2*syncPart+3*syncBlock)
	for i := range b {
		b[i] = byte(i % 251)
	}
	os.WriteFile(dst, b, 0o600)
	b[5] ^= 1          // block 0 of part 0
	b[syncPart-1] ^= 1 // last block of part 0 …
	b[syncPart] ^= 1   // … and first of part 1: two runs, one per part
	b[2*syncPart+syncBlock] ^= 1
	os.WriteFile(src, b, 0o600)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	n, m, err := syncCopy(dst, in, nil)
	m.release()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4 * syncBlock); n != want {
		t.Errorf("wrote %d bytes, want %d", n, want)
	}
	if got, _ := os.ReadFile(dst); string(got) != string(b) {
		t.Error("copy differs from the file")
	}
}

// syncPair writes content to a file, opened for writing too, beside an
// empty file for its copy.
func syncPair(t *testing.T, content []byte) (src, dst string, in *os.File) {
	t.Helper()
	dir := t.TempDir()
	src, dst = filepath.Join(dir, "f"), filepath.Join(dir, "copy")
	os.WriteFile(src, content, 0o600)
	os.WriteFile(dst, nil, 0o600)
	in, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return src, dst, in
}

// TestSyncCopyReusesKeptMaps: mappings kept from one compare serve the
// next while they map the same file and copy and cover its size, and see
// what a writer wrote since; a file grown past them, or replaced, is
// mapped again. Every round ends with the copy equal to the file.
func TestSyncCopyReusesKeptMaps(t *testing.T) {
	b := make([]byte, 3*syncBlock+100)
	for i := range b {
		b[i] = byte(i % 253)
	}
	src, dst, in := syncPair(t, b)
	var m *fileMaps
	defer func() { m.release() }()
	round := func(name string, wantReused bool) {
		t.Helper()
		before := m
		var err error
		if _, m, err = syncCopy(dst, in, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if reused := before != nil && m == before; reused != wantReused {
			t.Errorf("%s: mappings reused %v, want %v", name, reused, wantReused)
		}
		want, _ := os.ReadFile(src)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%s: the copy differs from the file", name)
		}
	}
	round("first", false)
	in.WriteAt([]byte("written since"), syncBlock+7)
	round("written in place", true)
	in.WriteAt([]byte("grown a little"), int64(len(b))+syncBlock)
	round("grown within the mapping", true)
	in.Truncate(syncBlock / 2)
	round("cut short", true)
	in.WriteAt(bytes.Repeat([]byte{7}, 20<<20), 100)
	round("grown past the mapping", false)
	os.Remove(src)
	os.WriteFile(src, []byte("a new file at the same path"), 0o600)
	in2, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	in = in2
	round("replaced", false)
}

// TestSyncCopyVouchesOnlyForQuietFiles: a file unchanged (ctime, size)
// since a compare that began with it quiet is not compared again; one
// written since is, and one that was not quiet then is compared however
// unchanged its times look, since a write in the same step of the clock
// leaves them so.
func TestSyncCopyVouchesOnlyForQuietFiles(t *testing.T) {
	src, dst, in := syncPair(t, bytes.Repeat([]byte("a"), 3*syncBlock))
	var m *fileMaps
	defer func() { m.release() }()
	sync := func(name string, wantVouched bool) {
		t.Helper()
		var err error
		if _, m, err = syncCopy(dst, in, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.vouched != wantVouched {
			t.Errorf("%s: vouched %v, want %v", name, m.vouched, wantVouched)
		}
		want, _ := os.ReadFile(src)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%s: the copy differs from the file", name)
		}
	}
	// Written just now: not quiet, compared every time.
	defer func(q, c time.Duration) { changetime.QuietFor, changetime.CoarseQuietFor = q, c }(changetime.QuietFor, changetime.CoarseQuietFor)
	changetime.QuietFor = time.Hour
	sync("first", false)
	sync("not quiet", false)
	in.WriteAt([]byte("b"), 10)
	sync("written, not quiet", false)

	changetime.QuietFor, changetime.CoarseQuietFor = -time.Hour, -time.Hour // every file counts as quiet
	sync("compared quiet", false)
	sync("unchanged since", true)
	in.WriteAt([]byte("c"), syncBlock+10)
	sync("written since", false)
}

// TestStageCopyOfDeletedOrSwappedFile: a file its container deleted
// between the walk and the copy reads as not existing (kopia leaves it
// out) and drops its prestaged copy; one swapped for a symlink to a host
// file, or for a FIFO, is refused, never followed nor waited on.
func TestStageCopyOfDeletedOrSwappedFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "host-secret")
	os.WriteFile(secret, []byte("host data"), 0o600)
	stage := &Stage{Dir: t.TempDir()}
	defer stage.Close()
	file := func(rel string) *capturedFile {
		return &capturedFile{meta: meta{name: rel, size: 9}, src: filepath.Join(dir, rel), base: dir, rel: rel, stage: stage}
	}

	gone := file("gone")
	pre := filepath.Join(stage.Dir, "pre")
	os.WriteFile(pre, []byte("old copy"), 0o600)
	stage.pre = map[string]string{gone.src: pre}
	if err := stage.copy(gone, false); err != nil {
		t.Fatalf("a deleted file failed the copy: %v", err)
	}
	if _, err := gone.Open(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a deleted file opens: %v", err)
	}
	if _, err := os.Stat(pre); !os.IsNotExist(err) {
		t.Errorf("its prestaged copy was kept: %v", err)
	}

	os.Symlink(secret, filepath.Join(dir, "swapped"))
	if err := stage.copy(file("swapped"), false); err == nil {
		t.Error("a file swapped for a symlink to a host file was copied")
	}
	if err := syscallMkfifo(filepath.Join(dir, "fifo")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- stage.copy(file("fifo"), false) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO was copied")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the copy waited on a FIFO")
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink(filepath.Dir(secret), filepath.Join(dir, "sub", "up"))
	if err := stage.copy(file("sub/up/host-secret"), false); err == nil {
		t.Error("a file reached through a symlinked directory was copied")
	}
	entries, _ := os.ReadDir(stage.Dir)
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(stage.Dir, e.Name())); strings.Contains(string(b), "host data") {
			t.Fatalf("the host file reached the stage as %s", e.Name())
		}
	}
}

func syscallMkfifo(p string) error { return unix.Mkfifo(p, 0o644) }
