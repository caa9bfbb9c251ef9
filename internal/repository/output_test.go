package repository

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
