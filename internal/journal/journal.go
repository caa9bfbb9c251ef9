// Package journal makes sure that a container lifeboat paused or stopped
// is resumed whatever happens to lifeboat: an entry is written durably
// before anything is frozen, removed after the thaw, and replayed by the
// next lifeboat command when its owner is gone.
//
// The owner of an entry holds an exclusive flock(2) on the entry file for
// as long as it lives. The kernel drops the lock when the process dies,
// however it dies, so a lock that can be taken means a dead owner; the PID
// recorded in the entry is informational only, as PIDs are reused.
package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// Action is what lifeboat did to a container and must undo.
type Action string

// The actions lifeboat records.
const (
	// Paused is undone by unpausing, which the Undoer does only if the
	// container is still paused.
	Paused Action = "paused"
	// Stopped is undone by starting, which the Undoer does only if the
	// container is not running.
	Stopped Action = "stopped"
)

// Container is one container lifeboat is about to pause or stop.
type Container struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Action Action `json:"action"`
	// Order is the start order for Stopped containers (dependency order);
	// undo runs in ascending Order.
	Order int `json:"order"`
	// StopSent is when lifeboat asked the engine to stop the container,
	// recorded durably just before asking; zero while it has not. The
	// engine goes on stopping it after lifeboat dies, for up to
	// StopGraceMS, so undo waits that out before it starts the container.
	StopSent time.Time `json:"stop_sent,omitzero"`
	// StopGraceMS is the container's stop grace period then, in ms.
	StopGraceMS int64 `json:"stop_grace_ms,omitempty"`
}

// StopMargin is how long after its grace period a stop is still waited
// for: the engine's kill and the exit it waits for take a moment.
const StopMargin = 10 * time.Second

// StopDeadline is when a stop that was sent must have ended: StopSent
// plus the grace period plus StopMargin. Zero when no stop was sent, so
// undo starts at once: a stop that was never sent is not waited for.
func (c Container) StopDeadline() time.Time {
	if c.StopSent.IsZero() {
		return time.Time{}
	}
	return c.StopSent.Add(time.Duration(c.StopGraceMS)*time.Millisecond + StopMargin)
}

// Entry is one freeze: one unit's containers on one engine.
type Entry struct {
	Unit string `json:"unit"`
	// EngineHost is the DOCKER_HOST of the engine the containers run on.
	EngineHost string `json:"engine_host"`
	// PID is informational: the lock, not the PID, tells a live owner.
	PID        int         `json:"pid"`
	Started    time.Time   `json:"started"`
	Containers []Container `json:"containers"`
}

// Journal is a directory of entries, one file each.
type Journal struct {
	dir string
	log *slog.Logger
}

const (
	entrySuffix   = ".json"
	corruptSuffix = ".corrupt"

	// staleTemp is how old an unlocked temporary file named at its
	// creation (flock.Temp) must be before Replay removes it
	// (flock.TempSettled). Its writer locks it right after creating it, so
	// only a writer that died in that instant leaves one unlocked; the
	// margin keeps Replay from racing a writer that is merely slow.
	staleTemp = time.Minute

	// maxUnitName bounds the unit part of a file name, as names are
	// limited to 255 bytes.
	maxUnitName = 100
)

