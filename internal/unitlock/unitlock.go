// Package unitlock keeps one job per unit at a time on this host: every
// backup, restore and drill of a unit holds the unit's lock, whether it
// runs from the CLI or in `lifeboat serve`, so that one job's thaw never
// lands in another's frozen pass.
//
// A lock is an exclusive flock(2) on a file per unit in a directory of the
// state dir. The kernel drops it when its process dies, however it dies, so
// a crashed job never leaves a unit locked. flock locks belong to the open
// file description: two Acquire calls in one process exclude each other as
// two processes do. The file holds who holds the lock, for the message a
// waiting job shows; it is informational only (PIDs are reused).
//
// A flock covers one host only: hosts that share a repository are not
// excluded by it.
package unitlock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// ErrBusy means the unit is locked by another job and the caller asked not
// to wait. The error that wraps it names the holder.
var ErrBusy = errors.New("locked by another job")

// Operations a lock is taken for.
const (
	Backup  = "backup"
	Restore = "restore"
	Drill   = "drill"
)

// Holder is who holds a lock, as its file records it.
type Holder struct {
	Unit      string    `json:"unit"`
	Operation string    `json:"operation"`
	PID       int       `json:"pid"`
	Hostname  string    `json:"hostname,omitempty"`
	Since     time.Time `json:"since"`
	// Job names the daemon job holding it ("" from the CLI).
	Job string `json:"job,omitempty"`
	// EngineID is the engine whose unit a shared lease covers.
	EngineID string `json:"engine_id,omitempty"`
}

// String reads as "the backup of project/shop by pid 1234 since 21:03:04".
// A holder whose file was not written yet is "another job".
func (h Holder) String() string {
	if h.PID == 0 {
		return "another job"
	}
	op := h.Operation
	if op == "" {
		op = "job"
	}
	s := fmt.Sprintf("the %s of %s by pid %d", op, h.Unit, h.PID)
	if h.Job != "" {
		s += " (serve job " + h.Job + ")"
	}
	if h.Hostname != "" {
		if me, _ := os.Hostname(); me != h.Hostname {
			s += " on " + h.Hostname
		}
	}
	return s + " since " + h.Since.Local().Format("15:04:05")
}

// Options of Acquire.
type Options struct {
	// Wait makes Acquire wait for the holder to finish; without it a held
	// lock is ErrBusy.
	Wait bool
	// Operation is recorded for others' messages: Backup, Restore or Drill.
	Operation string
	// Job is recorded too: the daemon's job ID.
	Job string
	// OnWait is called when Acquire starts waiting, and again whenever the
	// holder changes; nil says nothing.
	OnWait func(Holder)
	// Shared, when set, also takes a lease that other hosts sharing the
	// repository honour (see Shared).
	Shared *Shared
	// Tentative returns as soon as the shared lease is written, before
	// its settle: the caller does read-only work beside the settle and
	// calls Lock.Confirm before it changes anything. Without a lease, a
	// lock is confirmed from the start.
	Tentative bool
}

// Lock is a held lock. Release it once the job is done.
type Lock struct {
	unit string
	path string

	mu    sync.Mutex
	f     *os.File // nil once released
	lease *lease   // the shared lease, if one was asked for
}

// Unit is the unit the lock is held for.
func (l *Lock) Unit() string { return l.unit }

// Poll intervals while waiting: short at first, so a job that waits behind
// a short one starts soon after it, then no busier than needed.
const (
	firstPoll = 20 * time.Millisecond
	maxPoll   = 500 * time.Millisecond
)

// maxReopen bounds how often Acquire follows a lock file that its holder
// removed between our open and our lock.
const maxReopen = 100

