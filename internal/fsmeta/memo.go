package fsmeta

import (
	"maps"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/changetime"
)

// XattrMemo remembers the extended attributes a scan read, by inode and
// change time, so that a later scan of the same tree does not read them
// again for an inode whose change time has not moved: setting or removing
// one moves it. The prestage's scans fill it with the unit running; the
// frozen scan then reads only what changed since. Only a change time
// that was already quiet when the scan began is remembered (package
// changetime), and nothing on a network file system.
type XattrMemo struct {
	mu    sync.Mutex
	m     map[inodeKey]xattrMemo
	trust bool
}

type xattrMemo struct {
	ctime unix.Timespec
	x     map[string][]byte // nil: none
}

// NewXattrMemo is an empty memo for the tree at root.
func NewXattrMemo(root string) *XattrMemo {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &XattrMemo{}
	}
	defer unix.Close(fd)
	return &XattrMemo{m: map[inodeKey]xattrMemo{}, trust: changetime.LocalFS(fd)}
}

// lookup is what the memo holds for the inode st describes, if its
// change time is the one remembered.
func (x *XattrMemo) lookup(st *unix.Stat_t) (map[string][]byte, bool) {
	if x == nil || !x.trust {
		return nil, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.m[inodeKey{st.Dev, st.Ino}]
	if !ok || e.ctime != st.Ctim {
		return nil, false
	}
	return e.x, true
}

// record remembers xs, read after a stat st made after at.
func (x *XattrMemo) record(st *unix.Stat_t, xs map[string][]byte, at time.Time) {
	if x == nil || !x.trust || !changetime.Quiet(st.Ctim, at) {
		return
	}
	x.mu.Lock()
	x.m[inodeKey{st.Dev, st.Ino}] = xattrMemo{ctime: st.Ctim, x: maps.Clone(xs)}
	x.mu.Unlock()
}
