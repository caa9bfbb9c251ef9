package archive

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Pack writes dir as a PAX tar stream whose names start with prefix
// ("prefix/" is dir itself): nanosecond times, owners, modes, xattrs
// (ACLs included), hard links, symlinks, FIFOs and device nodes. Sockets
// are left out; sparse files are written whole.
func Pack(dir, prefix string, w io.Writer) (Stats, error) {
	name := func(rel string) string {
		if rel == "." {
			return prefix
		}
		return prefix + "/" + rel
	}
	return pack(dir, w, name, nil, nil)
}

// PackLayer writes a writable layer's tree (as overlay2 keeps it) with
// names relative to the container's root and without the root itself,
// for unpacking at "/" of a container made from the same image. Whiteouts
// (0/0 character devices) are not packed but returned: a deletion has no
// archive entry of its own. skip leaves out a path and what is beneath.
func PackLayer(dir string, w io.Writer, skip func(rel string) bool) (deleted []string, st Stats, err error) {
	// overlayfs's own bookkeeping (origin, impure, opaque) is not the
	// layer's data: written through a container's root, overlayfs would
	// keep it as data, escaped.
	overlay := func(name string) bool { return strings.HasPrefix(name, "trusted.overlay.") }
	st, err = pack(dir, w, func(rel string) string { return rel }, overlay, func(rel string, s *unix.Stat_t) (bool, error) {
		if rel == "." {
			return true, nil
		}
		if skip != nil && skip(rel) {
			if s.Mode&unix.S_IFMT == unix.S_IFDIR {
				return true, filepath.SkipDir
			}
			return true, nil
		}
		if s.Mode&unix.S_IFMT == unix.S_IFCHR && s.Rdev == 0 {
			deleted = append(deleted, rel)
			return true, nil
		}
		return false, nil
	})
	return deleted, st, err
}

func pack(dir string, w io.Writer, name func(rel string) string, dropXattr func(string) bool, skip func(string, *unix.Stat_t) (bool, error)) (Stats, error) {
	var st Stats
	tw := tar.NewWriter(w)
	seen := map[[2]uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil {
			var s unix.Stat_t
			if err := unix.Lstat(p, &s); err != nil {
				return err
			}
			if ok, err := skip(rel, &s); ok || err != nil {
				return err
			}
		}
		return packOne(tw, p, name(rel), seen, &st, dropXattr)
	})
	if err != nil {
		return st, fmt.Errorf("pack %s: %w", dir, err)
	}
	return st, tw.Close()
}

func packOne(tw *tar.Writer, p, name string, seen map[[2]uint64]string, st *Stats, dropXattr func(string) bool) error {
	var s unix.Stat_t
	if err := unix.Lstat(p, &s); err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: int64(s.Mode & 0o7777), Uid: int(s.Uid), Gid: int(s.Gid),
		ModTime: time.Unix(s.Mtim.Unix()), AccessTime: time.Unix(s.Atim.Unix()), Format: tar.FormatPAX}
	switch s.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		st.Dirs++
	case unix.S_IFREG:
		st.Files++
		key := [2]uint64{uint64(s.Dev), s.Ino}
		if first, ok := seen[key]; ok && s.Nlink > 1 {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return tw.WriteHeader(hdr)
		}
		if s.Nlink > 1 {
			seen[key] = name
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, s.Size
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		st.Other++
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if s.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(s.Rdev)), int64(unix.Minor(s.Rdev))
		st.Other++
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		st.Other++
	default:
		return nil // a socket: its listener made it and makes it again
	}
	if err := addXattrs(hdr, p, dropXattr); err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyN(tw, f, hdr.Size)
	st.Bytes += n
	return err
}

func addXattrs(hdr *tar.Header, p string, drop func(string) bool) error {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil
		}
		return fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || drop != nil && drop(name) {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return fmt.Errorf("read xattr %s of %s: %w", name, p, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[xattrPrefix+name] = string(v[:m])
	}
	return nil
}
