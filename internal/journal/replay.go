package journal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// Undoer is what replay needs from the engine.
// Each call returns nil only once the engine confirms the container is back
// (or gone), so that an entry is never removed on a promise.
type Undoer interface {
	// Thaw undoes Paused: it unpauses the container and confirms it is
	// no longer paused; one that stopped after frozenAt (the engine
	// restarted while it was frozen) it starts again. It succeeds if the
	// container is already running or gone.
	Thaw(ctx context.Context, id string, frozenAt time.Time) error
	// Resume undoes Stopped: it waits until the container is no longer
	// running or stopDeadline passed (zero: no wait), starts it and
	// confirms it runs. It succeeds if the container is already running
	// after the wait, or gone.
	Resume(ctx context.Context, id string, stopDeadline time.Time) error
}

// Replayed is what replay did with one entry of a dead owner.
type Replayed struct {
	Unit string
	// Containers are the names (IDs when unnamed) of the containers
	// resumed, in the order they were resumed.
	Containers []string
	// Err is why the entry was kept for the next replay, if it was.
	Err error
}

// Replay undoes every entry whose owner is gone. For each container, in
// ascending Order, it calls Thaw or Resume through the Undoer that
// connect returns for the entry's engine. An entry is removed when all of
// its containers were undone; otherwise it keeps the ones that were not,
// for the next replay, and its Replayed has Err set. Entries another
// process (or another handle in this process) holds are skipped, which
// makes concurrent replays safe. Unreadable entries are moved aside to
// <name>.corrupt with a warning. The error is for a journal that cannot
// be read or a context that ended; the entries not reached are kept.
//
// With nothing to do, Replay costs a single ReadDir.
func (j *Journal) Replay(ctx context.Context, connect func(ctx context.Context, engineHost string) (Undoer, error)) ([]Replayed, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read journal %s: %w", j.dir, err)
	}
	r := replay{j: j, connect: connect, engines: map[string]engineConn{}}
	var out []Replayed
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		switch {
		case strings.HasSuffix(name, entrySuffix):
			if err := ctx.Err(); err != nil {
				return out, fmt.Errorf("replay journal %s: %w", j.dir, err)
			}
			if res, ok := r.entry(ctx, name); ok {
				out = append(out, res)
			}
		case flock.IsTemp(name):
			j.removeStaleTemp(name)
		}
	}
	return out, nil
}

// engineConn is the outcome of one connect call, kept for the replay so
// that many entries of an unreachable engine cost one attempt.
type engineConn struct {
	u   Undoer
	err error
}

type replay struct {
	j       *Journal
	connect func(ctx context.Context, engineHost string) (Undoer, error)
	engines map[string]engineConn
}

func (r *replay) undoer(ctx context.Context, host string) (Undoer, error) {
	c, ok := r.engines[host]
	if !ok {
		c.u, c.err = r.connect(ctx, host)
		if c.err == nil && c.u == nil {
			c.err = errors.New("no engine client")
		}
		r.engines[host] = c
	}
	return c.u, c.err
}

// maxReopen bounds how often entry follows a file that was replaced
// between opening and locking it.
const maxReopen = 3

// entry replays the entry file name if its owner is gone. It reports
// false when there was nothing to report: the entry is held, vanished,
// corrupt, or had no containers.
func (r *replay) entry(ctx context.Context, name string) (Replayed, bool) {
	j := r.j
	path := filepath.Join(j.dir, name)
	var f *os.File
	for attempt := 1; ; attempt++ {
		var st lockState
		var err error
		f, st, err = lockCurrent(path)
		if err != nil {
			j.log.Warn("journal entry not replayed", "file", name, "error", err)
			return Replayed{}, false
		}
		if st == locked {
			break
		}
		if st != replaced || attempt >= maxReopen {
			// Held by a live owner or another replay, or gone.
			return Replayed{}, false
		}
		// Replaced by its owner's Update between our open and our lock:
		// look at the new file.
	}
	defer f.Close()

	var e Entry
	if err := decode(f, &e); err != nil {
		// Renames make a torn write impossible, so this is damage from
		// elsewhere; keep the file for a human rather than guess.
		if rerr := os.Rename(path, path+corruptSuffix); rerr != nil {
			j.log.Error("journal entry corrupt, not moved aside", "file", name, "error", err, "rename_error", rerr)
			return Replayed{}, false
		}
		_ = syncDir(j.dir)
		j.log.Warn("journal entry corrupt, moved aside", "file", name, "moved_to", name+corruptSuffix, "error", err)
		return Replayed{}, false
	}
	if len(e.Containers) == 0 {
		// Written before anything was frozen, or all already undone.
		r.remove(name)
		return Replayed{}, false
	}

	res := Replayed{Unit: e.Unit}
	left, err := r.undo(ctx, e, &res)
	if err != nil {
		res.Err = err
		j.log.Warn("journal entry kept for the next replay", "file", name, "unit", e.Unit,
			"engine_host", e.EngineHost, "resumed", res.Containers, "error", err)
		if len(left) < len(e.Containers) {
			// Keep only what is left, so that a container resumed now
			// and stopped on purpose later is not started again by the
			// next replay.
			e.Containers = left
			if nf, werr := j.writeLocked(name, e); werr != nil {
				j.log.Warn("journal entry not narrowed", "file", name, "error", werr)
			} else {
				_ = syncDir(j.dir)
				_ = nf.Close()
			}
		}
		return res, true
	}
	r.remove(name)
	j.log.Info("journal entry replayed", "file", name, "unit", e.Unit, "engine_host", e.EngineHost, "resumed", res.Containers)
	return res, true
}

// undo resumes e's containers in ascending Order, going on past failures
// so that as many as possible run again, and returns those it could not
// resume.
func (r *replay) undo(ctx context.Context, e Entry, res *Replayed) ([]Container, error) {
	u, err := r.undoer(ctx, e.EngineHost)
	if err != nil {
		return e.Containers, fmt.Errorf("connect to engine %s: %w", e.EngineHost, err)
	}
	cs := slices.Clone(e.Containers)
	slices.SortStableFunc(cs, func(a, b Container) int { return cmp.Compare(a.Order, b.Order) })
	var left []Container
	var errs []error
	for _, c := range cs {
		label := c.Name
		if label == "" {
			label = c.ID
		}
		var err error
		switch {
		case c.ID == "":
			err = errors.New("no container id")
		case c.Action == Paused:
			err = u.Thaw(ctx, c.ID, e.Started)
		case c.Action == Stopped:
			err = u.Resume(ctx, c.ID, c.StopDeadline())
		default:
			// Perhaps written by a newer lifeboat: keep it for that one.
			err = fmt.Errorf("unknown action %q", c.Action)
		}
		if err != nil {
			left = append(left, c)
			errs = append(errs, fmt.Errorf("resume %s: %w", label, err))
			continue
		}
		res.Containers = append(res.Containers, label)
	}
	return left, errors.Join(errs...)
}

// remove removes a replayed entry while its lock is still held.
func (r *replay) remove(name string) {
	if err := os.Remove(filepath.Join(r.j.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Harmless beyond a repeated replay: undo is idempotent.
		r.j.log.Warn("journal entry not removed", "file", name, "error", err)
		return
	}
	if err := syncDir(r.j.dir); err != nil {
		r.j.log.Warn("journal entry not removed", "file", name, "error", err)
	}
}
