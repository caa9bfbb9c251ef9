package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// Replayed is what a replay did with the entry of an interrupted restore.
type Replayed struct {
	Unit string
	What string
	// Finished: the restore had succeeded (or swapped its data in), and
	// the replay finished it; otherwise it rolled it back.
	Finished bool
	Did      []string // what it did, in order
	Err      error    // why the entry was kept for the next replay
}

// staleTemp is how old an unlocked temporary file must be before Replay
// removes it: its writer locks it right after creating it.
const staleTemp = time.Minute

// Replay settles every entry whose owner is gone: a committed restore is
// finished, any other rolled back. connect gives the engine an entry's
// containers, volumes and networks are on; it is called only when a step
// needs it. Entries held by a live owner are skipped, so concurrent
// replays are safe. With nothing to do, Replay costs one ReadDir.
func (j *Journal) Replay(ctx context.Context, connect func(ctx context.Context, engineHost string) (Engine, error)) ([]Replayed, error) {
	des, err := os.ReadDir(j.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read restore journal %s: %w", j.dir, err)
	}
	var out []Replayed
	for _, de := range des {
		name := de.Name()
		if !de.Type().IsRegular() {
			continue
		}
		switch {
		case strings.HasSuffix(name, entrySuffix):
			if err := ctx.Err(); err != nil {
				return out, fmt.Errorf("replay restore journal %s: %w", j.dir, err)
			}
			if r, ok := j.replayEntry(ctx, name, connect); ok {
				out = append(out, r)
			}
		case flock.IsTemp(name):
			j.removeStaleTemp(name)
		}
	}
	return out, nil
}

func (j *Journal) replayEntry(ctx context.Context, name string, connect func(context.Context, string) (Engine, error)) (Replayed, bool) {
	path := filepath.Join(j.dir, name)
	f, ok, err := lockEntry(path)
	if err != nil {
		j.log.Warn("restore journal entry not replayed", "file", name, "error", err)
	}
	if !ok {
		return Replayed{}, false // a live owner, another replay, or gone
	}
	defer f.Close()
	e, err := decode(f)
	if err != nil {
		// Renames make a torn write impossible: this is damage from
		// elsewhere, kept for a human rather than guessed at.
		if rerr := os.Rename(path, path+".corrupt"); rerr == nil {
			_ = syncDir(j.dir)
		}
		j.log.Warn("restore journal entry corrupt, moved aside", "file", name, "moved_to", name+".corrupt", "error", err)
		return Replayed{}, false
	}
	r := Replayed{Unit: e.Unit, What: e.What, Finished: finishes(e)}
	r.Did, r.Err = settle(ctx, j, name, e, func(ctx context.Context) (Engine, error) { return connect(ctx, e.EngineHost) })
	if r.Err != nil {
		j.log.Warn("restore journal entry kept for the next replay", "file", name, "unit", e.Unit, "error", r.Err)
	} else {
		j.log.Info("restore journal entry replayed", "file", name, "unit", e.Unit, "finished", r.Finished, "did", r.Did)
	}
	return r, true
}

// removeStaleTemp removes a temporary file left by a writer that died
// before renaming it; no restore depends on one.
func (j *Journal) removeStaleTemp(name string) {
	path := filepath.Join(j.dir, name)
	if !flock.TempSettled(path, staleTemp) {
		return
	}
	f, ok, err := lockEntry(path)
	if err != nil || !ok {
		return
	}
	defer f.Close()
	_ = os.Remove(path)
}

// Message is the line a command prints for r.
func (r Replayed) Message() string {
	verb := "rolled back"
	if r.Finished {
		verb = "finished"
	}
	what := r.Unit
	if r.What != "" {
		what += " (" + r.What + ")"
	}
	did := "nothing had changed yet"
	if r.Finished {
		did = "nothing was left to remove"
	}
	if len(r.Did) > 0 {
		did = strings.Join(r.Did, "; ")
	}
	if r.Err != nil {
		return fmt.Sprintf("lifeboat: could not fully settle an interrupted restore of %s: %s; %v (will retry at the next run)", what, did, r.Err)
	}
	return fmt.Sprintf("lifeboat: %s an interrupted restore of %s: %s", verb, what, did)
}
