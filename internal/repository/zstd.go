package repository

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"
	"github.com/kopia/kopia/repo/compression"
)

// kopia's zstd compressors are replaced under the same header IDs and
// names: every zstd frame decodes with every zstd decoder, so repositories
// stay what the kopia CLI reads, and only the encoder changes. Where cgo
// is built in, the encoder is the reference C library (zstd_cgo.go):
// about 1.7 times the speed of the Go encoder at the same ratio, and an
// initial backup spends most of its CPU compressing. Without cgo it is
// the Go encoder with less memory (zstd_lean.go). The C build decodes
// with the C library too where a frame says its size, as its own say;
// kopia's decoder reads every other frame.
func init() {
	for id, level := range zstdLevels {
		orig, name := compression.ByHeaderID[id], compression.HeaderIDToName[id]
		if orig == nil || compression.ByName[name] != orig {
			panic(fmt.Sprintf("kopia's zstd compressor %x is not registered as expected", id))
		}
		kopiaZstd[id] = orig
		z := newZstd(orig, level)
		compression.ByHeaderID[id] = z
		compression.ByName[name] = z
	}
}

// zstdLevels are the compressors replaced, by kopia's header ID.
var zstdLevels = map[compression.HeaderID]zstd.EncoderLevel{
	compression.HeaderZstdDefault:           zstd.SpeedDefault,
	compression.HeaderZstdFastest:           zstd.SpeedFastest,
	compression.HeaderZstdBetterCompression: zstd.SpeedBetterCompression,
}

// kopiaZstd are kopia's own compressors that were replaced.
var kopiaZstd = map[compression.HeaderID]compression.Compressor{}

// kopiaHeader is kopia's 4-byte compression header for id.
func kopiaHeader(id compression.HeaderID) (h [4]byte) {
	binary.BigEndian.PutUint32(h[:], uint32(id))
	return h
}

// ZstdEncoder names the zstd encoder this build compresses with.
func ZstdEncoder() string { return zstdEncoder }
