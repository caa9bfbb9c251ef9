package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// A dump read through the exec stream is relayed byte by byte by the
// engine (dockerd and the container's shim), at normal priority: about
// half a core at 70 MB/s, taken from the database's own clients. On a
// local engine the dump goes through a FIFO in the container instead,
// which lifeboat opens from the host beneath the container's root
// (/proc/PID/root), so the exec stream carries only a marker and stderr.

// fifoPrefix starts the name of a dump's FIFO in the container.
const fifoPrefix = ".lifeboat-dump-"

// IsDumpFIFO reports whether name is that of a FIFO fifoWrap makes: the
// prefix and 32 hex digits, nothing a container would name a file of its
// own by chance.
func IsDumpFIFO(name string) bool { return dumpFIFOName.MatchString(name) }

var dumpFIFOName = regexp.MustCompile(`^` + regexp.QuoteMeta(fifoPrefix) + `[0-9a-f]{32}$`)

// fifoDirs are where the wrapper may make the FIFO, most wanted first:
// /dev/shm is a tmpfs in every Docker and Podman container, outside the
// writable layer a backup captures.
var fifoDirs = []string{"/dev/shm", "/tmp"}

// fifoWrap runs "$@" with its stdout into a FIFO named $1 in the first
// directory of fifoDirs that takes one, after printing that directory as
// the first line of the exec's stdout; or, where none does, prints "-"
// and runs it with stdout as it is. The marker line is always there, so
// no output of the command is ever taken for it. The FIFO is made 0600
// by the container's own user; it is removed when the command ends.
var fifoWrap = `n=$1; shift; for d in ` + strings.Join(fifoDirs, " ") + `; do ` +
	`if [ -d "$d" ] && (umask 077; mkfifo "$d/$n") 2>/dev/null; then printf '%s\n' "$d"; "$@" >"$d/$n"; rc=$?; rm -f "$d/$n"; exit $rc; fi; ` +
	`done; printf '%s\n' -; exec "$@"`

// fifoRoot returns the root of container id as the host sees it, when
// lifeboat can reach it: a local engine, a running container, and a
// /proc/PID of this PID namespace that is that container's process (its
// cgroup names the container), so a lifeboat in a container of its own
// never opens some other process's files. nil means use the stream.
func (c *Client) fifoRoot(ctx context.Context, id string) *beneath.Root {
	if !c.IsLocal() {
		return nil
	}
	res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || !res.Container.State.Running || res.Container.State.Pid <= 0 {
		return nil
	}
	pid := strconv.Itoa(res.Container.State.Pid)
	cgroup, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil || !slices.Contains(ContainerIDs(string(cgroup), ""), res.Container.ID) {
		return nil
	}
	root, err := beneath.Open("/proc/" + pid + "/root")
	if err != nil {
		return nil
	}
	// The container's process could have ended, and its PID been reused,
	// since the cgroup was read: read it again through the open root's
	// process.
	if again, err := os.ReadFile("/proc/" + pid + "/cgroup"); err != nil || string(again) != string(cgroup) {
		root.Close()
		return nil
	}
	return root
}

// fifoName is a fresh FIFO name: random, so no process of the container
// can have made it beforehand.
func fifoName() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fifoPrefix + hex.EncodeToString(b)
}

// readMarker reads the wrapper's first line, one byte at a time so that
// nothing after it is consumed.
func readMarker(r io.Reader) (string, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 64 {
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		if b[0] == '\n' {
			return string(line), nil
		}
		line = append(line, b[0])
	}
	return "", errors.New("no marker line")
}

// dumpFIFO is the host's end of a dump's FIFO.
type dumpFIFO struct {
	dir  *os.File // the directory that holds it, beneath the container's root
	name string
	path *os.File // an O_PATH descriptor of the FIFO itself
}

