package repository

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"golang.org/x/sys/unix"
)

// bytesFile is the part of a kopia file copyContent uses.
type bytesFile struct {
	fs.File
	b []byte
}

func (f bytesFile) Size() int64 { return int64(len(f.b)) }

func (f bytesFile) Open(context.Context) (fs.Reader, error) {
	return bytesReader{Reader: bytes.NewReader(f.b)}, nil
}

type bytesReader struct{ *bytes.Reader }

func (bytesReader) Close() error             { return nil }
func (bytesReader) Entry() (fs.Entry, error) { return nil, nil }

// TestCopyContentHoles restores files with holes at their start, middle
// and end, and of zeros only: each reads back byte for byte, and the
// holes take no space.
func TestCopyContentHoles(t *testing.T) {
	const mib = 1 << 20
	data := func(n int) []byte { return bytes.Repeat([]byte("lifeboat"), n/8) }
	zeros := func(n int) []byte { return make([]byte, n) }
	cases := map[string][]byte{
		"empty":       nil,
		"small":       []byte("x"),
		"zeros only":  zeros(3 * mib),
		"hole at end": append(data(mib), zeros(3*mib)...),
		"hole first":  append(zeros(3*mib), data(mib)...),
		"hole inside": append(append(data(mib), zeros(3*mib)...), data(4096)...),
		"odd tail":    append(append(data(mib), zeros(2*mib)...), []byte("tail")...),
	}
	dir := t.TempDir()
	o, err := newOutput(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	for name, b := range cases {
		p := filepath.Join(dir, name)
		w, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.copyContent(context.Background(), w, bytesFile{b: b}, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s: read back %d bytes, differing from the %d written", name, len(got), len(b))
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		nonZero := int64(len(bytes.ReplaceAll(b, []byte{0}, nil)))
		if used := st.Blocks * 512; len(b) >= 3*mib && used > nonZero+2*mib {
			t.Errorf("%s: %d bytes of data take %d bytes on disk: its holes were written", name, nonZero, used)
		}
	}
}

// TestAdmitBoundsLargeFiles: files that may hold a whole chunk are read
// only as many at once as the budget allows, the next one waits for a
// release (or its job's cancel), and small files still pass beside them.
func TestAdmitBoundsLargeFiles(t *testing.T) {
	o, err := newOutput(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	ctx := context.Background()
	large := bytesFile{b: make([]byte, maxChunk+1)}
	var releases []func()
	for range chunkBudget / maxChunk {
		r, err := o.admit(ctx, large)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := o.admit(short, large); err == nil {
		t.Fatalf("a large file was admitted beyond the budget of %d", chunkBudget/maxChunk)
	}
	releases[0]()
	r, err := o.admit(ctx, large)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r()
	for i := 1; i < len(releases); i++ {
		releases[i]()
	}
	// With the budget full, small files still pass, eight at once.
	for range chunkBudget / maxChunk {
		r, err := o.admit(ctx, large)
		if err != nil {
			t.Fatal(err)
		}
		defer r()
	}
	for range 8 {
		short, cancel := context.WithTimeout(ctx, time.Second)
		r, err := o.admit(short, bytesFile{b: make([]byte, smallFile)})
		cancel()
		if err != nil {
			t.Fatalf("a small file waited: %v", err)
		}
		defer r()
	}
}

// entryFile is a whole kopia file for WriteFile: content, mode, owner and
// time; failAfter > 0 makes its reader fail after that many bytes.
type entryFile struct {
	bytesFile
	failAfter int
}

func (f entryFile) Mode() os.FileMode { return 0o640 }
func (f entryFile) Owner() fs.OwnerInfo {
	return fs.OwnerInfo{UserID: uint32(os.Getuid()), GroupID: uint32(os.Getgid())}
}
func (f entryFile) ModTime() time.Time { return time.Unix(1_700_000_000, 0) }
func (f entryFile) Name() string       { return "f" }
func (f entryFile) Open(ctx context.Context) (fs.Reader, error) {
	if f.failAfter == 0 {
		return f.bytesFile.Open(ctx)
	}
	return failingReader{bytesReader{Reader: bytes.NewReader(f.b[:f.failAfter])}}, nil
}

type failingReader struct{ bytesReader }

func (r failingReader) Read(p []byte) (int, error) {
	n, err := r.bytesReader.Read(p)
	if err != nil {
		return n, errors.New("damaged blob")
	}
	return n, err
}

// TestWriteFileNeverReplaces: WriteFile writes a file under its own name
// with its mode and time; it never overwrites a file or follows a symlink
// that is already there, and a file whose content fails is removed, not
// left half written.
func TestWriteFileNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	o, err := newOutput(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	ctx := context.Background()
	content := bytes.Repeat([]byte("lifeboat"), 300_000)
	if err := o.WriteFile(ctx, "new", entryFile{bytesFile: bytesFile{b: content}}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "new")); !bytes.Equal(got, content) || st.Mode().Perm() != 0o640 || st.ModTime().Unix() != 1_700_000_000 {
		t.Errorf("restored file: %d bytes, mode %v, time %v", len(got), st.Mode(), st.ModTime())
	}

	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("theirs"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "planted")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "existing"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"planted", "existing"} {
		err := o.WriteFile(ctx, name, entryFile{bytesFile: bytesFile{b: content}}, nil)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("%s: error %v, want already exists", name, err)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "theirs" {
		t.Errorf("the symlink's target was written: now %d bytes", len(b))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "existing")); string(b) != "mine" {
		t.Errorf("the existing file was overwritten: now %d bytes", len(b))
	}

	if err := o.WriteFile(ctx, "broken", entryFile{bytesFile: bytesFile{b: content}, failAfter: 1 << 20}, nil); err == nil || !strings.Contains(err.Error(), "damaged blob") {
		t.Errorf("failed content: error %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "broken")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file whose content failed was left behind: %v", err)
	}
}
