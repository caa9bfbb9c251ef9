package repository

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxOneShot is the most one frame may decode to in one call: this
// build's encoder writes frames of framePiece, and a header that claims
// more is left to the streaming decoder, which allocates as it goes
// rather than all at once.
const maxOneShot = 8 << 20

const (
	zstdMagic         = 0xFD2FB528
	zstdSkippableMask = 0xFFFFFFF0
	zstdSkippable     = 0x184D2A50
)

// errNoSize means a frame does not say what it decodes to (a streaming
// encoder's, kopia's own), needs a dictionary, or says more than
// maxOneShot: it is for a streaming decoder.
var errNoSize = errors.New("zstd frame of no size given")

// readZstdFrame appends the next whole zstd frame (RFC 8878) of r to buf
// and returns it with what it says it decodes to, 0 for a skippable
// frame. It reads only the frame's headers and its blocks' headers; a
// decoder still checks the size given. At the end of r it returns io.EOF
// and nothing; a frame cut short is io.ErrUnexpectedEOF. With errNoSize,
// frame holds what was read of it, for a streaming decoder to go on from.
func readZstdFrame(r io.Reader, buf []byte) (frame []byte, size int, err error) {
	f := frameReader{r: r, b: buf}
	if err := f.take(4); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && len(f.b) == len(buf) {
			return f.b, 0, io.EOF
		}
		return f.b, 0, err
	}
	magic := binary.LittleEndian.Uint32(f.b[len(f.b)-4:])
	if magic&zstdSkippableMask == zstdSkippable {
		if err := f.take(4); err != nil {
			return f.b, 0, err
		}
		return f.b, 0, f.take(int(binary.LittleEndian.Uint32(f.b[len(f.b)-4:])))
	}
	if magic != zstdMagic {
		return f.b, 0, fmt.Errorf("not a zstd frame: magic number %#x", magic)
	}
	n, checksum, err := f.header()
	if err != nil {
		return f.b, 0, err
	}
	if err := f.blocks(); err != nil {
		return f.b, 0, err
	}
	if checksum {
		if err := f.take(4); err != nil {
			return f.b, 0, err
		}
	}
	return f.b, n, nil
}

type frameReader struct {
	r io.Reader
	b []byte
}

// take appends the next n bytes of r.
func (f *frameReader) take(n int) error {
	at := len(f.b)
	if cap(f.b)-at < n {
		f.b = append(f.b[:cap(f.b)], make([]byte, n-(cap(f.b)-at))...)
	}
	f.b = f.b[:at+n]
	got, err := io.ReadFull(f.r, f.b[at:])
	f.b = f.b[:at+got]
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// header reads a frame header after its magic number, and gives the
// frame's content size and whether a checksum ends it.
func (f *frameReader) header() (size int, checksum bool, err error) {
	if err := f.take(1); err != nil {
		return 0, false, err
	}
	fhd := f.b[len(f.b)-1]
	fcsFlag, single, dictFlag := fhd>>6, fhd&0x20 != 0, fhd&0x03
	checksum = fhd&0x04 != 0
	if fhd&0x08 != 0 {
		return 0, false, errors.New("zstd frame header: reserved bit set")
	}
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsLen = 1
	}
	if dictFlag != 0 || fcsLen == 0 {
		return 0, false, errNoSize
	}
	if !single {
		if err := f.take(1); err != nil { // the window descriptor
			return 0, false, err
		}
	}
	if err := f.take(fcsLen); err != nil {
		return 0, false, err
	}
	b := f.b[len(f.b)-fcsLen:]
	var n uint64
	switch fcsLen {
	case 1:
		n = uint64(b[0])
	case 2:
		n = uint64(binary.LittleEndian.Uint16(b)) + 256
	case 4:
		n = uint64(binary.LittleEndian.Uint32(b))
	case 8:
		n = binary.LittleEndian.Uint64(b)
	}
	if n > maxOneShot {
		return 0, false, errNoSize
	}
	return int(n), checksum, nil
}

// blocks reads a frame's blocks, up to and with its last.
func (f *frameReader) blocks() error {
	for {
		if err := f.take(3); err != nil {
			return err
		}
		b := f.b[len(f.b)-3:]
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		last, kind, n := h&1 == 1, (h>>1)&3, int(h>>3)
		switch kind {
		case 1: // RLE: one byte, repeated n times
			n = 1
		case 3:
			return errors.New("zstd block of reserved type")
		}
		if err := f.take(n); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}
