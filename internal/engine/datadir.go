package engine

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DataDir is where the volume's files are on this host. The local driver
// mounts a volume created with options (type=none,o=bind,device=DIR; nfs;
// tmpfs; a block device) at Mountpoint only while a container uses it, so
// an unused one shows an empty directory there. A bind's files are read at
// its device directory whether or not it is mounted; any other such mount
// that is not mounted now is an error, never an empty restore point.
func (v Volume) DataDir() (string, error) {
	if v.Driver != "" && v.Driver != "local" {
		return v.Mountpoint, nil
	}
	typ, dev := v.Options["type"], v.Options["device"]
	if typ == "" && dev == "" {
		return v.Mountpoint, nil
	}
	if hasOption(v.Options["o"], "bind") && filepath.IsAbs(dev) {
		return filepath.Clean(dev), nil
	}
	mounted, err := mountedHere(v.Mountpoint)
	if err != nil {
		return "", fmt.Errorf("volume %q: %w", v.Name, err)
	}
	if !mounted {
		return "", fmt.Errorf("volume %q is a %s mount that the engine makes only while a container uses it, and none does now: back it up while its containers run (consistency pause or dump), or mount it by starting one", v.Name, typ)
	}
	return v.Mountpoint, nil
}

// mountedHere reports whether dir is the root of a file system other than
// its parent's (a bind of the same file system is not told apart, which is
// why binds are read at their device directory instead).
func mountedHere(dir string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Lstat(dir, &a); err != nil {
		return false, fmt.Errorf("stat mount point %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &b); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return a.Dev != b.Dev, nil
}