// Acquire takes unit's lock in dir, creating dir (mode 0700) if needed.
// With opts.Wait it waits until the lock is free or ctx ends; without, a
// held lock is an error wrapping ErrBusy that names the holder (and the
// unit, which the holder's record holds).
func Acquire(ctx context.Context, dir, unit string, opts Options) (*Lock, error) {
	if dir == "" {
		return nil, errors.New("lock unit: no lock directory")
	}
	if unit == "" {
		return nil, errors.New("lock unit: no unit")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName(unit))
	poll := firstPoll
	var last Holder
	waited := false
	for reopen := 0; ; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for the lock of %s: %w", unit, context.Cause(ctx))
		}
		l, st, err := tryAcquire(path, unit, opts)
		switch {
		case err != nil:
			return nil, err
		case st == locked:
			return l.withLease(ctx, opts)
		case st == replaced:
			// The holder let go and removed the file just as we opened
			// it: the next try finds the new one at once.
			if reopen++; reopen > maxReopen {
				return nil, fmt.Errorf("lock %s: the lock file keeps changing under us", unit)
			}
			continue
		}
		h := readHolder(path)
		if !opts.Wait {
			return nil, fmt.Errorf("%w: %s", ErrBusy, h)
		}
		if opts.OnWait != nil && (!waited || (h.PID != 0 && h != last)) {
			opts.OnWait(h)
		}
		waited, last = true, h
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for the lock of %s, held by %s: %w", unit, h, context.Cause(ctx))
		case <-t.C:
		}
		poll = min(poll*2, maxPoll)
	}
}

type state int

const (
	held     state = iota // someone else holds it
	replaced              // the file we locked is no longer the lock file
	locked                // ours
)

// tryAcquire makes one attempt, without waiting.
func tryAcquire(path, unit string, opts Options) (*Lock, state, error) {
	// O_NOFOLLOW: the state dir is lifeboat's own, but a planted symlink
	// must not make us create or truncate a file elsewhere.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, held, fmt.Errorf("open lock file of %s: %w", unit, err)
	}
	ok, err := flock.TryLock(f)
	if err != nil || !ok {
		_ = f.Close()
		if err != nil {
			return nil, held, fmt.Errorf("lock %s: %w", unit, err)
		}
		return nil, held, nil
	}
	// A holder removes the file while it still holds the lock, then lets
	// go; a lock taken on the removed file is no lock at all.
	same, err := isCurrent(f, path)
	if err != nil || !same {
		_ = f.Close()
		if err != nil {
			return nil, held, fmt.Errorf("lock %s: %w", unit, err)
		}
		return nil, replaced, nil
	}
	h := Holder{Unit: unit, Operation: opts.Operation, PID: os.Getpid(), Since: time.Now(), Job: opts.Job}
	h.Hostname, _ = os.Hostname()
	// A record not written costs only a waiting job's message ("another
	// job"): the lock itself holds.
	_ = writeHolder(f, h)
	return &Lock{unit: unit, path: path, f: f}, locked, nil
}

func isCurrent(f *os.File, path string) (bool, error) {
	mine, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(mine, now), nil
}

// writeHolder replaces the file's contents with h in one write, so that a
// reader sees it whole or (briefly) an empty file.
func writeHolder(f *os.File, h Holder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(append(b, '\n'), 0)
	return err
}

