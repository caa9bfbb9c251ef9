package fsmeta

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ApplyResult counts what Apply re-applied and lists what it could not.
type ApplyResult struct {
	Links, Xattrs, Specials int
	NotKept                 []NotKept
}

type applier struct {
	ctx  context.Context
	root string
	res  ApplyResult
}

// Apply re-applies sc onto a tree that kopia has just restored at root. The
// sidecar comes from a repository and is not trusted: no path may leave
// root or pass through a symlink.
func Apply(ctx context.Context, root string, sc *Sidecar) (ApplyResult, error) {
	a := &applier{ctx: ctx, root: root}
	steps := []func(*Sidecar) error{a.renames, a.specials, a.links, a.xattrs}
	for _, step := range steps {
		if err := step(sc); err != nil {
			return a.res, err
		}
	}
	return a.res, a.times(sc)
}

// resolve checks rel and returns its absolute path.
func (a *applier) resolve(rel Path) (string, error) {
	r := string(rel)
	if r == "." {
		return a.root, nil
	}
	clean := path.Clean(r)
	if r == "" || path.IsAbs(r) || clean != r || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("sidecar path %q is not a clean relative path", r)
	}
	cur := a.root
	parts := strings.Split(clean, "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		var st unix.Stat_t
		if err := unix.Lstat(cur, &st); err != nil {
			return "", fmt.Errorf("sidecar path %q: %w", r, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return "", fmt.Errorf("sidecar path %q passes through %s, which is not a directory", r, cur)
		}
	}
	return filepath.Join(a.root, clean), nil
}

// renames gives names that are not valid UTF-8 their original bytes back,
// deepest first so each parent is still at its stored name meanwhile.
func (a *applier) renames(sc *Sidecar) error {
	rs := append([]Rename(nil), sc.Renames...)
	sort.Slice(rs, func(i, j int) bool {
		return strings.Count(string(rs[i].Path), "/") > strings.Count(string(rs[j].Path), "/")
	})
	for _, r := range rs {
		dir, name := path.Split(string(r.Path))
		sdir, sname := path.Split(string(r.Stored))
		if name == "" || sname == "" || storedName(dir) != sdir || storedName(name) != sname {
			return fmt.Errorf("sidecar rename %q -> %q does not match", r.Stored, r.Path)
		}
		// The parent still carries its stored name while children are renamed.
		from, err := a.resolve(Path(sdir + sname))
		if err != nil {
			return err
		}
		to := filepath.Join(filepath.Dir(from), name)
		if strings.ContainsRune(name, '/') || name == "." || name == ".." {
			return fmt.Errorf("sidecar rename to %q is not a name", name)
		}
		if err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE); err != nil {
			if errors.Is(err, unix.ENOENT) {
				a.res.NotKept = append(a.res.NotKept, NotKept{Path: r.Path, Reason: "name is not valid UTF-8 and collided with another in the repository's listing"})
				continue
			}
			return fmt.Errorf("rename %s back to its original name: %w", from, err)
		}
	}
	return nil
}

func (a *applier) specials(sc *Sidecar) error {
	for _, sp := range sc.Specials {
		abs, err := a.resolve(sp.Path)
		if err != nil {
			return err
		}
		mode := sp.Mode & 07777
		switch sp.Type {
		case "fifo":
			err = unix.Mkfifo(abs, mode)
		case "char":
			err = unix.Mknod(abs, unix.S_IFCHR|mode, int(sp.Rdev))
		case "block":
			err = unix.Mknod(abs, unix.S_IFBLK|mode, int(sp.Rdev))
		default:
			return fmt.Errorf("sidecar: unknown special file type %q at %s", sp.Type, sp.Path)
		}
		if errors.Is(err, unix.EPERM) {
			a.res.NotKept = append(a.res.NotKept, NotKept{Path: sp.Path, Reason: sp.Type + " device: creating it needs CAP_MKNOD here"})
			continue
		}
		if err != nil {
			return fmt.Errorf("create %s %s: %w", sp.Type, abs, err)
		}
		if err := unix.Lchown(abs, int(sp.UID), int(sp.GID)); err != nil {
			return fmt.Errorf("chown %s: %w", abs, err)
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, abs, mode, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", abs, err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(sp.MtimeNs), unix.NsecToTimespec(sp.MtimeNs)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", abs, err)
		}
		a.res.Specials++
	}
	return nil
}

// links turns kopia's separate copies back into one inode per group.
func (a *applier) links(sc *Sidecar) error {
	for _, g := range sc.HardLinks {
		if len(g) < 2 {
			continue
		}
		first, err := a.resolve(g[0])
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(first, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("hard link group of %s: first member is not a restored file (%v)", g[0], err)
		}
		for _, member := range g[1:] {
			if err := a.ctx.Err(); err != nil {
				return err
			}
			abs, err := a.resolve(member)
			if err != nil {
				return err
			}
			if err := a.relink(first, abs); err != nil {
				return err
			}
			a.res.Links++
		}
	}
	return nil
}

func (a *applier) relink(first, abs string) error {
	var st unix.Stat_t
	err := unix.Lstat(abs, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return fmt.Errorf("stat %s: %w", abs, err)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("hard link %s: a %o is in the way", abs, st.Mode&unix.S_IFMT)
	}
	// Link under a temporary name, then rename over kopia's copy: the name
	// never points at nothing.
	tmp := abs + ".lifeboat-link"
	_ = unix.Unlink(tmp)
	if err := unix.Link(first, tmp); err != nil {
		return fmt.Errorf("link %s: %w", abs, err)
	}
	if err := unix.Rename(tmp, abs); err != nil {
		_ = unix.Unlink(tmp)
		return fmt.Errorf("link %s: %w", abs, err)
	}
	return nil
}

func (a *applier) xattrs(sc *Sidecar) error {
	done := map[inodeKey]bool{}
	paths := make([]Path, 0, len(sc.Xattrs))
	for p := range sc.Xattrs {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i] < paths[j] })
	for _, p := range paths {
		abs, err := a.resolve(p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(abs, &st); err != nil {
			a.res.NotKept = append(a.res.NotKept, NotKept{Path: p, Reason: fmt.Sprintf("xattrs not re-applied: %v", err)})
			continue
		}
		k := inodeKey{uint64(st.Dev), st.Ino}
		if done[k] {
			continue // another name of the same inode
		}
		done[k] = true
		names := make([]string, 0, len(sc.Xattrs[p]))
		for n := range sc.Xattrs[p] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			err := unix.Lsetxattr(abs, n, sc.Xattrs[p][n], 0)
			switch {
			case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
				a.res.NotKept = append(a.res.NotKept, NotKept{Path: p, Reason: fmt.Sprintf("xattr %s refused by the target filesystem: %v", n, err)})
			case err != nil:
				return fmt.Errorf("set xattr %s on %s: %w", n, abs, err)
			default:
				a.res.Xattrs++
			}
		}
	}
	return nil
}

// times sets directory and symlink mtimes last, after links and device
// nodes changed the directories; the access time takes the same value, as
// kopia does for files.
func (a *applier) times(sc *Sidecar) error {
	for p, ns := range sc.Times {
		abs, err := a.resolve(p)
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(ns), unix.NsecToTimespec(ns)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, abs, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", abs, err)
		}
	}
	return nil
}
