package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// Every restore that changes something is journalled (package txn): each
// step is recorded before it is taken, a failure rolls every step back,
// and so does the next lifeboat command after a kill. Replaced data and
// containers are removed only after the commit, the point at which the
// restore has succeeded: for a volume or a directory once the new contents
// are swapped in, for a unit once its containers run.

// begin opens the restore journal and records the restore before it
// changes anything.
func begin(ctx context.Context, opts Options, e txn.Entry) (*txn.Tx, error) {
	if opts.JournalDir == "" {
		return nil, errors.New("restore: no journal directory to record the restore in")
	}
	j, err := txn.Open(opts.JournalDir, opts.Log)
	if err != nil {
		return nil, err
	}
	tx, err := j.Begin(ctx, e)
	if err != nil {
		return nil, err
	}
	failpoint.Hit("restore-journalled")
	return tx, nil
}

// conclude commits a restore that succeeded and removes what it replaced,
// or rolls back one that failed. A restore whose clean-up fails after the
// commit has still succeeded: the next lifeboat command finishes it.
func conclude(ctx context.Context, tx *txn.Tx, eng txn.Engine, log *slog.Logger, cause error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx = context.WithoutCancel(ctx) // an interrupted restore is still undone
	if cause == nil {
		if cause = tx.Commit(); cause == nil {
			failpoint.Hit("restore-committed")
			if did, err := tx.Finish(ctx, eng); err != nil {
				log.Warn("restored, but what it replaced is not all removed yet: the next lifeboat command retries", "done", did, "error", err)
			}
			return nil
		}
	}
	did, err := tx.Rollback(ctx, eng)
	log.Info("restore failed and was rolled back", "undone", did, "error", cause)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("roll back the failed restore: %w (the next lifeboat command retries)", err))
	}
	return cause
}

// placed is where a restore writes data meant for dir: dir itself, or a
// staging directory beside it that swapIn puts in its place.
type placed struct {
	dir, into string
	swap      *txn.Step
}

// place journals how dir receives restored data: a missing directory is
// created, an empty one filled in place, and one that holds data gets the
// data staged beside it (the caller has made sure that is allowed).
func place(tx *txn.Tx, dir, label string) (placed, error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := tx.Add(txn.Step{Kind: txn.MadeDir, Path: topMissing(dir), Label: label}); err != nil {
			return placed{}, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return placed{}, fmt.Errorf("create %s: %w", dir, err)
		}
		failpoint.Hit("restore-dir-made")
		return placed{dir: dir, into: dir}, nil
	case err != nil:
		return placed{}, fmt.Errorf("%s: %w", label, err)
	case !fi.IsDir():
		return placed{}, fmt.Errorf("%s: %s is not a directory", label, dir)
	}
	empty, err := isEmptyDir(dir)
	if err != nil {
		return placed{}, err
	}
	if empty {
		st, _ := fi.Sys().(*syscall.Stat_t)
		s := txn.Step{Kind: txn.FilledDir, Path: dir, Label: label}
		if st != nil {
			s.Mode, s.UID, s.GID = st.Mode&0o7777, int(st.Uid), int(st.Gid)
		}
		_, err := tx.Add(s)
		return placed{dir: dir, into: dir}, err
	}
	if mounted, err := isMountPoint(dir); err != nil {
		return placed{}, err
	} else if mounted {
		return placed{}, fmt.Errorf("%s: %s is a mount point and cannot be swapped: empty it first, or restore somewhere else", label, dir)
	}
	suffix := randomSuffix()
	s := txn.Step{Kind: txn.Swap, Path: dir, Stage: dir + ".lifeboat-restore-" + suffix, Old: dir + ".lifeboat-old-" + suffix, Label: label}
	if _, err := tx.Add(s); err != nil {
		return placed{}, err
	}
	if err := os.Mkdir(s.Stage, 0o700); err != nil {
		return placed{}, fmt.Errorf("create staging directory: %w", err)
	}
	return placed{dir: dir, into: s.Stage, swap: &s}, nil
}

// swapIn puts the staged contents in place of the old ones, which stay
// beside them until the restore is committed.
func (p placed) swapIn() error {
	if p.swap == nil {
		return nil
	}
	if err := os.Rename(p.dir, p.swap.Old); err != nil {
		return fmt.Errorf("move old contents of %s aside: %w", p.dir, err)
	}
	failpoint.Hit("restore-swap-half")
	if err := os.Rename(p.swap.Stage, p.dir); err != nil {
		return fmt.Errorf("swap in restored contents of %s: %w", p.dir, err)
	}
	if err := syncTree(filepath.Dir(p.dir)); err != nil {
		return err
	}
	failpoint.Hit("restore-swapped")
	return nil
}

// topMissing is the outermost directory MkdirAll(dir) would create.
func topMissing(dir string) string {
	top := filepath.Clean(dir)
	for {
		parent := filepath.Dir(top)
		if parent == top {
			return top
		}
		if _, err := os.Lstat(parent); err == nil {
			return top
		}
		top = parent
	}
}
