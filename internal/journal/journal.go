// Package journal makes sure that a container lifeboat paused or stopped
// is resumed whatever happens to lifeboat: an entry is written durably
// before anything is frozen, removed after the thaw, and replayed by the
// next lifeboat command when its owner is gone.
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
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Action is what lifeboat did to a container and must undo.
type Action string

// Actions.
const (
	Paused  Action = "paused"  // undo: unpause
	Stopped Action = "stopped" // undo: start
)

// Container is one container lifeboat is about to pause or stop.
type Container struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Action Action `json:"action"`
	Order  int    `json:"order"` // undo runs in ascending order (start order)
}

// Entry is one freeze: one unit's containers on one engine.
type Entry struct {
	Unit       string      `json:"unit"`
	EngineHost string      `json:"engine_host"`
	PID        int         `json:"pid"` // informational: the lock is the truth
	Started    time.Time   `json:"started"`
	Containers []Container `json:"containers"`
}

// Undoer is what replay needs from the engine. Both calls must succeed
// when there is nothing to undo (already running, or gone).
type Undoer interface {
	Unpause(ctx context.Context, id string) error
	Start(ctx context.Context, id string) error
}

// Journal is a directory of entries, one file each.
type Journal struct {
	dir string
	log *slog.Logger
}

// Open opens (creating) the journal directory.
func Open(dir string, log *slog.Logger) (*Journal, error) {
	if dir == "" {
		return nil, errors.New("no journal directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal %s: %w", dir, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Journal{dir: dir, log: log}, nil
}

// Handle is a live entry. Its file stays open with an exclusive flock for
// as long as this process runs: a lock that can be taken means a dead owner.
type Handle struct {
	j *Journal
	f *os.File
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Begin durably records e before anything is frozen.
func (j *Journal) Begin(ctx context.Context, e Entry) (*Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("%s-%d-%s.json", unsafe.ReplaceAllString(e.Unit, "_"), os.Getpid(), hex.EncodeToString(b))
	path := filepath.Join(j.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create journal entry %s: %w", name, err)
	}
	// Lock before the content exists: a replay never acts on an entry
	// whose owner is still writing it.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("lock journal entry %s: %w", name, err)
	}
	h := &Handle{j: j, f: f}
	if err := h.Update(e); err != nil {
		h.Done()
		return nil, err
	}
	if err := syncDir(j.dir); err != nil {
		h.Done()
		return nil, err
	}
	return h, nil
}

// Update rewrites the entry durably, keeping the lock. It rewrites in place
// (truncate, write, fsync): a crash in between leaves a short file that
// Replay moves aside, which can only happen while the freeze has not begun
// or the same containers are recorded again.
func (h *Handle) Update(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode journal entry: %w", err)
	}
	if err := h.f.Truncate(0); err != nil {
		return fmt.Errorf("write journal entry %s: %w", h.f.Name(), err)
	}
	if _, err := h.f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("write journal entry %s: %w", h.f.Name(), err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("sync journal entry %s: %w", h.f.Name(), err)
	}
	return nil
}

// Done removes the entry once everything is thawed.
func (h *Handle) Done() error {
	err := os.Remove(h.f.Name())
	h.f.Close()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal entry: %w", err)
	}
	return syncDir(h.j.dir)
}

// Replayed is what one replayed entry did.
type Replayed struct {
	Unit       string
	Containers []string
	Err        error
}

// Replay undoes every entry whose owner is gone. An entry is removed only
// when all of its containers were resumed; otherwise it stays for the next
// replay. Cheap when the journal is empty.
func (j *Journal) Replay(ctx context.Context, connect func(ctx context.Context, engineHost string) (Undoer, error)) ([]Replayed, error) {
	names, err := os.ReadDir(j.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read journal %s: %w", j.dir, err)
	}
	var out []Replayed
	for _, de := range names {
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		if r, ok := j.replayOne(ctx, filepath.Join(j.dir, de.Name()), connect); ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (j *Journal) replayOne(ctx context.Context, path string, connect func(context.Context, string) (Undoer, error)) (Replayed, bool) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Replayed{}, false // removed meanwhile by its owner or another replay
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return Replayed{}, false // the owner (or another replay) holds it
	}
	if _, err := os.Stat(path); err != nil {
		return Replayed{}, false // removed between our open and our lock
	}
	var e Entry
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &e)
	}
	if err != nil {
		j.log.Warn("journal entry unreadable, moved aside", "path", path, "err", err)
		os.Rename(path, path+".corrupt")
		return Replayed{}, false
	}
	r := Replayed{Unit: e.Unit}
	r.Err = j.undo(ctx, e, connect, &r)
	if r.Err != nil {
		j.log.Warn("journal replay incomplete; kept for the next run", "unit", e.Unit, "err", r.Err)
		return r, true
	}
	if err := os.Remove(path); err != nil {
		r.Err = fmt.Errorf("remove journal entry: %w", err)
	}
	j.log.Info("resumed containers of an interrupted backup", "unit", e.Unit, "containers", strings.Join(r.Containers, ","))
	return r, true
}

func (j *Journal) undo(ctx context.Context, e Entry, connect func(context.Context, string) (Undoer, error), r *Replayed) error {
	u, err := connect(ctx, e.EngineHost)
	if err != nil {
		return fmt.Errorf("reach engine %s: %w", e.EngineHost, err)
	}
	cs := append([]Container(nil), e.Containers...)
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].Order < cs[b].Order })
	var errs []error
	for _, c := range cs {
		switch c.Action {
		case Paused:
			err = u.Unpause(ctx, c.ID)
		case Stopped:
			err = u.Start(ctx, c.ID)
		default:
			err = fmt.Errorf("unknown action %q", c.Action)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
			continue
		}
		r.Containers = append(r.Containers, c.Name)
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync journal dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync journal dir: %w", err)
	}
	return nil
}
