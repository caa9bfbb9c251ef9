package buzhash

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/kopia/kopia/repo/splitter"
)

// inputs are data of the shapes files have: random (media), text from a
// small alphabet (sources, logs), long runs of zeros (sparse images) and
// a short pattern repeated (where a rolling hash repeats too).
func inputs(size int) map[string][]byte {
	rnd := rand.New(rand.NewSource(7))
	random := make([]byte, size)
	rnd.Read(random)
	text := make([]byte, size)
	const alphabet = "abcdefghij klmnop\n{}();=+-_0123456789"
	for i := range text {
		text[i] = alphabet[rnd.Intn(len(alphabet))]
	}
	mixed := make([]byte, size)
	for off := 0; off < size; {
		n := min(size-off, 1+rnd.Intn(700<<10))
		if rnd.Intn(2) == 0 {
			rnd.Read(mixed[off : off+n])
		}
		off += n
	}
	pattern := make([]byte, size)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	return map[string][]byte{"random": random, "text": text, "zeros and random": mixed, "pattern": pattern}
}

// feed gives both splitters the same pieces of data and fails at the
// first answer that differs; it returns how many cuts were made.
func feed(t *testing.T, ours, theirs splitter.Splitter, data []byte, rnd *rand.Rand, maxPiece int) int {
	t.Helper()
	cuts := 0
	for off := 0; off < len(data); {
		piece := data[off:min(len(data), off+1+rnd.Intn(maxPiece))]
		off += len(piece)
		for len(piece) > 0 {
			got, want := ours.NextSplitPoint(piece), theirs.NextSplitPoint(piece)
			if got != want {
				t.Fatalf("at byte %d: split point %d, kopia's %d", off-len(piece), got, want)
			}
			if got < 0 {
				break
			}
			cuts++
			piece = piece[got:]
		}
	}
	return cuts
}

func TestCutsWhereKopiaCuts(t *testing.T) {
	data := inputs(16 << 20)
	// The sizes share one code path, so the smallest, with the most cuts,
	// gets the most cases: the race detector makes kopia's splitter slow.
	for _, c := range []struct {
		name      string
		avg, size int
		pieces    []int
	}{
		{"DYNAMIC-128K-BUZHASH", 128 << 10, 8 << 20, []int{1 << 10, 64 << 10, 3 << 20}},
		{"DYNAMIC-1M-BUZHASH", 1 << 20, 8 << 20, []int{64 << 10, 3 << 20}},
		{"DYNAMIC-4M-BUZHASH", 4 << 20, 16 << 20, []int{64 << 10}},
	} {
		kopia := splitter.GetFactory(c.name)
		if kopia == nil {
			t.Fatalf("kopia has no splitter %s", c.name)
		}
		ourFactory := Factory(c.avg)
		for shape, all := range data {
			b := all[:c.size]
			for _, maxPiece := range c.pieces {
				t.Run(fmt.Sprintf("%s/%s/pieces up to %d", c.name, shape, maxPiece), func(t *testing.T) {
					rnd := rand.New(rand.NewSource(int64(c.avg + maxPiece)))
					ours, theirs := ourFactory(), kopia()
					if ours.MaxSegmentSize() != theirs.MaxSegmentSize() {
						t.Fatalf("max segment %d, kopia's %d", ours.MaxSegmentSize(), theirs.MaxSegmentSize())
					}
					cuts := feed(t, ours, theirs, b, rnd, maxPiece)
					// A splitter used again after Close starts afresh, as
					// kopia's does.
					ours.Close()
					theirs.Close()
					ours, theirs = ourFactory(), kopia()
					cuts += feed(t, ours, theirs, b[:len(b)/3], rnd, maxPiece)
					ours.Close()
					theirs.Close()
					if min := len(b) / (2 * c.avg); cuts < min {
						t.Fatalf("%d cuts in %d bytes, want at least %d", cuts, len(b), min)
					}
				})
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	data := inputs(64 << 20)["random"]
	for _, impl := range []struct {
		name string
		f    splitter.Factory
	}{{"kopia", splitter.GetFactory("DYNAMIC-1M-BUZHASH")}, {"ours", Factory(1 << 20)}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				s := impl.f()
				for off := 0; off < len(data); off += 64 << 10 {
					for buf := data[off : off+64<<10]; len(buf) > 0; {
						p := s.NextSplitPoint(buf)
						if p < 0 {
							break
						}
						buf = buf[p:]
					}
				}
				s.Close()
			}
		})
	}
}
