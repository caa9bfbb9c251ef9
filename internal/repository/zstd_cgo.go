//go:build cgo

package repository

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	ddzstd "github.com/DataDog/zstd"
	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// cLevel is the reference library's level for each of kopia's: the Go
// encoder's own documentation sets its levels beside these.
var cLevel = map[zstd.EncoderLevel]int{
	zstd.SpeedFastest:           1,
	zstd.SpeedDefault:           3,
	zstd.SpeedBetterCompression: 7,
}

// framePiece is the most of a content one frame holds. A content of
// more is written as several frames one after the other, which a zstd
// stream may hold and every decoder reads as one: kopia's does. One call
// per frame, not a stream: the library then sizes its tables to the
// input, most often one small file, which gave 1.7 % less data than a
// stream and 15 % less CPU (a stream also wraps its window, and the
// library then takes a slower path). And pieces, not a whole content of
// up to 8 MiB: a call needs its input and its output whole, and whole
// contents held 50 MiB more at the peak of an initial backup. A frame
// starts with no history; at level 1 the window is 512 KiB anyway.
const framePiece = 1 << 20

// zstdEncoder names the encoder this build compresses with.
const zstdEncoder = "C library"

func newZstd(orig compression.Compressor, level zstd.EncoderLevel) compression.Compressor {
	z := &cZstd{Compressor: orig, header: kopiaHeader(orig.HeaderID()), level: cLevel[level]}
	z.pool.New = func() any {
		return &cZstdState{ctx: ddzstd.NewCtx()}
	}
	return z
}

// cZstd compresses, and decompresses what says its size, with the
// reference C library.
type cZstd struct {
	compression.Compressor // kopia's: its header ID, and Decompress for the rest
	header                 [4]byte
	level                  int
	pool                   sync.Pool // *cZstdState
}

// cZstdState is one compression's or decompression's context, pooled,
// and a compression's buffers, made by the first compression that uses
// it: a restore only decompresses, and made 2 MiB for nothing each time
// the collector had emptied the pool (0.9 % of the Linux tree restore's
// CPU, 0.02 % since).
type cZstdState struct {
	ctx     ddzstd.Ctx
	in, out []byte
}

// Compress writes kopia's header, then input as zstd frames.
func (z *cZstd) Compress(output io.Writer, input io.Reader) error {
	if _, err := output.Write(z.header[:]); err != nil {
		return fmt.Errorf("write compression header: %w", err)
	}
	s := z.pool.Get().(*cZstdState)
	defer z.pool.Put(s)
	if s.in == nil {
		s.in, s.out = make([]byte, framePiece), make([]byte, ddzstd.CompressBound(framePiece))
	}
	for first := true; ; first = false {
		n, err := io.ReadFull(input, s.in)
		if errors.Is(err, io.EOF) && !first {
			return nil // an empty content is still one (empty) frame
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("compress: read the content: %w", err)
		}
		frame, cerr := s.ctx.CompressLevel(s.out, s.in[:n], z.level)
		if cerr != nil {
			return fmt.Errorf("compress: %w", cerr)
		}
		if _, werr := output.Write(frame); werr != nil {
			return fmt.Errorf("write compressed content: %w", werr)
		}
		if err != nil { // the content ended within this piece
			return nil
		}
	}
}

// decodePool holds a decompression's buffers: one frame as stored and
// as decoded, framePiece each for this build's frames.
var decodePool = sync.Pool{New: func() any { return new(decodeBufs) }}

type decodeBufs struct{ in, out []byte }

// Decompress decodes frame by frame with the C library where the frames
// say what they decode to, as this build's encoder writes them: about
// 2.7 times the speed of kopia's Go decoder on the bench's logs and
// sources (1.65-1.78 GB/s against 0.61-0.67), where a restore spent a
// quarter of its CPU decoding. From the first frame that does not say
// (kopia's own encoder streams), kopia's decoder reads the rest.
func (z *cZstd) Decompress(output io.Writer, input io.Reader, withHeader bool) error {
	if withHeader {
		var h [4]byte
		if _, err := io.ReadFull(input, h[:]); err != nil {
			return fmt.Errorf("error reading compression header: %w", err)
		}
		if h != z.header {
			return fmt.Errorf("invalid compression header, expected %x but got %x", z.header, h)
		}
	}
	bufs := decodePool.Get().(*decodeBufs)
	defer decodePool.Put(bufs)
	s := z.pool.Get().(*cZstdState)
	defer z.pool.Put(s)
	for {
		frame, size, err := readZstdFrame(input, bufs.in[:0])
		bufs.in = frame[:0]
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errNoSize):
			return z.Compressor.Decompress(output, io.MultiReader(bytes.NewReader(frame), input), false)
		case err != nil:
			return fmt.Errorf("decompression error: %w", err)
		case size == 0:
			continue // a skippable frame, or an empty one
		}
		if cap(bufs.out) < size {
			bufs.out = make([]byte, max(size, framePiece))
		}
		n, err := s.ctx.DecompressInto(bufs.out[:size], frame)
		if err != nil {
			return fmt.Errorf("decompression error: %w", err)
		}
		if n != size {
			return fmt.Errorf("decompression error: %d bytes, the frame says %d", n, size)
		}
		if _, err := output.Write(bufs.out[:n]); err != nil {
			return fmt.Errorf("write decompressed content: %w", err)
		}
	}
}
