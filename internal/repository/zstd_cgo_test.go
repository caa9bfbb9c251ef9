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
	kinds, sizes := zstdInputs()
	for id := range zstdLevels {
		inUse, kopias := compression.ByHeaderID[id], kopiaZstd[id]
		for kind, gen := range kinds {
			for _, n := range sizes {
				in := gen(n)
				name := fmt.Sprintf("%x %s %d", id, kind, n)
				mine := compress(t, inUse, in)
				if size, err := framesSay(mine[4:]); err != nil || size != n {
					t.Errorf("%s: the C encoder's frames say %d bytes (%v), want %d", name, size, err, n)
				}
				for _, c := range [][]byte{mine, compress(t, kopias, in)} {
					var got, bare bytes.Buffer
					if err := inUse.Decompress(&got, bytes.NewReader(c), true); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if err := inUse.Decompress(&bare, bytes.NewReader(c[4:]), false); err != nil {
						t.Fatalf("%s without header: %v", name, err)
					}
					if !bytes.Equal(got.Bytes(), in) || !bytes.Equal(bare.Bytes(), in) {
						t.Errorf("%s: read back %d and %d bytes that differ from the %d written", name, got.Len(), bare.Len(), n)
					}
				}
				if n >= 1000 {
					checkDamagedDecode(t, name, inUse, mine, n)
				}
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
