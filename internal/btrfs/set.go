package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SnapshotDir is the directory, at the top of a btrfs filesystem's mount,
// that holds lifeboat's snapshots while a backup reads them.
const SnapshotDir = ".lifeboat-snapshots"

// Set is the snapshots of one capture: one per subvolume that holds any of
// the unit's paths.
type Set struct {
	roots  []string          // subvolume roots, each once
	dest   map[string]string // root → where its snapshot goes
	of     map[string]string // resolved data path → its root
	real   map[string]string // data path as given → resolved
	dirs   []string          // per-capture directories to remove
	taken  []string
	Synced time.Duration // flushing before the freeze
}

// Plan prepares the snapshots of the subvolumes holding paths. It takes
// none yet: everything slow (finding places, flushing dirty data) happens
// here, before the unit is frozen, so the freeze holds only the snapshot
// calls. An error wrapping ErrNotBtrfs names the path that cannot be
// snapshotted.
func Plan(paths []string) (*Set, error) {
	s := &Set{dest: map[string]string{}, of: map[string]string{}, real: map[string]string{}}
	id := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var resolved []string
	for _, p := range paths {
		ok, err := IsBtrfs(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", p, ErrNotBtrfs)
		}
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		s.real[p] = r
		resolved = append(resolved, r)
	}
	for _, p := range resolved {
		root, err := SubvolumeRoot(p)
		if err != nil {
			return nil, err
		}
		s.of[p] = root
		if _, ok := s.dest[root]; !ok {
			s.dest[root] = ""
			s.roots = append(s.roots, root)
		}
	}
	places := map[[16]byte]string{}
	for i, root := range s.roots {
		fsid, err := FSID(root)
		if err != nil {
			return nil, err
		}
		place, ok := places[fsid]
		if !ok {
			if place, err = placeFor(fsid, resolved, root); err != nil {
				return nil, err
			}
			cleanStale(place)
			place = filepath.Join(place, id)
			if err := os.MkdirAll(place, 0o700); err != nil {
				return nil, fmt.Errorf("prepare snapshot directory: %w", err)
			}
			s.dirs = append(s.dirs, place)
			places[fsid] = place
		}
		s.dest[root] = filepath.Join(place, strconv.Itoa(i))
	}
	start := time.Now()
	for _, root := range s.roots {
		if err := syncfs(root); err != nil {
			return nil, err
		}
	}
	s.Synced = time.Since(start)
	return s, nil
}

// placeFor finds a directory on the filesystem fsid, outside every data
// path, for the snapshots: the top of a mount of that filesystem
// (preferring the top-level subvolume's), else beside the subvolume.
func placeFor(fsid [16]byte, data []string, root string) (string, error) {
	mps, err := mounts()
	if err != nil {
		return "", err
	}
	candidates := append(mps, filepath.Dir(root))
	for _, mp := range candidates {
		dir := filepath.Join(mp, SnapshotDir)
		if within(dir, data) {
			continue
		}
		if id, err := FSID(mp); err != nil || id != fsid {
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no directory on the btrfs filesystem of %s outside the unit's data to put a snapshot: mount the filesystem's top level somewhere (mount -o subvolid=5)", root)
}

func within(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// cleanStale deletes snapshots left by a lifeboat that died while reading
// them: their directory names start with the owner's PID.
func cleanStale(place string) {
	entries, err := os.ReadDir(place)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.SplitN(e.Name(), "-", 2)[0])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		removeDir(filepath.Join(place, e.Name()))
	}
}

// Take snapshots every subvolume. It runs while the unit is frozen.
func (s *Set) Take() error {
	for _, root := range s.roots {
		if err := Snapshot(root, s.dest[root]); err != nil {
			return err
		}
		s.taken = append(s.taken, s.dest[root])
	}
	return nil
}

// Path is where path's content is found in the snapshots.
func (s *Set) Path(p string) string {
	r, ok := s.real[p]
	if !ok {
		return p
	}
	root := s.of[r]
	return s.dest[root] + strings.TrimPrefix(r, root)
}

// Count is the number of snapshots the set takes.
func (s *Set) Count() int { return len(s.roots) }

// Remove deletes the snapshots and their directories.
func (s *Set) Remove() error {
	var errs []error
	for _, t := range s.taken {
		errs = append(errs, Delete(t))
	}
	s.taken = nil
	for _, d := range s.dirs {
		errs = append(errs, os.Remove(d))
		_ = os.Remove(filepath.Dir(d)) // only when empty
	}
	return errors.Join(errs...)
}

// removeDir deletes every snapshot in a per-capture directory, then it.
func removeDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = Delete(filepath.Join(dir, e.Name()))
	}
	_ = os.Remove(dir)
}

func syncfs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// emptySubvolIno is the inode number a snapshot shows for a subvolume that
// was nested in the snapshotted one: an empty placeholder directory
// (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID).
const emptySubvolIno = 2

// CheckDir fails for a nested-subvolume placeholder in a snapshot: the
// snapshot of the parent does not hold that subvolume's files, and a backup
// must not store an empty directory in their place.
func CheckDir(rel string, st *unix.Stat_t) error {
	if st.Ino == emptySubvolIno {
		return fmt.Errorf("%s is a btrfs subvolume nested in the data, which a snapshot of its parent does not contain: back it up with --consistency pause, or make it a volume of its own", rel)
	}
	return nil
}