// Open opens the journal in dir, creating the directory (mode 0700) if
// needed. A nil log discards messages.
func Open(dir string, log *slog.Logger) (*Journal, error) {
	if dir == "" {
		return nil, errors.New("open journal: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal directory %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Journal{dir: dir, log: log}, nil
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Handle is a live entry. Its file stays open with an exclusive flock for
// as long as the handle is not done or this process runs.
type Handle struct {
	j    *Journal
	name string

	mu   sync.Mutex
	f    *os.File // nil once done
	path string
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName returns a new entry file name for unit.
func fileName(unit string) string {
	u := unsafeChars.ReplaceAllString(unit, "_")
	if len(u) > maxUnitName {
		u = u[:maxUnitName]
	}
	if u == "" {
		u = "entry"
	}
	return u + "-" + strconv.Itoa(os.Getpid()) + "-" + randomHex() + entrySuffix
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}

// fill sets the informational fields the caller left empty.
func fill(e Entry) Entry {
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	if e.Started.IsZero() {
		e.Started = time.Now()
	}
	return e
}

// Begin durably records e before anything is frozen and returns a handle
// that keeps the entry locked until Done or the end of this process. A
// zero PID or Started is filled in.
func (j *Journal) Begin(ctx context.Context, e Entry) (*Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("begin journal entry: %w", err)
	}
	name := fileName(e.Unit)
	f, err := j.writeLocked(name, fill(e))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(j.dir, name)
	if err := syncDir(j.dir); err != nil {
		// Not durable: take it back rather than freeze on a promise
		// that a crash could break.
		_ = os.Remove(path)
		_ = f.Close()
		return nil, err
	}
	return &Handle{j: j, name: name, f: f, path: path}, nil
}

// Name returns the entry's file name within the journal directory.
func (h *Handle) Name() string { return h.name }

// Update durably replaces the entry with e, for example as containers are
// stopped one by one, keeping the entry locked throughout. A zero PID or
// Started is filled in.
func (h *Handle) Update(e Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return fmt.Errorf("update journal entry %s: already done", h.name)
	}
	f, err := h.j.writeLocked(h.name, fill(e))
	if err != nil {
		return err
	}
	// The new file is locked and in place; the old one is unlinked, so
	// closing it gives a replay nothing it could act on.
	old := h.f
	h.f = f
	_ = old.Close()
	return syncDir(h.j.dir)
}

// Done removes the entry after everything was thawed, and releases the
// lock. Calling it again does nothing.
func (h *Handle) Done() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	// Remove while still holding the lock, so that no replay acts on the
	// entry between the two steps.
	rerr := os.Remove(h.path)
	_ = h.f.Close()
	h.f = nil
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("remove journal entry %s: %w", h.name, rerr)
	}
	return syncDir(h.j.dir)
}

// writeLocked writes e over the entry name, locked (flock.Replace). The
// caller syncs the directory.
func (j *Journal) writeLocked(name string, e Entry) (*os.File, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode journal entry %s: %w", name, err)
	}
	b = append(b, '\n')
	f, err := flock.Replace(j.dir, name, b)
	if err != nil {
		return nil, fmt.Errorf("journal entry %s: %w", name, err)
	}
	return f, nil
}

// removeStaleTemp removes a temporary file left by a writer that died
// before renaming it; no freeze depends on one.
func (j *Journal) removeStaleTemp(name string) {
	path := filepath.Join(j.dir, name)
	if !flock.TempSettled(path, staleTemp) {
		return
	}
	f, st, err := lockCurrent(path)
	if err != nil || st != locked {
		return
	}
	defer f.Close()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.log.Warn("journal temporary file not removed", "file", name, "error", err)
	}
}

// lockState is what lockCurrent found.
type lockState int

const (
	gone     lockState = iota // path no longer exists
	held                      // someone else holds the lock
	replaced                  // the locked file is no longer at path
	locked                    // the file at path is locked by us
)

// lockCurrent opens path and tries to lock it. It returns the open file
// only with locked, when the lock was taken and path still names the
// locked file: an owner removes or replaces its entry while holding the
// lock, so a lock taken just afterwards may be on a file that is no longer
// the entry.
func lockCurrent(path string) (*os.File, lockState, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, gone, nil
		}
		return nil, gone, fmt.Errorf("open journal entry: %w", err)
	}
	st, err := lockAt(f, path)
	if st != locked {
		_ = f.Close()
		return nil, st, err
	}
	return f, st, err
}

func lockAt(f *os.File, path string) (lockState, error) {
	ok, err := flock.TryLock(f)
	if err != nil {
		return gone, fmt.Errorf("lock journal entry: %w", err)
	}
	if !ok {
		return held, nil
	}
	mine, err := f.Stat()
	if err != nil {
		return gone, fmt.Errorf("stat journal entry: %w", err)
	}
	now, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return gone, nil
		}
		return gone, fmt.Errorf("stat journal entry: %w", err)
	}
	if !os.SameFile(mine, now) {
		return replaced, nil
	}
	return locked, nil
}

// maxEntrySize bounds what decode reads, so that a garbage file cannot
// make every command read it whole.
const maxEntrySize = 1 << 20

func decode(f *os.File, e *Entry) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > maxEntrySize {
		return fmt.Errorf("%d bytes, more than an entry can be", fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return err
	}
	return json.Unmarshal(b, e)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync journal directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync journal directory %s: %w", dir, err)
	}
	return nil
}
