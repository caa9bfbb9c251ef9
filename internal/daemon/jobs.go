package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
	"github.com/lifeboat-backup/lifeboat/internal/server"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// submitBackup queues a backup of unit; a scheduled one is coalesced with
// one already waiting.
func (d *Daemon) submitBackup(unit, trigger string) (scheduler.Job, error) {
	j, err := d.q.Submit("backup", unit, trigger, func(ctx context.Context, r *scheduler.Run) error {
		return d.runBackup(ctx, r, unit, trigger)
	})
	if err != nil {
		d.log.Warn("backup not queued", "unit", unit, "err", err)
	}
	return j, err
}

func counters(c *progress.Counters) func() scheduler.Progress {
	return func() scheduler.Progress {
		return scheduler.Progress{FilesDone: c.Files.Load(), FilesTotal: c.TotalFiles.Load(), BytesDone: c.Bytes.Load(), BytesTotal: c.TotalBytes.Load()}
	}
}

func (d *Daemon) runBackup(ctx context.Context, r *scheduler.Run, unit, trigger string) error {
	start := time.Now()
	results, err := backup.Run(ctx, d.opts.Repo, d.opts.Engine, backup.Options{
		Units: []string{unit}, Trigger: trigger, Defaults: d.cfg.PolicyDefaults(),
		Version: d.opts.Version, Log: r.Log, JournalDir: d.opts.JournalDir,
		LockDir: d.opts.LockDir, Job: r.ID(), OnWait: waitingFor(r, unit),
		OnStart: func(_ string, c *progress.Counters) { r.SetWaiting(""); r.SetProgress(counters(c)) },
	})
	var res backup.Result
	if len(results) == 1 {
		res = results[0]
	}
	d.mu.Lock()
	u := d.units[unit]
	if u != nil {
		u.lastDur = time.Since(start)
	}
	switch {
	case err != nil && u != nil:
		u.lastResult, u.lastError = resultOf(ctx), err.Error()
		if ctx.Err() == nil {
			u.failures++
		}
	case err == nil && u != nil && res.Skipped == "":
		u.lastResult, u.lastError = scheduler.Succeeded, ""
		u.lastSuccess, u.lastPoint, u.lastDown, u.lastBytes, u.lastSize = res.Time, res.ID, res.DowntimeMS, res.AddedBytes, res.Bytes
		u.points++
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	r.Report(res.ID, res.AddedBytes, res.DowntimeMS, res)
	if keep := d.retentionOf(unit); !keep.IsZero() {
		// Retention runs only after a success, and never drops a unit's
		// newest point: a failing unit keeps all it has.
		verdicts, err := backup.Forget(ctx, d.opts.Repo, backup.ForgetOptions{Unit: unit, Keep: keep, Log: r.Log,
			Engine: func(context.Context) (*engine.Client, error) { return d.opts.Engine, nil }})
		if err != nil {
			return fmt.Errorf("restore point %s saved, but retention failed: %w", res.ID, err)
		}
		kept := 0
		for _, v := range verdicts {
			if v.Keep {
				kept++
			} else {
				r.Log.Info("forgotten by retention", "id", v.ID, "time", v.Time)
			}
		}
		d.mu.Lock()
		if u := d.units[unit]; u != nil {
			u.points = kept
		}
		d.mu.Unlock()
	}
	d.invalidateRepoStats()
	return nil
}

// waitingFor shows on the job, and in its log, that it waits for another
// job's lock of unit. The job stays cancellable while it waits.
func waitingFor(r *scheduler.Run, unit string) func(unitlock.Holder) {
	return func(h unitlock.Holder) {
		if h.Unit != "" {
			unit = h.Unit // of a restore's several, the one it waits for
		}
		r.SetWaiting("the lock of " + unit + ", held by " + h.String())
		r.Log.Info("waiting for the unit's lock", "unit", unit, "holder", h.String())
	}
}

func resultOf(ctx context.Context) string {
	if ctx.Err() != nil {
		return scheduler.Cancelled
	}
	return scheduler.Failed
}

// submitUpkeep queues a repository-wide job.
func (d *Daemon) submitUpkeep(kind, trigger string) (scheduler.Job, error) {
	var fn scheduler.Func
	switch kind {
	case "maintenance":
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := d.opts.Repo.Maintain(ctx, true)
			if err == nil {
				r.Report("", 0, 0, res)
				r.Log.Info("maintenance done", "duration", fmtDur(res.Duration))
			}
			d.invalidateRepoStats()
			return d.upkeepDone(kind, 0, err)
		}
	case "check":
		if d.opts.Check == nil {
			return scheduler.Job{}, fmt.Errorf("%w: this build has no repository check", server.ErrBadRequest)
		}
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := d.opts.Check(ctx, d.cfg.Check.ReadData, r.Log)
			r.Report("", 0, 0, res)
			return d.upkeepDone(kind, 0, err)
		}
	case "replicate":
		if d.opts.Replicate == nil || d.cfg.Offsite.To == "" {
			return scheduler.Job{}, fmt.Errorf("%w: no offsite target: set offsite.to in the config file", server.ErrBadRequest)
		}
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, sent, err := d.opts.Replicate(ctx, d.cfg.Offsite.To, r.Log)
			r.Report("", sent, 0, res)
			return d.upkeepDone(kind, sent, err)
		}
	case "forget":
		fn = func(ctx context.Context, r *scheduler.Run) error {
			return d.forgetAll(ctx, r)
		}
	default:
		return scheduler.Job{}, fmt.Errorf("%w: unknown job kind %q: use backup, restore, replicate, check, forget or maintenance", server.ErrBadRequest, kind)
	}
	return d.q.Submit(kind, "", trigger, fn)
}

