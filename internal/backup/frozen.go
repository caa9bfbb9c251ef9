package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/lifeboat-backup/lifeboat/internal/btrfs"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/source"
	"golang.org/x/sys/unix"
)

// The frozen pass of pause mode does as little as it can while the unit
// is frozen. The live pass records what it hands kopia; the files that
// changed since are copied into a staging area with the unit running
// (prestage, twice); frozen, the tree's metadata is taken into memory,
// those copies are brought up to date block by block (the files the
// prestage missed are copied whole), the sidecars are scanned, and the
// unit is thawed; kopia then hashes and uploads that captured tree.
// Before, kopia read and hashed every changed file whole while the unit
// was frozen — a database's files change between the passes, so the
// freeze lasted seconds under load.

// staging prepares the live pass to record what it saw and the frozen
// pass to copy the rest; false when the unit is read through a remote
// stage or a snapshot, where the frozen pass reads as before.
func (c *capture) staging() (bool, func(), error) {
	if c.remote != nil || c.at != nil || c.opts.StageDir == "" {
		return false, func() {}, nil
	}
	st, err := helper.NewStage(c.opts.StageDir, "frozen")
	if err != nil {
		return false, nil, err
	}
	c.frozenStage = &source.Stage{Dir: st.Dir, Budget: stageBudget(st.Dir)}
	c.seen = map[string]liveDir{}
	return true, func() {
		c.frozenStage.Close()
		if err := st.Remove(); err != nil {
			c.opts.Log.Warn("frozen copies not removed: the next command removes them", "unit", c.p.unit.String(), "err", err)
		}
	}, nil
}

// dirEntry is a data directory's entry in the tree: read as it is in a
// plain pass, recording what it hands kopia in a live pass that a
// captured frozen pass follows, captured in that frozen pass.
func (c *capture) dirEntry(ctx context.Context, j *scanJob, name string) (source.Entry, error) {
	dir, skip := j.dir, j.skip
	switch {
	case c.seen == nil:
		// The sidecar's scan lists the tree once, for both.
		j.listed = source.NewListings(dir)
		return source.Live(dir, name, skip, j.listed)
	case c.frozen:
		return c.captureAside(ctx, j, name), nil
	default:
		s := source.NewSeen()
		c.seen[dir] = liveDir{seen: s, skip: skip, memo: fsmeta.NewXattrMemo(dir)}
		return source.Recorded(dir, name, skip, s)
	}
}

// captureAside captures j's directory in a goroutine of its own and
// returns its entry at once: the data directories are captured at the
// same time, on every core. The walk feeds j's sidecar scanner, so the
// frozen tree is listed once. captureFrozen waits for them all
// (capturesDone) before the tree is used.
func (c *capture) captureAside(ctx context.Context, j *scanJob, name string) source.Entry {
	p := &pendingDir{name: name, done: make(chan struct{})}
	c.captures = append(c.captures, p)
	j.fed = p
	dir, skip, seen, memo := j.dir, j.skip, c.seen[j.dir].seen, c.seen[j.dir].memo
	go func() {
		defer close(p.done)
		start := time.Now()
		opts := fsmeta.ScanOptions{Memo: memo} // the walk applies skip itself
		if c.at != nil {
			opts.Dir = btrfs.CheckDir
		}
		sc, err := fsmeta.NewScanner(ctx, dir, opts)
		var e source.Entry
		if err == nil {
			p.scanner = sc
			e, err = source.Capture(ctx, dir, name, skip, seen, c.frozenStage, sc)
		}
		c.opts.Log.Debug("data directory captured", "unit", c.p.unit.String(), "dir", dir, "ms", time.Since(start).Milliseconds())
		if err != nil {
			p.err = err
			return
		}
		p.Directory = e.(fs.Directory)
	}()
	return p
}

// capturesDone waits for every captureAside and returns their errors.
func (c *capture) capturesDone() error {
	var errs []error
	for _, p := range c.captures {
		<-p.done
		errs = append(errs, p.err)
	}
	c.captures = nil
	return errors.Join(errs...)
}

