package fsmeta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

// ApplyResult counts what Apply re-applied and lists what it could not.
type ApplyResult struct {
	Links, Xattrs, Specials int
	NotKept                 []NotKept
}

type applier struct {
	ctx  context.Context
	root *beneath.Root
	res  ApplyResult
}

// Apply re-applies sc onto a tree that kopia has just restored at root. The
// sidecar comes from a repository and is not trusted, and the tree may be a
// volume that a running container changes meanwhile: every path is resolved
// beneath root without following a symlink, so none leads outside it.
func Apply(ctx context.Context, root string, sc *Sidecar) (ApplyResult, error) {
	return ApplyAt(ctx, root, ".", sc)
}

// ApplyAt is Apply onto the tree at rel beneath base: a symlink anywhere in
// rel is refused too, not only below it.
func ApplyAt(ctx context.Context, base, rel string, sc *Sidecar) (ApplyResult, error) {
	b, err := beneath.Open(base)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply sidecar: %w", err)
	}
	defer b.Close()
	root := b
	if rel != "." && rel != "" {
		d, err := b.OpenDir(strings.Trim(rel, "/"))
		if err != nil {
			return ApplyResult{}, fmt.Errorf("apply sidecar: %w", err)
		}
		root = beneath.FromFile(d)
		defer root.Close()
	}
	a := &applier{ctx: ctx, root: root}
	steps := []func(*Sidecar) error{a.renames, a.specials, a.links, a.xattrs}
	for _, step := range steps {
		if err := step(sc); err != nil {
			return a.res, err
		}
	}
	return a.res, a.times(sc)
}

// parent checks rel and opens the directory that holds it. The caller
// closes it.
func (a *applier) parent(rel Path) (*os.File, string, error) {
	if err := beneath.Check(string(rel)); err != nil {
		return nil, "", fmt.Errorf("sidecar path: %w", err)
	}
	d, name, err := a.root.Parent(string(rel))
	if err != nil {
		return nil, "", fmt.Errorf("sidecar path %q: %w", rel, err)
	}
	return d, name, nil
}

// renames gives names that are not valid UTF-8 their original bytes back,
// deepest first so each parent is still at its stored name meanwhile.
func (a *applier) renames(sc *Sidecar) error {
	rs := append([]Rename(nil), sc.Renames...)
	sort.Slice(rs, func(i, j int) bool {
		return strings.Count(string(rs[i].Path), "/") > strings.Count(string(rs[j].Path), "/")
	})
	for _, r := range rs {
		if err := a.rename(r); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) rename(r Rename) error {
	dir, name := path.Split(string(r.Path))
	sdir, sname := path.Split(string(r.Stored))
	if name == "" || sname == "" || storedName(dir) != sdir || storedName(name) != sname {
		return fmt.Errorf("sidecar rename %q -> %q does not match", r.Stored, r.Path)
	}
	if strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return fmt.Errorf("sidecar rename to %q is not a name", name)
	}
	// The parent still carries its stored name while children are renamed.
	d, from, err := a.parent(Path(sdir + sname))
	if err != nil {
		return err
	}
	defer d.Close()
	fd := int(d.Fd())
	if err := unix.Renameat2(fd, from, fd, name, unix.RENAME_NOREPLACE); err != nil {
		if errors.Is(err, unix.ENOENT) {
			a.res.NotKept = append(a.res.NotKept, NotKept{Path: r.Path, Reason: "name is not valid UTF-8 and collided with another in the repository's listing"})
			return nil
		}
		return fmt.Errorf("rename %s/%s back to its original name: %w", d.Name(), from, err)
	}
	return nil
}

