// Package flock takes the advisory locks that mark a live owner: the
// freeze journal's entries, the restore journal's and the unit locks. The
// kernel drops such a lock however its process dies, so a lock that can
// be taken means a dead owner. It also creates the journals' temporary
// files, locked before anyone can see them (CreateTemp).
package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// TryLock takes an exclusive flock on f without waiting, and reports false
// when another holds it. flock locks belong to the open file description,
// so it fails even against a lock held through another open of the same
// file in this process. Files from os.OpenFile are close-on-exec, so a
// child process (a hook, docker-compose) never inherits the lock and keeps
// a dead owner looking alive.
func TryLock(f *os.File) (bool, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if lerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return false, err
	}
	if errors.Is(lerr, unix.EWOULDBLOCK) {
		return false, nil
	}
	return lerr == nil, lerr
}
