package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// Engine is what undoing and finishing need from the Docker Engine.
type Engine interface {
	Container(ctx context.Context, nameOrID string) (engine.Container, error)
	RenameContainer(ctx context.Context, id, newName string) error
	Start(ctx context.Context, id string) error
	RemoveContainer(ctx context.Context, id string, force bool) error
	RemoveWithVolumes(ctx context.Context, id string) error
	Volume(ctx context.Context, name string) (engine.Volume, error)
	RemoveVolume(ctx context.Context, name string) error
	Network(ctx context.Context, name string) (engine.NetworkSpec, error)
	RemoveNetwork(ctx context.Context, name string) error
}

// finishes reports whether e is to be finished rather than undone.
func finishes(e *Entry) bool {
	if e.Committed {
		return true
	}
	if !e.SwapCommits {
		return false
	}
	n := 0
	for _, s := range e.Steps {
		if s.Kind != Swap {
			continue
		}
		n++
		if !swapped(s) {
			return false
		}
	}
	return n > 0
}

// swapped reports whether both renames of a swap happened: the new
// contents are in place and the old ones beside them.
func swapped(s Step) bool {
	return exists(s.Old) && exists(s.Path) && !exists(s.Stage)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// settle finishes or undoes entry e, stored as name, and removes it when
// everything was done; else it keeps what is left, for the next replay.
// The caller holds the entry's lock.
func settle(ctx context.Context, j *Journal, name string, e *Entry, connect func(context.Context) (Engine, error)) ([]string, error) {
	finish := finishes(e)
	var eng Engine
	getEngine := func() (Engine, error) {
		if eng == nil {
			var err error
			if eng, err = connect(ctx); err != nil {
				return nil, fmt.Errorf("connect to engine %s: %w", e.EngineHost, err)
			}
			if eng == nil {
				return nil, errors.New("no engine to undo containers, volumes and networks with")
			}
		}
		return eng, nil
	}
	originals := map[string]bool{}
	for _, s := range e.Steps {
		if s.Kind == Aside {
			originals[s.ID] = true
		}
	}
	var did []string
	var errs []error
	left := make([]bool, len(e.Steps))
	for k := range e.Steps {
		i := k
		if !finish {
			i = len(e.Steps) - 1 - k // undo newest first
		}
		s := e.Steps[i]
		var msg string
		var err error
		if finish {
			msg, err = finishStep(ctx, s, getEngine)
		} else {
			msg, err = undoStep(ctx, s, getEngine, originals)
		}
		if msg != "" {
			did = append(did, msg)
		}
		if err != nil {
			left[i] = true
			errs = append(errs, fmt.Errorf("%s: %w", s.describe(), err))
		}
	}
	if len(errs) == 0 {
		return did, j.remove(name)
	}
	// Keep only what is left, so the next replay does not redo what was
	// done (a container started again, say, after someone stopped it).
	var keep []Step
	for i, s := range e.Steps {
		if left[i] {
			keep = append(keep, s)
		}
	}
	e.Steps, e.Committed = keep, finish
	if f, err := writeLocked(j.dir, name, e); err != nil {
		errs = append(errs, err)
	} else {
		_ = f.Close()
		_ = syncDir(j.dir)
	}
	return did, errors.Join(errs...)
}

func (s Step) describe() string {
	if s.Label != "" {
		return s.Label
	}
	return string(s.Kind) + " " + s.Name + s.Path
}

// undoStep undoes one step, whether or not its action happened.
func undoStep(ctx context.Context, s Step, getEngine func() (Engine, error), originals map[string]bool) (string, error) {
	switch s.Kind {
	case Dropped:
		return "", nil
	case MadeDir:
		if !exists(s.Path) {
			return "", nil
		}
		if err := os.RemoveAll(s.Path); err != nil {
			return "", err
		}
		return "removed " + s.describe(), syncDir(filepath.Dir(s.Path))
	case FilledDir:
		return emptyAgain(s)
	case Swap:
		return unswap(s)
	}
	eng, err := getEngine()
	if err != nil {
		return "", err
	}
	switch s.Kind {
	case Aside:
		return bringBack(ctx, eng, s)
	case MadeContainer:
		return removeContainer(ctx, eng, s, originals)
	case MadeVolume:
		if _, err := eng.Volume(ctx, s.Name); errors.Is(err, engine.ErrNotFound) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return "removed volume " + s.Name, eng.RemoveVolume(ctx, s.Name)
	case MadeNetwork:
		if _, err := eng.Network(ctx, s.Name); errors.Is(err, engine.ErrNotFound) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return "removed network " + s.Name, eng.RemoveNetwork(ctx, s.Name)
	}
	// Perhaps written by a newer lifeboat: keep it for that one.
	return "", fmt.Errorf("unknown step %q", s.Kind)
}

// finishStep does what is left of a step once the restore succeeded.
func finishStep(ctx context.Context, s Step, getEngine func() (Engine, error)) (string, error) {
	switch s.Kind {
	case Swap:
		msg := ""
		for _, p := range []string{s.Old, s.Stage} {
			if !exists(p) {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				return msg, err
			}
			msg = "removed the replaced contents of " + s.describe()
		}
		return msg, nil
	case Aside:
		eng, err := getEngine()
		if err != nil {
			return "", err
		}
		if _, err := eng.Container(ctx, s.ID); errors.Is(err, engine.ErrNotFound) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		// Its anonymous volumes go with it: the restored container has
		// new ones, filled from the point, as a replaced volume's old
		// contents go once the restore succeeded.
		return "removed the replaced container " + s.Tmp, eng.RemoveWithVolumes(ctx, s.ID)
	}
	return "", nil
}

// emptyAgain removes what a restore wrote into a directory that was empty,
// and gives it back its mode and owner.
func emptyAgain(s Step) (string, error) {
	fi, err := os.Lstat(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is no longer a directory", s.Path)
	}
	names, err := readNames(s.Path)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(s.Path, n)); err != nil {
			return "", err
		}
	}
	// unix.Chmod, as os.Chmod drops setgid and sticky bits.
	if err := os.Lchown(s.Path, s.UID, s.GID); err != nil {
		return "", err
	}
	if err := unix.Chmod(s.Path, s.Mode&0o7777); err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", nil
	}
	return "emptied " + s.describe() + " again", syncDir(s.Path)
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// unswap puts a directory's old contents back and removes the staged new
// ones, from any point of a swap: the renames go Path→Old, Stage→Path
// forward and Path→Stage, Old→Path back, so Old existing without Path
// means half done either way.
func unswap(s Step) (string, error) {
	msg := ""
	if exists(s.Old) {
		if exists(s.Path) {
			if exists(s.Stage) {
				return "", fmt.Errorf("%s, %s and %s all exist: put the right one in place by hand", s.Path, s.Stage, s.Old)
			}
			if err := os.Rename(s.Path, s.Stage); err != nil {
				return "", err
			}
		}
		if err := os.Rename(s.Old, s.Path); err != nil {
			return "", err
		}
		msg = "put the old contents of " + s.describe() + " back"
	}
	if exists(s.Stage) {
		if err := os.RemoveAll(s.Stage); err != nil {
			return msg, err
		}
		if msg == "" {
			msg = "removed the staged contents of " + s.describe()
		}
	}
	if msg == "" {
		return "", nil
	}
	return msg, syncDir(filepath.Dir(s.Path))
}

