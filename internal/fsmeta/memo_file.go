package fsmeta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A memo kept in a file carries what one backup's scan found bare to the
// next backup's scan of the same tree, which then lists the extended
// attributes only of the inodes whose change time moved since: on a tree
// of 83,732 unchanged entries, the listing was a third of the scan's
// system calls. It is a cache: a file that is missing, torn or of
// another version is an empty memo, and Save writes only what this scan
// saw, so that deleted files do not linger.

// memoMagic starts a memo file; the version is its last byte.
var memoMagic = []byte("lifeboat-xattr-memo\x00\x01")

// memoRecord is one inode: dev, ino, ctime's seconds and nanoseconds.
const memoRecord = 32

// LoadXattrMemo is the memo of the tree at root kept in file, or an
// empty one for the tree when there is none to trust.
func LoadXattrMemo(root, file string) *XattrMemo {
	x := NewXattrMemo(root)
	x.next = map[inodeKey]unix.Timespec{}
	if !x.trust {
		return x
	}
	b, err := os.ReadFile(file)
	if err != nil || len(b) < len(memoMagic)+4 || !bytes.HasPrefix(b, memoMagic) {
		return x
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	recs := body[len(memoMagic):]
	if crc32.ChecksumIEEE(body) != sum || len(recs)%memoRecord != 0 {
		return x
	}
	for i := 0; i < len(recs) && i < maxKept*memoRecord; i += memoRecord {
		r := recs[i : i+memoRecord]
		k := inodeKey{binary.LittleEndian.Uint64(r), binary.LittleEndian.Uint64(r[8:])}
		x.m[k] = unix.Timespec{Sec: int64(binary.LittleEndian.Uint64(r[16:])), Nsec: int64(binary.LittleEndian.Uint64(r[24:]))}
	}
	return x
}

// Save writes to file the inodes this memo's scans found bare or
// confirmed bare, for the next LoadXattrMemo; nothing for a memo not
// loaded from a file, or one not trusted.
func (x *XattrMemo) Save(file string) error {
	if x == nil || x.next == nil || !x.trust {
		return nil
	}
	x.mu.Lock()
	b := make([]byte, 0, len(memoMagic)+len(x.next)*memoRecord+4)
	b = append(b, memoMagic...)
	for k, c := range x.next {
		b = binary.LittleEndian.AppendUint64(b, k.dev)
		b = binary.LittleEndian.AppendUint64(b, k.ino)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Sec))
		b = binary.LittleEndian.AppendUint64(b, uint64(c.Nsec))
	}
	x.mu.Unlock()
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("save xattr memo: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save xattr memo: %w", err)
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save xattr memo: %w", err)
	}
	// No fsync: a memo lost in a crash only costs the next scan its
	// listing, and a torn one fails its checksum.
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save xattr memo: %w", err)
	}
	return nil
}