func (a *applier) specials(sc *Sidecar) error {
	for _, sp := range sc.Specials {
		if err := a.special(sp); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) special(sp Special) error {
	var kind uint32
	switch sp.Type {
	case "fifo":
		kind = unix.S_IFIFO
	case "char":
		kind = unix.S_IFCHR
	case "block":
		kind = unix.S_IFBLK
	default:
		return fmt.Errorf("sidecar: unknown special file type %q at %s", sp.Type, sp.Path)
	}
	d, name, err := a.parent(sp.Path)
	if err != nil {
		return err
	}
	defer d.Close()
	mode := sp.Mode & 07777
	err = unix.Mknodat(int(d.Fd()), name, kind|mode, int(sp.Rdev))
	if errors.Is(err, unix.EPERM) {
		a.res.NotKept = append(a.res.NotKept, NotKept{Path: sp.Path, Reason: sp.Type + " device: creating it needs CAP_MKNOD here"})
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s %s/%s: %w", sp.Type, d.Name(), name, err)
	}
	// Owner and mode through a descriptor of the node itself, which is
	// never opened for I/O: a device may act on open, a FIFO blocks.
	f, err := beneath.OpenPath(d, name)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != kind {
		return fmt.Errorf("create %s %s: replaced while being created (%v)", sp.Type, f.Name(), err)
	}
	if err := unix.Fchownat(int(f.Fd()), "", int(sp.UID), int(sp.GID), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %s: %w", f.Name(), err)
	}
	// chmod by the descriptor's /proc name, after chown (which clears
	// setuid and setgid), and undoing the umask mknod applied.
	if err := unix.Chmod(beneath.ProcPath(f), mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := beneath.SetTimes(d, name, sp.MtimeNs); err != nil {
		return err
	}
	a.res.Specials++
	return nil
}

// links turns kopia's separate copies back into one inode per group.
func (a *applier) links(sc *Sidecar) error {
	for _, g := range sc.HardLinks {
		if len(g) < 2 {
			continue
		}
		if err := a.linkGroup(g); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) linkGroup(g []Path) error {
	fd, fname, err := a.parent(g[0])
	if err != nil {
		return err
	}
	defer fd.Close()
	st, err := beneath.Lstat(fd, fname)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("hard link group of %s: first member is not a restored file (%v)", g[0], err)
	}
	for _, member := range g[1:] {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		md, name, err := a.parent(member)
		if err != nil {
			return err
		}
		err = relink(fd, fname, st.Ino, md, name)
		md.Close()
		if err != nil {
			return err
		}
		a.res.Links++
	}
	return nil
}

// relink makes name in dir another name of the file fname in fdir (inode
// ino). It links under a temporary name, then renames over kopia's copy:
// the name never points at nothing.
func relink(fdir *os.File, fname string, ino uint64, dir *os.File, name string) error {
	abs := dir.Name() + "/" + name
	st, err := beneath.Lstat(dir, name)
	switch {
	case beneath.IsNotExist(err):
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("hard link %s: a %o is in the way", abs, st.Mode&unix.S_IFMT)
	}
	dfd := int(dir.Fd())
	tmp := name + ".lifeboat-link"
	if len(tmp) > 255 {
		tmp = ".lifeboat-link"
	}
	_ = unix.Unlinkat(dfd, tmp, 0)
	// linkat without AT_SYMLINK_FOLLOW: if fname was swapped for a symlink,
	// the new name is that symlink, still beneath the root; caught below.
	if err := unix.Linkat(int(fdir.Fd()), fname, dfd, tmp, 0); err != nil {
		return fmt.Errorf("link %s: %w", abs, err)
	}
	if lt, err := beneath.Lstat(dir, tmp); err != nil || lt.Ino != ino || lt.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("link %s: first member changed while linking (%v)", abs, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
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
		if err := a.xattrsOf(p, sc.Xattrs[p], done); err != nil {
			return err
		}
	}
	return nil
}

// xattrsOf sets p's extended attributes through an O_PATH descriptor of p
// itself, so a symlink planted at p gets them (or refuses them), never its
// target.
func (a *applier) xattrsOf(p Path, xs map[string][]byte, done map[inodeKey]bool) error {
	d, name, err := a.parent(p)
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := beneath.OpenPath(d, name)
	if err != nil {
		a.res.NotKept = append(a.res.NotKept, NotKept{Path: p, Reason: fmt.Sprintf("xattrs not re-applied: %v", err)})
		return nil
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	k := inodeKey{uint64(st.Dev), st.Ino}
	if done[k] {
		return nil // another name of the same inode
	}
	done[k] = true
	names := make([]string, 0, len(xs))
	for n := range xs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		// The /proc name of an O_PATH descriptor reaches its inode, and a
		// symlink's own inode when that is what it holds.
		err := unix.Setxattr(beneath.ProcPath(f), n, xs[n], 0)
		switch {
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			a.res.NotKept = append(a.res.NotKept, NotKept{Path: p, Reason: fmt.Sprintf("xattr %s refused by the target filesystem: %v", n, err)})
		case err != nil:
			return fmt.Errorf("set xattr %s on %s: %w", n, f.Name(), err)
		default:
			a.res.Xattrs++
		}
	}
	return nil
}

// times sets directory and symlink mtimes last, after links and device
// nodes changed the directories; the access time takes the same value, as
// kopia does for files.
func (a *applier) times(sc *Sidecar) error {
	for p, ns := range sc.Times {
		d, name, err := a.parent(p)
		if err != nil {
			return err
		}
		err = beneath.SetTimes(d, name, ns)
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
