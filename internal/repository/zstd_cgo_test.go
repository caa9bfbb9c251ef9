//go:build cgo

package repository

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/kopia/kopia/repo/compression"
)

// TestZstdCgoUsesC: a build with cgo (the tests' -race needs it)
// compresses with the C library, so that the tests above test it.
func TestZstdCgoUsesC(t *testing.T) {
	if ZstdEncoder() != "C library" {
		t.Fatalf("encoder %q in a cgo build", ZstdEncoder())
	}
}

// TestZstdDecompressC: the decompressors in use read back exactly what
// the encoder in use and kopia's own wrote, with and without the header;
// the C encoder's frames take the one-shot path (they say their size),
// and a truncated content is an error.
func TestZstdDecompressC(t *testing.T) {
	for id := range zstdLevels {
		inUse := compression.ByHeaderID[id]
		for _, c := range zstdCases() {
			name := fmt.Sprintf("%x %s %d", id, c.kind, c.n)
			mine := compress(t, inUse, c.in)
			if size, err := framesSay(mine[4:]); err != nil || size != c.n {
				t.Errorf("%s: the C encoder's frames say %d bytes (%v), want %d", name, size, err, c.n)
			}
			for _, z := range [][]byte{mine, kopiaCompressed(t, id, c)} {
				var got, bare bytes.Buffer
				if err := inUse.Decompress(&got, bytes.NewReader(z), true); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := inUse.Decompress(&bare, bytes.NewReader(z[4:]), false); err != nil {
					t.Fatalf("%s without header: %v", name, err)
				}
				if !bytes.Equal(got.Bytes(), c.in) || !bytes.Equal(bare.Bytes(), c.in) {
					t.Errorf("%s: read back %d and %d bytes that differ from the %d written", name, got.Len(), bare.Len(), c.n)
				}
			}
			if c.n >= 1000 {
				checkDamagedDecode(t, name, inUse, mine, c.n)
			}
		}
		var out bytes.Buffer
		if err := inUse.Decompress(&out, bytes.NewReader([]byte{0, 0, 0, 0, 1, 2}), true); err == nil {
			t.Errorf("%x: a wrong header was read", id)
		}
	}
}

// checkDamagedDecode: half a content is an error. Without a checksum in
// the frames (kopia's encryption authenticates every content before it
// is decoded), a flipped byte may decode to other bytes: never more or
// fewer than the frames say, and never a panic.
func checkDamagedDecode(t *testing.T, name string, c compression.Compressor, frames []byte, n int) {
	t.Helper()
	var out bytes.Buffer
	if err := c.Decompress(&out, bytes.NewReader(frames[:len(frames)/2]), true); err == nil {
		t.Errorf("%s: half the content read back as %d bytes, no error", name, out.Len())
	}
	for _, at := range []int{8, len(frames) / 2, len(frames) - 2} {
		out.Reset()
		bad := bytes.Clone(frames)
		bad[at] ^= 0x5a
		if err := c.Decompress(&out, bytes.NewReader(bad), true); err == nil && out.Len() != n {
			t.Errorf("%s: damaged at %d: %d bytes, no error", name, at, out.Len())
		}
	}
}

// framesSay is the size zstd frames say they decode to, all together.
func framesSay(src []byte) (int, error) {
	r, total := bytes.NewReader(src), 0
	for {
		_, n, err := readZstdFrame(r, nil)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		total += n
	}
}
