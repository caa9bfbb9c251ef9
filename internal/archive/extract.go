// Package archive turns the Engine API's tar streams into directories and
// back, keeping what the format carries: owners, modes (setuid, setgid,
// sticky), modification times, symlinks, hard links, FIFOs, device nodes
// and the xattrs of PAX records (SCHILY.xattr.*, ACLs among them as
// system.posix_acl_* values).
package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const xattrPrefix = "SCHILY.xattr."

// Stats count what Extract wrote.
type Stats struct {
	Files, Dirs, Other int64
	Bytes              int64
}

// Extract unpacks a tar stream into dir, which must exist, with the
// headers' metadata; it runs as root to set owners and device nodes.
// Names are taken relative to the stream's root ("./a" and "a" alike);
// one that leaves it is an error, not a write outside dir.
func Extract(r io.Reader, dir string) (Stats, error) {
	var x Extractor
	if _, err := x.Extract(r, dir, false); err != nil {
		return x.Stats, err
	}
	return x.Stats, x.Finish()
}

// Extractor unpacks several streams into one tree (a writable layer read
// path by path), setting directory times once all are in.
type Extractor struct {
	Stats
	dirs []dirTimes
}

type dirTimes struct {
	path string
	hdr  *tar.Header
}

// Extract unpacks r into dir. With firstOnly, a stream that starts with
// a directory yields only that directory (its own metadata, not its
// contents); first is the stream's first header.
func (x *Extractor) Extract(r io.Reader, dir string, firstOnly bool) (first *tar.Header, err error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return first, nil
		}
		if err != nil {
			return first, fmt.Errorf("read archive: %w", err)
		}
		rel, err := cleanName(hdr.Name)
		if err != nil {
			return first, err
		}
		p := filepath.Join(dir, rel)
		if err := extractOne(tr, hdr, dir, p, &x.Stats); err != nil {
			return first, fmt.Errorf("extract %s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			x.dirs = append(x.dirs, dirTimes{p, hdr})
		}
		if first == nil {
			first = hdr
			if firstOnly && hdr.Typeflag == tar.TypeDir {
				return first, nil
			}
		}
	}
}

// Finish sets the directories' times, deepest first: writing into a
// directory changes its time.
func (x *Extractor) Finish() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		if err := setTimes(x.dirs[i].path, x.dirs[i].hdr); err != nil {
			return err
		}
	}
	return nil
}

// cleanName is a header's name relative to the stream's root; "." is the
// root itself.
func cleanName(name string) (string, error) {
	c := path.Clean("/" + name)
	if strings.Contains(name, "\x00") {
		return "", fmt.Errorf("archive entry %q: NUL in name", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("archive entry %q leaves its root", name)
		}
	}
	if c == "/" {
		return ".", nil
	}
	return strings.TrimPrefix(c, "/"), nil
}

func extractOne(tr *tar.Reader, hdr *tar.Header, root, p string, st *Stats) error {
	if hdr.Typeflag != tar.TypeDir || p != root {
		// An entry replaces whatever a previous entry of the same name
		// made (a layer's archive may repeat a path); the root stays.
		if fi, err := os.Lstat(p); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		st.Dirs++
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		st.Files++
		n, err := writeFile(p, tr)
		st.Bytes += n
		if err != nil {
			return err
		}
	case tar.TypeLink:
		st.Files++
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return err
		}
		// A hard link shares its first name's inode and metadata.
		return os.Link(filepath.Join(root, target), p)
	case tar.TypeSymlink:
		st.Other++
		if err := os.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		st.Other++
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := unix.Mknod(p, typ|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return err
		}
	default:
		return nil // the engine packs nothing else; skip what we do not know
	}
	if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, xattrPrefix); ok {
			if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
				return fmt.Errorf("set xattr %s: %w", name, err)
			}
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return setTimes(p, hdr)
	}
	// After chown, which clears setuid and setgid.
	if err := unix.Fchmodat(unix.AT_FDCWD, p, mode, 0); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	return setTimes(p, hdr)
}

// writeFile writes r into a new file, leaving holes where whole blocks
// are zero: the engine's archives carry no holes, and a sparse file
// written whole would fill the staging disk.
func writeFile(p string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := copySparse(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

const holeBlock = 4096

func copySparse(f *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var off int64
	holeAtEnd := false
	for {
		n, err := io.ReadFull(r, buf)
		for i := 0; i < n; i += holeBlock {
			b := buf[i:min(i+holeBlock, n)]
			if len(b) == holeBlock && allZero(b) {
				holeAtEnd = true
			} else {
				if _, werr := f.WriteAt(b, off+int64(i)); werr != nil {
					return off, werr
				}
				holeAtEnd = false
			}
		}
		off += int64(n)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return off, err
		}
	}
	if holeAtEnd {
		return off, f.Truncate(off)
	}
	return off, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func setTimes(p string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(at), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec { return unix.NsecToTimespec(t.UnixNano()) }
