package fsmeta

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/changetime"
)

// XattrMemo remembers the inodes a scan found without extended
// attributes, with their change time, so that a later scan of the same
// tree does not list them again while that time has not moved: setting
// one moves it. The prestage's scans fill it with the unit running; the
// frozen scan then lists only the rest. Only a change time that was
// already quiet when the scan began is remembered (package changetime),
// and nothing on a network file system.
//
// Attributes a scan found are not remembered, but read again frozen: the
// prestage reads by path with the unit running, and a container that
// swapped a directory for a symlink could have it read a host file's.
// The worst it can do that way is have its own file's attributes left
// out, which it could do by removing them.
type XattrMemo struct {
	mu    sync.Mutex
	m     map[inodeKey]unix.Timespec
	trust bool
	// next, for a memo kept in a file (LoadXattrMemo), is what this
	// scan saw bare, up to maxKept inodes: what Save keeps. m then holds
	// only what was loaded: one scan has no use for what it records.
	next map[inodeKey]unix.Timespec
}

// maxKept bounds a memo kept in a file, about 40 bytes an inode in
// memory: a tree of millions of files keeps the first hundred thousand
// it meets, and the rest are listed each time.
var maxKept = 100_000

// NewXattrMemo is an empty memo for the tree at root.
func NewXattrMemo(root string) *XattrMemo {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &XattrMemo{}
	}
	defer unix.Close(fd)
	return &XattrMemo{m: map[inodeKey]unix.Timespec{}, trust: changetime.LocalFS(fd)}
}

// bare is true when the inode st describes had no extended attributes
// when its change time was the one it has now. A change time of zero is
// a file system that keeps none, and vouches for nothing.
func (x *XattrMemo) bare(st *unix.Stat_t) bool {
	if x == nil || !x.trust {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	k := inodeKey{st.Dev, st.Ino}
	ctime, ok := x.m[k]
	if ok = ok && ctime == st.Ctim && ctime != (unix.Timespec{}); ok {
		x.keep(k, ctime)
	}
	return ok
}

// recordBare remembers that the inode st describes, stat'ed after at,
// had no extended attributes when listed after that stat.
func (x *XattrMemo) recordBare(st *unix.Stat_t, at time.Time) {
	if x == nil || !x.trust || !changetime.Quiet(st.Ctim, at) {
		return
	}
	k := inodeKey{st.Dev, st.Ino}
	x.mu.Lock()
	if x.next == nil {
		x.m[k] = st.Ctim
	} else {
		x.keep(k, st.Ctim)
	}
	x.mu.Unlock()
}

// keep puts the inode in what Save writes, within maxKept; x.mu held.
func (x *XattrMemo) keep(k inodeKey, ctime unix.Timespec) {
	if x.next != nil && len(x.next) < maxKept {
		x.next[k] = ctime
	}
}
