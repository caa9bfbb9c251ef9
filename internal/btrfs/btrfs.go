// Package btrfs takes read-only btrfs snapshots of the subvolumes that hold
// a unit's data, so a whole project is captured at one instant while its
// containers are frozen only for the milliseconds the snapshots take.
package btrfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers from linux/btrfs.h: _IOW/_IOR(0x94, nr, 4096 or 1024 bytes).
const (
	iocSnapCreateV2 = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSnapDestroy  = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocFSInfo       = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
	iocSubvolSetFl  = 0x4008941a // _IOW(0x94, 26, __u64)
	subvolRDOnly    = 1 << 1
	firstFreeIno    = 256 // the root directory of every subvolume
)

// volArgsV2 is struct btrfs_ioctl_vol_args_v2.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	fd   int64
	name [4088]byte
}

// fsInfo is the head of struct btrfs_ioctl_fs_info_args.
type fsInfo struct {
	maxID      uint64
	numDevices uint64
	fsid       [16]byte
	rest       [1024 - 32]byte
}

// ErrNotBtrfs says a path's storage cannot be snapshotted.
var ErrNotBtrfs = errors.New("not on btrfs")

// IsBtrfs reports whether path lives on a btrfs filesystem.
func IsBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Type == unix.BTRFS_SUPER_MAGIC, nil
}

// FSID is the UUID of the btrfs filesystem holding path. Unlike st_dev and
// f_fsid, it is the same for every subvolume of one filesystem, which is
// what decides where a snapshot may be placed.
func FSID(path string) ([16]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [16]byte{}, err
	}
	defer f.Close()
	var info fsInfo
	if err := ioctl(f.Fd(), iocFSInfo, unsafe.Pointer(&info)); err != nil {
		return [16]byte{}, fmt.Errorf("btrfs fs info of %s: %w", path, err)
	}
	return info.fsid, nil
}

// SubvolumeRoot is the root of the subvolume that holds path: the nearest
// ancestor (or path itself) whose inode is 256 on the same device.
func SubvolumeRoot(path string) (string, error) {
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", p, err)
	}
	dev := st.Dev
	for {
		if err := unix.Stat(p, &st); err != nil {
			return "", fmt.Errorf("stat %s: %w", p, err)
		}
		if st.Dev != dev {
			return "", fmt.Errorf("%s: no subvolume root below the mount point", path)
		}
		if st.Ino == firstFreeIno {
			return p, nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", fmt.Errorf("%s: no subvolume root found", path)
		}
		p = parent
	}
}

// Snapshot makes a read-only snapshot of the subvolume src at dst (whose
// parent must exist on the same filesystem).
func Snapshot(src, dst string) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	name := filepath.Base(dst)
	var args volArgsV2
	if len(name) >= len(args.name) {
		return fmt.Errorf("snapshot name too long: %s", name)
	}
	args.fd = int64(s.Fd())
	args.flags = subvolRDOnly
	copy(args.name[:], name)
	if err := ioctl(d.Fd(), iocSnapCreateV2, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("btrfs snapshot of %s at %s: %w", src, dst, err)
	}
	return nil
}

// Delete removes the (read-only) snapshot at path.
func Delete(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	// A read-only subvolume cannot be destroyed by a non-root user; root
	// may, but clearing the flag first makes the intent plain and works
	// where the user_subvol_rm_allowed mount option applies.
	var flags uint64
	_ = ioctl(f.Fd(), iocSubvolSetFl, unsafe.Pointer(&flags))
	f.Close()
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	var args volArgs
	copy(args.name[:], filepath.Base(path))
	if err := ioctl(d.Fd(), iocSnapDestroy, unsafe.Pointer(&args)); err != nil {
		return fmt.Errorf("delete btrfs snapshot %s: %w", path, err)
	}
	return nil
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// mounts lists the mount points of btrfs filesystems, from mountinfo, the
// top-level subvolume's first.
func mounts() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var top, other []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - btrfs /dev/root rw,...
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) || f[sep+1] != "btrfs" || len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if unescape(f[3]) == "/" {
			top = append(top, mp)
		} else {
			other = append(other, mp)
		}
	}
	return append(top, other...), sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
