package repository

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestReadZstdFrame: frame by frame, the reader gives each frame whole
// and the size it says it decodes to, across checksums, RLE and raw
// blocks and skippable frames; it stops, for a streaming decoder, at a
// frame that does not say, needs a dictionary or claims too much; and a
// frame cut short or not zstd is an error.
func TestReadZstdFrame(t *testing.T) {
	oneShot := func(in []byte, opts ...zstd.EOption) []byte {
		enc, err := zstd.NewWriter(nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(in, nil)
	}
	streamed := func(in []byte) []byte {
		var b bytes.Buffer
		enc, _ := zstd.NewWriter(&b)
		_, _ = enc.Write(in)
		_ = enc.Close()
		return b.Bytes()
	}
	text := bytes.Repeat([]byte("lifeboat restores a volume\n"), 20_000)
	zeros := make([]byte, 300_000)
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(i*7919 + i>>3)
	}
	skippable := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 0x184D2A53), 5)
	skippable = append(skippable, 1, 2, 3, 4, 5)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withDict := oneShot(text)
	withDict[4] |= 0x01
	withCRC := oneShot(text, zstd.WithEncoderCRC(true))

	cases := []struct {
		name  string
		src   []byte
		sizes []int
		end   error // what ends the frames: io.EOF, errNoSize, or another error
	}{
		{"empty", nil, nil, io.EOF},
		{"text", oneShot(text), []int{len(text)}, io.EOF},
		{"text with checksum", withCRC, []int{len(text)}, io.EOF},
		{"zeros (RLE)", oneShot(zeros, zstd.WithEncoderCRC(false)), []int{len(zeros)}, io.EOF},
		{"random (raw blocks)", oneShot(random), []int{len(random)}, io.EOF},
		// The C library's frame of one byte: single segment, a 1-byte size.
		{"one byte", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x01, 0x09, 0x00, 0x00, 0x07}, []int{1}, io.EOF},
		// The Go encoder's frame of one byte says no size.
		{"one byte, no size", oneShot([]byte{7}), nil, errNoSize},
		{"three frames and a skippable one", cat(oneShot(text), skippable, oneShot(zeros), oneShot(random)), []int{len(text), 0, len(zeros), len(random)}, io.EOF},
		{"streamed", streamed(text), nil, errNoSize},
		{"a sized frame, then a streamed one", cat(oneShot(text), streamed(text)), []int{len(text)}, errNoSize},
		{"a dictionary", withDict, nil, errNoSize},
		{"more than one shot takes", oneShot(make([]byte, maxOneShot+1)), nil, errNoSize},
		{"cut short", oneShot(text)[:40], nil, io.ErrUnexpectedEOF},
		{"checksum cut off", withCRC[:len(withCRC)-2], nil, io.ErrUnexpectedEOF},
		{"skippable frame cut short", skippable[:9], nil, io.ErrUnexpectedEOF},
		{"not zstd", []byte("lifeboat is not a zstd frame"), nil, errors.New("not a zstd frame")},
	}
	for _, c := range cases {
		r := bytes.NewReader(c.src)
		var sizes []int
		var whole []byte
		var err error
		for {
			var frame []byte
			var size int
			frame, size, err = readZstdFrame(r, nil)
			if err != nil {
				if errors.Is(err, errNoSize) {
					whole = append(whole, frame...) // what a streaming decoder goes on from
				}
				break
			}
			sizes = append(sizes, size)
			whole = append(whole, frame...)
		}
		switch {
		case !equalInts(sizes, c.sizes):
			t.Errorf("%s: frames of %v, want %v", c.name, sizes, c.sizes)
		case c.end == io.EOF || errors.Is(c.end, errNoSize) || errors.Is(c.end, io.ErrUnexpectedEOF):
			if !errors.Is(err, c.end) {
				t.Errorf("%s: ended with %v, want %v", c.name, err, c.end)
			}
		case err == nil || errors.Is(err, io.EOF) || errors.Is(err, errNoSize):
			t.Errorf("%s: ended with %v, want an error", c.name, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, errNoSize) {
			rest, _ := io.ReadAll(r)
			if !bytes.Equal(append(whole, rest...), c.src) {
				t.Errorf("%s: the frames and the rest are not the input", c.name)
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
