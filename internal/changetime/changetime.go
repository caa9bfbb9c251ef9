// Package changetime says when a file's change time (ctime) vouches that
// the file has not changed since it was read: ctime, unlike mtime, no
// process can set back, and every write, chmod, chown and xattr change
// moves it. But the kernel stamps it from its coarse clock, one tick (at
// most 10 ms) behind, so a change in the same tick as an earlier one can
// leave it as it was: only a ctime that was already old when the file was
// read vouches for it — the "racy timestamp" git guards against.
package changetime

import (
	"time"

	"golang.org/x/sys/unix"
)

// QuietFor is how long before the read a ctime must lie to vouch; file
// systems that keep whole seconds (ext4 with small inodes, FAT in steps
// of two) show no nanoseconds, and need CoarseQuietFor. Variables for
// tests.
var QuietFor, CoarseQuietFor = 50 * time.Millisecond, 2 * time.Second

// Quiet reports whether ctime, seen in a stat made at or after at, was
// old enough then to vouch for what was read after that stat.
func Quiet(ctime unix.Timespec, at time.Time) bool {
	q := QuietFor
	if ctime.Nsec == 0 {
		q = CoarseQuietFor
	}
	return time.Unix(ctime.Unix()).Before(at.Add(-q))
}

// LocalFS is false for network file systems, whose times come from
// another host's clock: a quiet ctime there is not measured against ours.
func LocalFS(fd int) bool {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return false
	}
	switch uint32(fs.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC, unix.FUSE_SUPER_MAGIC,
		unix.CEPH_SUPER_MAGIC, unix.V9FS_MAGIC, unix.AFS_SUPER_MAGIC, unix.OCFS2_SUPER_MAGIC:
		return false
	}
	return true
}
