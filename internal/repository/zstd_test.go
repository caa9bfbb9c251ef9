package repository

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kopia/kopia/repo/compression"
)

// zstdCase is one content the compressor tests run through every level.
type zstdCase struct {
	kind string
	n    int
	in   []byte
}

// zstdCases are contents of every size a content can have (the splitter
// cuts at most 8 MiB; more, for a compressor that must not care) and of
// every kind of data. Text and random data are run up to just over 1 MiB;
// above that only the mix of both with zero runs: each kind alone takes
// the same encoder paths block by block, and under -race (how CI runs
// every test) the big sizes of all three took over seven minutes.
var zstdCases = sync.OnceValue(func() []zstdCase {
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
		b := make([]byte, n+7)
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
		}
		return b[:n]
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
	small := []int{0, 1, 1000, 128<<10 - 1, 128 << 10, 128<<10 + 1, mib - 1, mib, mib + 1}
	large := []int{2 * mib, 4*mib + 123, 8 * mib, 8*mib + 1, 12 * mib}
	var cases []zstdCase
	for _, k := range []struct {
		kind  string
		gen   func(int) []byte
		sizes []int
	}{{"text", text, small}, {"random", random, small}, {"mixed", mixed, append(small, large...)}} {
		for _, n := range k.sizes {
			cases = append(cases, zstdCase{k.kind, n, k.gen(n)})
		}
	}
	return cases
})

// kopiaCompressed is c.in compressed by kopia's own compressor id, made
// once for all the tests that compare with it.
func kopiaCompressed(t *testing.T, id compression.HeaderID, c zstdCase) []byte {
	t.Helper()
	key := fmt.Sprintf("%x %s %d", id, c.kind, c.n)
	kopiaOutMu.Lock()
	defer kopiaOutMu.Unlock()
	if out, ok := kopiaOut[key]; ok {
		return out
	}
	out := compress(t, kopiaZstd[id], c.in)
	kopiaOut[key] = out
	return out
}

var (
	kopiaOutMu sync.Mutex
	kopiaOut   = map[string][]byte{}
)

// TestLeanZstdSameBytes: the lean Go compressors write exactly the bytes
// kopia's own write, for every size a content can have (at most 8 MiB),
// and kopia reads them back. Above 8 MiB the bytes may differ, but kopia
// must still read them.
func TestLeanZstdSameBytes(t *testing.T) {
	for id, level := range zstdLevels {
		lean := newLeanZstd(kopiaZstd[id], level)
		for _, c := range zstdCases() {
			got, want := compress(t, lean, c.in), kopiaCompressed(t, id, c)
			name := fmt.Sprintf("%x %s %d", id, c.kind, c.n)
			if c.n <= 8<<20 && !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, kopia's %d: not the same bytes", name, len(got), len(want))
			}
			checkKopiaReads(t, name, kopiaZstd[id], got, c.in)
		}
	}
}

// TestZstdInUseReadByKopia: what the compressors in use write (the C
// library's where cgo is built in), kopia's own decompressors read back
// exactly, and it is no larger than kopia's own output by more than 1 %
// where the data compresses.
func TestZstdInUseReadByKopia(t *testing.T) {
	t.Logf("encoder: %s", ZstdEncoder())
	for id := range zstdLevels {
		inUse, kopias := compression.ByHeaderID[id], kopiaZstd[id]
		if inUse == kopias {
			t.Fatalf("compressor %x is still kopia's", id)
		}
		if inUse.HeaderID() != id {
			t.Fatalf("compressor %x has header ID %x", id, inUse.HeaderID())
		}
		for _, c := range zstdCases() {
			got, want := compress(t, inUse, c.in), kopiaCompressed(t, id, c)
			name := fmt.Sprintf("%x %s %d", id, c.kind, c.n)
			if c.kind != "random" && c.n >= 1<<20 && float64(len(got)) > 1.01*float64(len(want)) {
				t.Errorf("%s: %d bytes, kopia's own %d", name, len(got), len(want))
			}
			checkKopiaReads(t, name, kopias, got, c.in)
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