// openFIFO finds the FIFO name in dir (one of fifoDirs) beneath root, and
// refuses anything else than a FIFO there: a container that swapped it
// for a symlink or a device node gets an error, never the host's data.
func openFIFO(root *beneath.Root, dir, name string) (*dumpFIFO, error) {
	if !slices.Contains(fifoDirs, dir) {
		return nil, fmt.Errorf("dump FIFO: the container named %q, not one of %v", dir, fifoDirs)
	}
	d, err := root.OpenDir(strings.TrimPrefix(dir, "/"))
	if err != nil {
		return nil, fmt.Errorf("dump FIFO: %w", err)
	}
	p, _, err := fifoPath(d, name)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("dump FIFO %s/%s: %w", dir, name, err)
	}
	return &dumpFIFO{dir: d, name: name, path: p}, nil
}

// fifoPath is an O_PATH descriptor of name in dir, without following a
// symlink, and its stat, when it is a FIFO; an error for anything else.
func fifoPath(dir *os.File, name string) (*os.File, *unix.Stat_t, error) {
	p, err := beneath.OpenPath(dir, name)
	if err != nil {
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(p.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		p.Close()
		return nil, nil, fmt.Errorf("not a FIFO (%v)", err)
	}
	return p, &st, nil
}

// open opens the FIFO for reading, which waits for its writer. When done
// is closed first (the exec ended, or the job was cancelled), the wait is
// ended by opening the writing side ourselves. The reader is returned
// either way: a writer that came and went before done may have left its
// whole output in the pipe, and one that never came leaves it empty, for
// the exec's exit status (or the cancelled job) to fail the dump.
func (f *dumpFIFO) open(done <-chan struct{}) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := os.OpenFile(beneath.ProcPath(f.path), os.O_RDONLY|unix.O_NOCTTY, 0)
		ch <- opened{r, err}
	}()
	var o opened
	select {
	case o = <-ch:
	case <-done:
		if w, err := unix.Open(beneath.ProcPath(f.path), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(w)
		}
		o = <-ch
	}
	if o.err != nil {
		return nil, fmt.Errorf("%w: %w", errNoFIFO, o.err)
	}
	return o.f, nil
}

// remove unlinks the FIFO if it is still the one opened: the wrapper
// removes it itself unless it was killed.
func (f *dumpFIFO) remove() {
	var st, now unix.Stat_t
	if unix.Fstat(int(f.path.Fd()), &st) == nil &&
		unix.Fstatat(int(f.dir.Fd()), f.name, &now, unix.AT_SYMLINK_NOFOLLOW) == nil && now.Dev == st.Dev && now.Ino == st.Ino {
		_ = unix.Unlinkat(int(f.dir.Fd()), f.name, 0)
	}
	f.path.Close()
	f.dir.Close()
}

// staleAfter is how long a dump FIFO may wait for lifeboat's open: the
// open follows the wrapper's marker within milliseconds, so one older
// than this was left by a lifeboat killed in between, and its writer
// waits in the container for a reader that will never come.
var staleAfter = time.Minute

// releaseStale frees the writers of stale dump FIFOs in the container:
// opening one for reading and writing lets its writer's open return, and
// closing it at once makes the writer's next write fail (SIGPIPE), so its
// wrapper removes the FIFO and ends. (A write that lands in the moment
// the FIFO is open succeeds, and is thrown away; a dump writes on, so
// the one after fails.) Only FIFOs unchanged for staleAfter
// are touched, through descriptors beneath root.
func releaseStale(root *beneath.Root, log *slog.Logger) {
	for _, dir := range fifoDirs {
		d, err := root.OpenDir(strings.TrimPrefix(dir, "/"))
		if err != nil {
			continue
		}
		names, _ := d.Readdirnames(-1)
		for _, name := range names {
			if IsDumpFIFO(name) && releaseOne(d, name) {
				log.Info("released the dump a killed lifeboat left waiting in the container", "fifo", dir+"/"+name)
			}
		}
		d.Close()
	}
}

func releaseOne(dir *os.File, name string) bool {
	p, st, err := fifoPath(dir, name)
	if err != nil {
		return false
	}
	defer p.Close()
	old := time.Now().Add(-staleAfter)
	if time.Unix(st.Ctim.Unix()).After(old) || time.Unix(st.Mtim.Unix()).After(old) {
		return false
	}
	fd, err := unix.Open(beneath.ProcPath(p), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
