//go:build !cgo

package repository

import (
	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

func newZstd(orig compression.Compressor, level zstd.EncoderLevel) compression.Compressor {
	zstdEncoder = "Go"
	return newLeanZstd(orig, level)
}