// readHolder reads who holds path. The holder writes its record right
// after locking, so an empty file is retried for a moment; a record that
// cannot be read is an unknown holder.
func readHolder(path string) Holder {
	for range 5 {
		b, err := readSmall(path)
		if err == nil && len(b) > 0 {
			var h Holder
			if json.Unmarshal(b, &h) == nil {
				return h
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return Holder{}
}

func readSmall(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n > 0 {
		return b[:n], nil
	}
	return nil, err
}

// withLease takes the shared lease while the flock is held, so that
// only one process of this host contends for it.
func (l *Lock) withLease(ctx context.Context, opts Options) (*Lock, error) {
	if opts.Shared == nil {
		return l, nil
	}
	h := Holder{Unit: l.unit, Operation: opts.Operation, PID: os.Getpid(), Since: time.Now(), Job: opts.Job}
	h.Hostname, _ = os.Hostname()
	ls, err := opts.Shared.takeLease(ctx, l.unit, h, opts)
	if err != nil {
		return nil, errors.Join(err, l.Release())
	}
	l.lease = ls
	return l, nil
}

// Release removes the lock file and lets go. Calling it again does nothing.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var lerr error
	if l.lease != nil {
		// Before the flock: the next local job then finds the lease free.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		lerr = l.lease.release(ctx)
		cancel()
		l.lease = nil
	}
	// Remove while still holding the lock, so that no one locks the file
	// between the two steps and holds a lock on a file that is gone; a
	// waiter that opened it before checks and opens the new one.
	rerr := os.Remove(l.path)
	cerr := l.f.Close()
	l.f = nil
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return errors.Join(lerr, fmt.Errorf("remove lock file of %s: %w", l.unit, rerr))
	}
	if cerr != nil {
		return errors.Join(lerr, fmt.Errorf("unlock %s: %w", l.unit, cerr))
	}
	return lerr
}

// Confirm waits until the shared lease is the lock's for certain (see
// Options.Tentative): nil when it is, an error wrapping ErrOutraced when
// another host's claim won and holds the unit; then release the lock,
// drop what was done under it and acquire again. Without a lease, or
// after the first call, it returns at once.
func (l *Lock) Confirm(ctx context.Context) error {
	if l == nil || l.lease == nil {
		return nil
	}
	if err := l.lease.confirm(ctx); err != nil {
		return fmt.Errorf("lease of %s: %w", l.unit, err)
	}
	return nil
}

// LostC is closed when the lock's shared lease is lost (see Lost); nil,
// which never fires, without a lease.
func (l *Lock) LostC() <-chan struct{} {
	if l == nil || l.lease == nil {
		return nil
	}
	return l.lease.lost
}

// Lost says why the lock's shared lease was lost while held (another
// host took it over after it could not be renewed), or nil.
func (l *Lock) Lost() error {
	if l == nil || l.lease == nil {
		return nil
	}
	l.lease.mu.Lock()
	defer l.lease.mu.Unlock()
	return l.lease.lostAt
}

// Set is the locks of several units, taken together.
type Set struct{ locks []*Lock }

// AcquireAll takes the locks of units (duplicates once), in sorted order so
// that two jobs that need overlapping sets never wait for each other in a
// cycle. On failure it releases what it took.
func AcquireAll(ctx context.Context, dir string, units []string, opts Options) (*Set, error) {
	units = slices.Clone(units)
	slices.Sort(units)
	units = slices.Compact(units)
	s := &Set{}
	for _, u := range units {
		if u == "" {
			continue
		}
		l, err := Acquire(ctx, dir, u, opts)
		if err != nil {
			return nil, errors.Join(err, s.Release())
		}
		s.locks = append(s.locks, l)
	}
	return s, nil
}

// Units are the units locked, sorted.
func (s *Set) Units() []string {
	var out []string
	for _, l := range s.locks {
		out = append(out, l.unit)
	}
	return out
}

// Release lets go of every lock of the set, in reverse order.
func (s *Set) Release() error {
	if s == nil {
		return nil
	}
	var errs []error
	for i := len(s.locks) - 1; i >= 0; i-- {
		errs = append(errs, s.locks[i].Release())
	}
	s.locks = nil
	return errors.Join(errs...)
}

// FileName is the lock file's name for unit: reversible and unique. Bytes
// outside [A-Za-z0-9_-] (and "." at the start) are %XX-escaped, '%'
// included, so two units never share a file and "/" never makes a path; a
// name too long for the file system is replaced by its SHA-256, marked by a
// "%sha256-" prefix that escaping never produces.
func FileName(unit string) string {
	var b strings.Builder
	for i := 0; i < len(unit); i++ {
		c := unit[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	name := b.String()
	if len(name) > maxName {
		name = hashedName(unit)
	}
	return name + suffix
}

const (
	suffix = ".lock"
	// maxName keeps a name with its suffix under NAME_MAX (255 bytes).
	maxName = 200
)

func hashedName(unit string) string {
	sum := sha256.Sum256([]byte(unit))
	return "%sha256-" + hex.EncodeToString(sum[:])
}
