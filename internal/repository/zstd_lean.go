package repository

import (
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// leanZstd is a kopia zstd compressor whose encoders use less memory.
// kopia's pool encoders made with the library's defaults, and each keeps
// a history buffer of twice its 8 MiB window: 16 MiB per encoder, 24 of an
// initial backup's 57 MiB peak heap here. In its low-memory mode the
// buffer is the window plus one block. kopia compresses each content in a
// frame of its own, and a content is at most 8 MiB (the splitter's
// maximum), so the history never has to shift within a frame and the
// frames are the same bytes (TestLeanZstdSameBytes); larger inputs are
// still correct, only slower. Encoding is synchronous too: a content is
// compressed by the goroutine that uploads it, one per core already, and
// the asynchronous mode held a second set of block buffers for no gain.
type leanZstd struct {
	compression.Compressor // kopia's: its header ID and Decompress
	header                 [4]byte
	pool                   sync.Pool
}

func newLeanZstd(orig compression.Compressor, level zstd.EncoderLevel) *leanZstd {
	z := &leanZstd{Compressor: orig, header: kopiaHeader(orig.HeaderID())}
	z.pool.New = func() any {
		w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithLowerEncoderMem(true), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder: %v", err)) // only for options that are constants here
		}
		return w
	}
	return z
}

// Compress writes kopia's header, then input as one zstd frame.
func (z *leanZstd) Compress(output io.Writer, input io.Reader) error {
	if _, err := output.Write(z.header[:]); err != nil {
		return fmt.Errorf("write compression header: %w", err)
	}
	w := z.pool.Get().(*zstd.Encoder)
	defer z.pool.Put(w)
	w.Reset(output)
	if _, err := w.ReadFrom(input); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	return nil
}
