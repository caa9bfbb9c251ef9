package repository

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kopia/kopia/repo/compression"
)

// TestLeanZstdSameBytes: the lean compressors write exactly the bytes
// kopia's own write, for every size a content can have (the splitter cuts
// at most 8 MiB) and for every kind of data, and kopia reads them back.
// Above 8 MiB the bytes may differ, but kopia must still read them.
func TestLeanZstdSameBytes(t *testing.T) {
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
	sizes := []int{0, 1, 1000, 128<<10 - 1, 128 << 10, 128<<10 + 1, mib, 4*mib + 123, 8 * mib}
	for _, id := range []compression.HeaderID{compression.HeaderZstdFastest, compression.HeaderZstdDefault, compression.HeaderZstdBetterCompression} {
		lean, ok := compression.ByHeaderID[id].(*leanZstd)
		if !ok {
			t.Fatalf("compressor %x is not the lean one", id)
		}
		for kind, gen := range map[string]func(int) []byte{"text": text, "random": random, "mixed": mixed} {
			for _, n := range append(sizes, 8*mib+1, 12*mib) {
				in := gen(n)
				var got, want bytes.Buffer
				if err := lean.Compress(&got, bytes.NewReader(in)); err != nil {
					t.Fatal(err)
				}
				if err := lean.Compressor.Compress(&want, bytes.NewReader(in)); err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("%x %s %d", id, kind, n)
				if n <= 8*mib && !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("%s: %d bytes, kopia's %d: not the same bytes", name, got.Len(), want.Len())
				}
				var back bytes.Buffer
				if err := compression.DecompressByHeader(&back, &got); err != nil {
					t.Fatalf("%s: kopia cannot read it: %v", name, err)
				}
				if !bytes.Equal(back.Bytes(), in) {
					t.Errorf("%s: read back %d bytes that differ from the %d written", name, back.Len(), n)
				}
			}
		}
	}
}
