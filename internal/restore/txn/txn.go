// Package txn is the restore journal. Before a restore changes anything
// it records what it is about to do, one step at a time, durably; so a
// restore that fails, or is killed at any moment, is undone (or, past its
// commit, finished) by the restore itself or by the next lifeboat command:
// originals renamed back and started, staging and created things removed,
// a half-filled directory emptied again, and replaced data deleted only
// once the restore has succeeded.
//
// A step is recorded before its action, so after a crash a step may or may
// not have happened; every undo and finish is idempotent and looks at what
// is there rather than trusting the record.
package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Kind is what a step did.
type Kind string

// The steps a restore records.
const (
	// MadeDir: Path did not exist and the restore created it (and what is
	// beneath it). Undone by removing it whole.
	MadeDir Kind = "made_dir"
	// FilledDir: Path was an empty directory (Mode, UID, GID) that the
	// restore fills in place. Undone by emptying it again.
	FilledDir Kind = "filled_dir"
	// Swap: Path's new contents are restored into Stage, then Path is
	// renamed to Old and Stage to Path. Undone by putting Old back;
	// finished by removing Old.
	Swap Kind = "swap"
	// Aside: container ID, named Name, renamed to Tmp and stopped (it
	// was running if Running). Undone by renaming it back and starting
	// it if it ran; finished by removing it with its anonymous volumes.
	Aside Kind = "aside"
	// MadeVolume, MadeNetwork: Name did not exist and the restore
	// creates it. Undone by removing it.
	MadeVolume  Kind = "made_volume"
	MadeNetwork Kind = "made_network"
	// MadeContainer: the restore creates container Name (ID once known),
	// with the anonymous volumes the engine made for it (Anonymous, once
	// known). Undone by removing it and them.
	MadeContainer Kind = "made_container"
	// Dropped: a step whose action turned out not to be the restore's
	// (a network someone else created in between). Nothing to undo.
	Dropped Kind = "dropped"
)

// Step is one recorded change. Label says what it is about in messages
// ("volume shop_data", "directory /srv/x").
type Step struct {
	Kind    Kind   `json:"kind"`
	Label   string `json:"label,omitempty"`
	Path    string `json:"path,omitempty"`
	Stage   string `json:"stage,omitempty"`
	Old     string `json:"old,omitempty"`
	Mode    uint32 `json:"mode,omitempty"`
	UID     int    `json:"uid,omitempty"`
	GID     int    `json:"gid,omitempty"`
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Tmp     string `json:"tmp,omitempty"`
	Running bool   `json:"running,omitempty"`
	// Anonymous are the volumes the engine made with a MadeContainer.
	Anonymous []string `json:"anonymous,omitempty"`
}

// Entry is one restore.
type Entry struct {
	Unit string `json:"unit"`
	What string `json:"what"` // "volume data", "directory /x", "project/shop as shop2"
	// EngineHost is the DOCKER_HOST of the engine the restore changes, ""
	// for a restore into a directory.
	EngineHost string    `json:"engine_host,omitempty"`
	PID        int       `json:"pid"` // informational: the lock tells a live owner
	Started    time.Time `json:"started"`
	// Committed: the restore succeeded; what is left is finishing
	// (removing replaced data and containers), never undoing.
	Committed bool `json:"committed"`
	// SwapCommits: the restore is complete once its swaps are done (a
	// restore into one volume or directory), so a replay that finds every
	// swap done finishes instead of undoing.
	SwapCommits bool   `json:"swap_commits,omitempty"`
	Steps       []Step `json:"steps"`
}

// Journal is a directory of entries, one file each.
type Journal struct {
	dir string
	log *slog.Logger
}

// Open opens the journal in dir, creating it (mode 0700) if needed. A nil
// log discards messages.
func Open(dir string, log *slog.Logger) (*Journal, error) {
	if dir == "" {
		return nil, errors.New("open restore journal: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create restore journal directory %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Journal{dir: dir, log: log}, nil
}

// Tx is a live entry, locked until it is done or this process ends.
type Tx struct {
	j    *Journal
	name string

	mu sync.Mutex
	e  Entry
	f  *os.File // nil once closed
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Begin durably records a restore before it changes anything.
func (j *Journal) Begin(ctx context.Context, e Entry) (*Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("begin restore journal entry: %w", err)
	}
	u := unsafeChars.ReplaceAllString(e.Unit, "_")
	if len(u) > 100 {
		u = u[:100]
	}
	e.PID, e.Started, e.Committed, e.Steps = os.Getpid(), time.Now().UTC(), false, nil
	t := &Tx{j: j, name: u + "-" + randomHex(8) + entrySuffix, e: e}
	if err := t.write(); err != nil {
		return nil, err
	}
	return t, nil
}

// write durably replaces the entry file with t.e, keeping it locked.
func (t *Tx) write() error {
	f, err := writeLocked(t.j.dir, t.name, &t.e)
	if err != nil {
		return err
	}
	if t.f != nil {
		_ = t.f.Close() // unlinked by the rename: nothing a replay could act on
	}
	t.f = f
	return syncDir(t.j.dir)
}

// Add durably records s before its action is taken, and returns its index
// for Set.
func (t *Tx) Add(s Step) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return 0, errors.New("restore journal entry already closed")
	}
	t.e.Steps = append(t.e.Steps, s)
	if err := t.write(); err != nil {
		t.e.Steps = t.e.Steps[:len(t.e.Steps)-1]
		return 0, err
	}
	return len(t.e.Steps) - 1, nil
}

// Set durably updates step i, say with the ID of what it created.
func (t *Tx) Set(i int, update func(*Step)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return errors.New("restore journal entry already closed")
	}
	update(&t.e.Steps[i])
	return t.write()
}

// Drop durably marks step i as not the restore's to undo.
func (t *Tx) Drop(i int) error {
	return t.Set(i, func(s *Step) { s.Kind = Dropped })
}

// Commit durably marks the restore as succeeded: from now on it is
// finished, never undone.
func (t *Tx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return errors.New("restore journal entry already closed")
	}
	t.e.Committed = true
	if err := t.write(); err != nil {
		t.e.Committed = false
		return err
	}
	return nil
}

// Finish does what is left of a committed restore and removes the entry.
// On failure the entry is kept, unlocked, for the next lifeboat command.
func (t *Tx) Finish(ctx context.Context, eng Engine) ([]string, error) {
	return t.settle(ctx, eng, true)
}

// Rollback undoes every step, newest first, and removes the entry. On
// failure the entry keeps what is left, unlocked, for the next lifeboat
// command.
func (t *Tx) Rollback(ctx context.Context, eng Engine) ([]string, error) {
	return t.settle(ctx, eng, false)
}

func (t *Tx) settle(ctx context.Context, eng Engine, finish bool) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return nil, errors.New("restore journal entry already closed")
	}
	if finish && !t.e.Committed {
		return nil, errors.New("finish a restore that is not committed")
	}
	did, err := settle(ctx, t.j, t.name, &t.e, func(context.Context) (Engine, error) { return eng, nil })
	_ = t.f.Close()
	t.f = nil
	return did, err
}

// Close releases the entry without touching it, for the next lifeboat
// command to settle (tests use it to leave an entry behind).
func (t *Tx) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
}

// remove removes the entry file, while the caller holds its lock.
func (j *Journal) remove(name string) error {
	if err := os.Remove(filepath.Join(j.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove restore journal entry %s: %w", name, err)
	}
	return syncDir(j.dir)
}
