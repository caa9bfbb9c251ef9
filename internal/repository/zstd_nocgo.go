//go:build !cgo

package repository

import (
	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// zstdEncoder names the encoder this build compresses with.
const zstdEncoder = "Go"

func newZstd(orig compression.Compressor, level zstd.EncoderLevel) compression.Compressor {
	return newLeanZstd(orig, level)
}
