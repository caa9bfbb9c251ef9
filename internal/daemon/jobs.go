package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// observer follows a job's operation: its progress and log go on the
// job, and so does what it waits for.
func observer(r *scheduler.Run, unit string) ops.Observer {
	return ops.Observer{
		Progress: func(_ string, c *progress.Counters) { r.SetWaiting(""); r.SetProgress(c) },
		Waiting:  waitingFor(r, unit),
		Job:      r.ID(),
		Log:      r.Log,
	}
}

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

func (d *Daemon) runBackup(ctx context.Context, r *scheduler.Run, unit, trigger string) (err error) {
	// The dead-man check hears of every end, retention's failure included.
	ping := d.note.PingStart(d.pingOf(unit), r.ID())
	defer func() { ping.Done(err) }()
	es, local, err := d.target(unit)
	if err != nil {
		return err
	}
	release, err := es.slot(ctx, r)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	results, err := ops.Backup(ctx, &es.env, ops.BackupRequest{Units: []string{local}, Trigger: trigger}, observer(r, unit))
	var res backup.Result
	if len(results) == 1 {
		res = results[0]
	}
	d.recordBackup(ctx, unit, res, err, time.Since(start))
	if err != nil {
		return err
	}
	r.Report(res.ID, res.AddedBytes, res.DowntimeMS, res)
	if res.Suspect {
		r.Log.Warn("restore point is suspect: older good points are kept until it is acknowledged", "point", res.ID, "reasons", strings.Join(res.Anomalies, "; "))
		d.announceSuspect(r, res)
	}
	if keep := d.retentionOf(unit); !keep.IsZero() {
		// Retention runs only after a success, and never drops a unit's
		// newest point: a failing unit keeps all it has.
		verdicts, err := ops.Forget(ctx, &es.env, ops.ForgetRequest{Unit: local, Keep: keep}, observer(r, unit))
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

// recordBackup keeps a backup's outcome in the unit's state.
func (d *Daemon) recordBackup(ctx context.Context, unit string, res backup.Result, err error, took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.units[unit]
	if u == nil {
		return
	}
	u.lastDur = took
	switch {
	case err != nil:
		u.lastResult, u.lastError = resultOf(ctx), err.Error()
		if ctx.Err() == nil {
			u.failures++
		}
	case res.Skipped == "":
		u.lastResult, u.lastError = scheduler.Succeeded, ""
		u.lastSuccess, u.lastPoint, u.lastDown, u.lastBytes, u.lastSize = res.Time, res.ID, res.DowntimeMS, res.AddedBytes, res.Bytes
		u.suspect = !res.Good()
		u.points++
	}
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

// upkeepNames are the repository-wide jobs, for messages.
const upkeepNames = "replicate, offsite-verify, check, forget, maintenance or state"

// submitUpkeep queues a repository-wide job.
func (d *Daemon) submitUpkeep(kind, trigger string) (scheduler.Job, error) {
	var fn scheduler.Func
	switch kind {
	case "maintenance":
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := ops.Maintain(ctx, &d.env, ops.MaintenanceRequest{}, observer(r, ""))
			if err == nil {
				r.Report("", 0, 0, res)
			}
			d.invalidateRepoStats()
			return d.upkeepDone(kind, 0, err)
		}
	case "check":
		req := ops.CheckRequest{ReadData: d.cfg.Check.ReadData}
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := ops.Check(ctx, &d.env, req, observer(r, ""))
			r.Report("", 0, 0, res)
			return d.upkeepDone(kind, 0, err)
		}
	case "replicate":
		req := ops.ReplicateRequest{To: d.cfg.Offsite.To, LockMode: d.cfg.Offsite.Lock.Mode, LockPeriod: d.cfg.Offsite.Lock.Period}
		if err := req.Validate(); err != nil {
			return scheduler.Job{}, err
		}
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := ops.Replicate(ctx, &d.env, req, observer(r, ""))
			r.Report("", res.BytesSent, 0, res)
			return d.upkeepDone(kind, res.BytesSent, err)
		}
	case "offsite-verify":
		req := ops.VerifyOffsiteRequest{To: d.cfg.Offsite.To, LockMode: d.cfg.Offsite.Lock.Mode}
		if err := req.Validate(); err != nil {
			return scheduler.Job{}, err
		}
		fn = func(ctx context.Context, r *scheduler.Run) error {
			res, err := ops.VerifyOffsite(ctx, &d.env, req, observer(r, ""))
			r.Report("", 0, 0, res)
			return d.upkeepDone(kind, 0, err)
		}
	case "forget":
		fn = d.forgetAll
	case stateKind:
		fn = func(ctx context.Context, r *scheduler.Run) error { return d.runState(ctx, r, trigger) }
	default:
		return scheduler.Job{}, fmt.Errorf("%w: unknown job kind %q: use backup, restore, drill, %s", api.ErrBadRequest, kind, upkeepNames)
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
	labelled := 0
	for _, u := range d.units {
		if !u.info.Policy.Retention.IsZero() {
			labelled++
		}
	}
	d.mu.Unlock()
	if labelled == 0 {
		r.Log.Info("no unit has a retention policy: nothing to forget")
		return nil
	}
	var res []backup.ForgetResult
	var errs []error
	for _, es := range d.engines {
		// Each engine's units by their own labels, over its own points.
		one, err := ops.Forget(ctx, &es.env, ops.ForgetRequest{}, observer(r, ""))
		res = append(res, one...)
		if err != nil && d.multi() {
			err = fmt.Errorf("engine %s: %w", es.cfg.Name, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
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

// Ack acknowledges a suspect point's anomaly, as `lifeboat ack`.
func (d *Daemon) Ack(ctx context.Context, id string) (repository.AckResult, error) {
	res, err := ops.Ack(ctx, &d.env, id)
	if errors.Is(err, repository.ErrNotSuspect) {
		return res, fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	if err != nil {
		return res, err
	}
	d.mu.Lock()
	if u := d.units[res.Unit]; u != nil && u.lastPoint == res.ID {
		u.suspect = false
	}
	d.mu.Unlock()
	return res, nil
}