// bringBack renames a replaced container back and starts it if it ran.
func bringBack(ctx context.Context, eng Engine, s Step) (string, error) {
	c, err := eng.Container(ctx, s.ID)
	if errors.Is(err, engine.ErrNotFound) {
		// Removed by someone else since: nothing left to bring back.
		return fmt.Sprintf("container %s (%s) is gone, not brought back", s.Name, shortID(s.ID)), nil
	}
	if err != nil {
		return "", err
	}
	msg := ""
	if c.Name != s.Name {
		if err := eng.RenameContainer(ctx, s.ID, s.Name); err != nil {
			return "", err
		}
		msg = "renamed " + c.Name + " back to " + s.Name
	}
	if s.Running && !c.Running() {
		if err := eng.Start(ctx, s.ID); err != nil {
			return msg, err
		}
		if msg == "" {
			msg = "started " + s.Name + " again"
		} else {
			msg += " and started it"
		}
	}
	return msg, nil
}

// removeContainer removes a container the restore created; one only known
// by name is looked up, and never one of the originals.
func removeContainer(ctx context.Context, eng Engine, s Step, originals map[string]bool) (string, error) {
	ref := s.ID
	if ref == "" {
		ref = s.Name
	}
	msg := ""
	c, err := eng.Container(ctx, ref)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		// Gone, perhaps by an earlier undo killed before its volumes went.
	case err != nil:
		return "", err
	case originals[c.ID]:
		return "", nil
	default:
		// The engine removes the anonymous volumes it made with it, even
		// those a kill kept out of the step's record.
		if err := eng.RemoveWithVolumes(ctx, c.ID); err != nil {
			return "", err
		}
		msg = "removed container " + s.Name
	}
	for _, v := range s.Anonymous {
		if _, err := eng.Volume(ctx, v); errors.Is(err, engine.ErrNotFound) {
			continue
		} else if err != nil {
			return msg, err
		}
		if err := eng.RemoveVolume(ctx, v); err != nil {
			return msg, err
		}
		msg = strings.TrimPrefix(msg+"; removed its volume "+shortID(v), "; ")
	}
	return msg, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