// errCaptureFailed stands for a capture's error where its sidecar was
// wanted: capturesDone reports the error itself.
var errCaptureFailed = errors.New("its capture failed")

// pendingDir is a captured directory being taken: its name is known at
// once; everything else only once done is closed, which the tree's user
// waits for (capturesDone), and so does its sidecar's scan, which the
// capture fed to scanner.
type pendingDir struct {
	fs.Directory
	name    string
	done    chan struct{}
	err     error
	scanner *fsmeta.Scanner
}

func (p *pendingDir) Name() string { return p.name }

// liveDir is what the live pass handed kopia of one data directory.
type liveDir struct {
	seen *source.Seen
	skip func(string, bool) bool
	// memo: the inodes the prestage's walks found without xattrs, which
	// the frozen one does not list again while they do not change.
	memo *fsmeta.XattrMemo
}

// prestage copies what changed since the live pass, the unit running,
// so that the frozen pass only brings those copies up to date. A second
// round brings them up to date once: what the frozen pass has left to
// rewrite is then what changed during that round alone, not during the
// first whole copy.
// It returns false when the copies would not fit in the staging area:
// the frozen pass then reads the files in place, as it did before.
func (c *capture) prestage(ctx context.Context) (bool, error) {
	defer c.phases.add("prestage", time.Now())
	for range 2 {
		for dir, l := range c.seen {
			// The walk feeds a scan whose sidecar is not kept: it fills
			// the memo, so that the frozen pass lists few xattrs.
			sc, err := fsmeta.NewScanner(ctx, dir, fsmeta.ScanOptions{Memo: l.memo})
			if err == nil {
				err = source.Prestage(ctx, dir, l.skip, l.seen, c.frozenStage, sc)
			}
			if errors.Is(err, source.ErrStageFull) {
				c.opts.Log.Info("frozen pass reads the files in place: their copies would not fit the staging area",
					"unit", c.p.unit.String(), "budget", c.frozenStage.Budget)
				c.seen = nil
				return false, nil
			}
			if err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// stageBudget is half the free space where the copies go: they must
// leave room for everything else, and for the repository when it is on
// the same disk.
func stageBudget(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 1 // nothing staged: an unknown disk is not filled
	}
	return int64(st.Bavail) * st.Bsize / 2
}

// captureFrozen takes the frozen unit's tree, sidecars included, so that
// it can be uploaded once the unit is thawed.
func (c *capture) captureFrozen(ctx context.Context) (source.Entry, error) {
	start := time.Now()
	defer c.phases.add("frozen_pass", start)
	c.counters.StartPass()
	c.passes++
	st := c.frozenStage
	st.ResetCounts()
	root, wait, err := c.tree(ctx)
	// Captures already started are waited for whatever happens: none may
	// go on copying once the unit is thawed.
	cerr := c.capturesDone()
	st.ReleaseMaps()
	treeMS := time.Since(start).Milliseconds()
	if err == nil {
		// A failed capture fails its sidecar too: say it once.
		if err = wait(); cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, err
	}
	c.opts.Log.Debug("frozen tree captured", "unit", c.p.unit.String(), "staged_files", c.frozenStage.Files.Load(),
		"staged_bytes", c.frozenStage.Bytes.Load(), "cloned", c.frozenStage.Cloned.Load(), "synced", c.frozenStage.Synced.Load(),
		"compared_bytes", c.frozenStage.Compared.Load(), "unchanged_bytes", c.frozenStage.Unchanged.Load(),
		"vouched_bytes", c.frozenStage.Vouched.Load(), "tree_ms", treeMS, "ms", time.Since(start).Milliseconds())
	return root, nil
}

// uploadCaptured uploads the tree captureFrozen took, the unit thawed.
func (c *capture) uploadCaptured(ctx context.Context, up repository.Uploader, root source.Entry) error {
	defer c.phases.add("upload", time.Now())
	uerr := up.Upload(ctx, root)
	if serr := c.streamErr(); uerr != nil && serr != nil {
		uerr = serr
	}
	if uerr != nil {
		return fmt.Errorf("upload frozen tree: %w", uerr)
	}
	return nil
}