func (d *Daemon) upkeepDone(kind string, bytes int64, err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.upkeep[kind]
	if k == nil {
		k = &upkeepState{kind: kind}
		d.upkeep[kind] = k
	}
	k.lastRun, k.ok, k.lastBytes = time.Now(), err == nil, bytes
	if err != nil {
		k.lastError = err.Error()
	} else {
		k.lastError, k.lastSuccess = "", k.lastRun
	}
	return err
}

// forgetAll applies each unit's retention label, as `lifeboat forget`.
func (d *Daemon) forgetAll(ctx context.Context, r *scheduler.Run) error {
	d.mu.Lock()
	labelled := map[string]policy.Retention{}
	for name, u := range d.units {
		if !u.info.Policy.Retention.IsZero() {
			labelled[name] = u.info.Policy.Retention
		}
	}
	d.mu.Unlock()
	if len(labelled) == 0 {
		r.Log.Info("no unit has a retention policy: nothing to forget")
		return nil
	}
	res, err := backup.Forget(ctx, d.opts.Repo, backup.ForgetOptions{Labelled: labelled, Log: r.Log,
		Engine: func(context.Context) (*engine.Client, error) { return d.opts.Engine, nil }})
	forgotten := 0
	for _, v := range res {
		if !v.Keep {
			forgotten++
		}
	}
	r.Report("", 0, 0, map[string]int{"forgotten": forgotten})
	d.invalidateRepoStats()
	return err
}

// runRestore carries out a restore request as the CLI would.
func (d *Daemon) runRestore(ctx context.Context, r *scheduler.Run, req server.RestoreRequest) error {
	c := progress.New()
	r.SetProgress(counters(c))
	opts := restore.Options{Ref: req.Point, Volume: req.Volume, Container: req.Container, Path: req.Path, Target: req.Target, As: req.As, Force: req.Force, JournalDir: filepath.Join(d.opts.StateDir, "restores"), Log: r.Log, Progress: c}
	locks, err := d.lockRestore(ctx, r, req)
	if err != nil {
		return err
	}
	defer func() {
		if err := locks.Release(); err != nil {
			r.Log.Warn("unit locks not released cleanly", "err", err)
		}
	}()
	var res any
	switch {
	case req.Target != "":
		res, err = restore.ToDirectory(ctx, d.opts.Repo, opts)
	case req.Volume != "":
		res, err = restore.ToVolume(ctx, d.opts.Repo, d.opts.Engine, opts)
	default:
		res, err = restore.ToUnit(ctx, d.opts.Repo, d.opts.Engine, opts)
	}
	r.Report(req.Point, c.Bytes.Load(), 0, res)
	if err == nil {
		r.Log.Info("restored", "point", req.Point)
	}
	return err
}

// lockRestore takes the locks of the units the restore writes, waiting
// for the jobs (of this daemon or a CLI) that hold them.
func (d *Daemon) lockRestore(ctx context.Context, r *scheduler.Run, req server.RestoreRequest) (*unitlock.Set, error) {
	p, err := d.opts.Repo.Resolve(ctx, req.Point)
	if err != nil {
		return nil, err
	}
	units, err := backup.RestoreLocks(ctx, d.opts.Engine, p, backup.RestoreScope{Volume: req.Volume, As: req.As, Target: req.Target})
	if err != nil {
		return nil, err
	}
	set, err := unitlock.AcquireAll(ctx, d.opts.LockDir, units, unitlock.Options{Wait: true, Operation: unitlock.Restore, Job: r.ID(),
		OnWait: waitingFor(r, p.Unit)})
	r.SetWaiting("")
	return set, err
}

// invalidateRepoStats makes the next status read measure the repository.
func (d *Daemon) invalidateRepoStats() {
	d.mu.Lock()
	d.repo.updated = time.Time{}
	d.mu.Unlock()
}

// repoSize is the bytes the repository's files take, for a local one.
func repoSize(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	return n
}
