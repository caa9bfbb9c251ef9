package repository

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kopia/kopia/repo/compression"
)

// zstdInputs are contents of every size a content can have (the
// splitter cuts at most 8 MiB; more, for a compressor that must not
// care) and of every kind of data.
func zstdInputs() (kinds map[string]func(int) []byte, sizes []int) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"lifeboat ", "volume ", "2026-12-03T15:04:05Z ", "GET /index.html 200\n", "container ", "restore "}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.Bytes()[:n]
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	mixed := func(n int) []byte {
		var b []byte
		for len(b) < n {
			b = append(b, text(200_000)...)
			b = append(b, random(100_000)...)
			b = append(b, make([]byte, 50_000)...)
		}
		return b[:n]
	}
	const mib = 1 << 20
	return map[string]func(int) []byte{"text": text, "random": random, "mixed": mixed},
		[]int{0, 1, 1000, 128<<10 - 1, 128 << 10, 128<<10 + 1, mib - 1, mib, mib + 1, 2 * mib, 4*mib + 123, 8 * mib, 8*mib + 1, 12 * mib}
}

// TestLeanZstdSameBytes: the lean Go compressors write exactly the bytes
// kopia's own write, for every size a content can have (at most 8 MiB),
// and kopia reads them back. Above 8 MiB the bytes may differ, but kopia
// must still read them.
func TestLeanZstdSameBytes(t *testing.T) {
	kinds, sizes := zstdInputs()
	for id, level := range zstdLevels {
		kopias := kopiaZstd[id]
		lean := newLeanZstd(kopias, level)
		for kind, gen := range kinds {
			for _, n := range sizes {
				in := gen(n)
				got, want := compress(t, lean, in), compress(t, kopias, in)
				name := fmt.Sprintf("%x %s %d", id, kind, n)
				if n <= 8<<20 && !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, kopia's %d: not the same bytes", name, len(got), len(want))
				}
				checkKopiaReads(t, name, kopias, got, in)
			}
		}
	}
}

// TestZstdInUseReadByKopia: what the compressors in use write (the C
// library's where cgo is built in), kopia's own decompressors read back
// exactly, and it is no larger than kopia's own output by more than 1 %
// where the data compresses.
func TestZstdInUseReadByKopia(t *testing.T) {
	kinds, sizes := zstdInputs()
	t.Logf("encoder: %s", ZstdEncoder())
	for id := range zstdLevels {
		inUse, kopias := compression.ByHeaderID[id], kopiaZstd[id]
		if inUse == kopias {
			t.Fatalf("compressor %x is still kopia's", id)
		}
		if inUse.HeaderID() != id {
			t.Fatalf("compressor %x has header ID %x", id, inUse.HeaderID())
		}
		for kind, gen := range kinds {
			for _, n := range sizes {
				in := gen(n)
				got, want := compress(t, inUse, in), compress(t, kopias, in)
				name := fmt.Sprintf("%x %s %d", id, kind, n)
				if kind != "random" && n >= 1<<20 && float64(len(got)) > 1.01*float64(len(want)) {
					t.Errorf("%s: %d bytes, kopia's own %d", name, len(got), len(want))
				}
				checkKopiaReads(t, name, kopias, got, in)
			}
		}
	}
}

// compress is in compressed by c.
func compress(t *testing.T, c compression.Compressor, in []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := c.Compress(&out, bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkKopiaReads: kopia's own decompressor, by header and as the
// compressor's own, reads compressed back to want.
func checkKopiaReads(t *testing.T, name string, kopias compression.Compressor, compressed, want []byte) {
	t.Helper()
	var back, back2 bytes.Buffer
	if err := compression.DecompressByHeader(&back, bytes.NewReader(compressed)); err != nil {
		t.Fatalf("%s: kopia cannot read it: %v", name, err)
	}
	if err := kopias.Decompress(&back2, bytes.NewReader(compressed), true); err != nil {
		t.Fatalf("%s: kopia's own compressor cannot read it: %v", name, err)
	}
	if !bytes.Equal(back.Bytes(), want) || !bytes.Equal(back2.Bytes(), want) {
		t.Errorf("%s: read back %d and %d bytes that differ from the %d written", name, back.Len(), back2.Len(), len(want))
	}
}
