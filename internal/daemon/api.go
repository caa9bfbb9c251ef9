package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// Units lists every unit on the host, protected or not, as the last
// discovery saw them: engine events and the minutely rediscovery keep that
// current, so a dashboard polling this costs the engine nothing.
func (d *Daemon) Units(ctx context.Context) ([]api.UnitStatus, error) {
	select {
	case <-d.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	running := map[string]string{}
	for _, j := range d.q.Active() {
		if j.Unit != "" {
			running[j.Unit] = j.ID
		}
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]api.UnitStatus, 0, len(d.units))
	for name, u := range d.units {
		s := api.UnitStatus{UnitInfo: u.info, Engine: u.engine, Schedule: u.spec, LastPoint: u.lastPoint, LastDowntimeMS: u.lastDown,
			LastBytes: u.lastBytes, LastSize: u.lastSize, LastResult: u.lastResult, LastError: u.lastError, Points: u.points, RunningJob: running[name]}
		if !u.next.IsZero() {
			n := u.next
			s.NextRun = &n
		}
		if !u.lastSuccess.IsZero() {
			t := u.lastSuccess
			s.LastSuccess = &t
		}
		if !u.drill.next.IsZero() {
			n := u.drill.next
			s.NextDrill = &n
		}
		s.LastDrill, s.LastDrillPoint, s.DrillSchedule = u.drill.last, u.drill.point, u.drill.spec
		s.Suspect = u.suspect
		s.Overdue = overdue(u, now)
		s.ProtectionState = protection(u, s.Overdue)
		if u.unreachable != "" {
			s.ProtectionState, s.LastError = "unreachable", "engine "+u.engine+" unreachable: "+u.unreachable
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out, nil
}

// protection is a unit's state in a word, the most urgent first. A unit
// the policy protects but no schedule backs up is "unscheduled" whatever
// points it has: nothing will back it up again.
func protection(u *unitState, overdue bool) string {
	switch {
	case !u.info.Policy.Enabled:
		return "unprotected"
	case u.lastResult == scheduler.Failed:
		return "failing"
	case u.sched == nil:
		return "unscheduled"
	case u.lastSuccess.IsZero():
		return "never"
	case overdue:
		return "overdue"
	}
	return "protected"
}

// overdue: the last success is older than two scheduled intervals allow.
func overdue(u *unitState, now time.Time) bool {
	if u.sched == nil || u.lastSuccess.IsZero() {
		return false
	}
	first := u.sched.Next(u.lastSuccess)
	second := u.sched.Next(first)
	return !second.IsZero() && now.After(second)
}

// Points lists restore points, of one unit or all.
func (d *Daemon) Points(ctx context.Context, unit string) ([]repository.Point, error) {
	return d.opts.Repo.List(ctx, unit)
}

// Point resolves a point reference.
func (d *Daemon) Point(ctx context.Context, id string) (repository.Point, error) {
	return d.opts.Repo.Resolve(ctx, id)
}

// ReadDir lists a directory of a point.
func (d *Daemon) ReadDir(ctx context.Context, id, path string) ([]repository.DirEntry, error) {
	p, err := d.opts.Repo.Resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.opts.Repo.ReadDir(ctx, p.ID, path)
}

// Open streams one file of a point.
func (d *Daemon) Open(ctx context.Context, id, path string) (io.ReadCloser, repository.DirEntry, error) {
	if strings.TrimSpace(path) == "" {
		return nil, repository.DirEntry{}, fmt.Errorf("%w: give ?path=FILE", api.ErrBadRequest)
	}
	p, err := d.opts.Repo.Resolve(ctx, id)
	if err != nil {
		return nil, repository.DirEntry{}, err
	}
	st, err := d.opts.Repo.Stat(ctx, p.ID, path)
	if err != nil {
		return nil, st, err
	}
	if st.Type != "file" {
		return nil, st, fmt.Errorf("%w: %s is a %s, not a file: list it with /files", api.ErrBadRequest, path, st.Type)
	}
	rc, err := d.opts.Repo.OpenFile(ctx, p.ID, path)
	return rc, st, err
}

// Jobs lists jobs, live first.
func (d *Daemon) Jobs() []api.Job {
	js := d.q.Jobs()
	out := make([]api.Job, 0, len(js))
	for _, j := range js {
		out = append(out, d.view(j))
	}
	return out
}

// Job is one job with its log.
func (d *Daemon) Job(id string) (api.Job, bool) {
	j, ok := d.q.Job(id)
	if !ok {
		return api.Job{}, false
	}
	return d.view(j), true
}

func (d *Daemon) view(j scheduler.Job) api.Job {
	v := api.Job{Job: j}
	if p, ok := d.q.Progress(j.ID); ok {
		v.Progress = &p
	}
	return v
}

// Submit starts a job from the API.
func (d *Daemon) Submit(ctx context.Context, req api.JobRequest) (api.Job, error) {
	var j scheduler.Job
	var err error
	switch req.Kind {
	case "backup":
		es, local, terr := d.target(req.Unit)
		if terr != nil {
			return api.Job{}, terr
		}
		u, perr := backup.ParseUnit(local)
		if perr != nil || u.Kind == "" {
			return api.Job{}, fmt.Errorf("%w: unit %q: write %sproject/NAME, container/NAME or volume/NAME", api.ErrBadRequest, req.Unit, map[bool]string{true: "ENGINE/"}[d.multi()])
		}
		key := d.qualify(es, u.String())
		d.mu.Lock()
		_, known := d.units[key]
		d.mu.Unlock()
		if !known {
			if err := d.discover(ctx, false); err != nil {
				return api.Job{}, err
			}
			d.mu.Lock()
			_, known = d.units[key]
			d.mu.Unlock()
			if !known {
				return api.Job{}, fmt.Errorf("%w: no unit %s on this host: see GET /api/v1/units", api.ErrNotFound, key)
			}
		}
		j, err = d.submitBackup(key, "api")
	case "restore":
		if req.Restore == nil {
			return api.Job{}, fmt.Errorf("%w: a restore job needs restore.point", api.ErrBadRequest)
		}
		j, err = d.submitRestore(ctx, *req.Restore, req.Engine)
	case "drill":
		dr := ops.DrillRequest{Point: req.Unit}
		if req.Drill != nil {
			dr = *req.Drill
		}
		dr.NoWait = false
		j, err = d.submitDrill(ctx, dr, "api", req.Engine)
	case "replicate", "offsite-verify", "check", "forget", "maintenance", stateKind:
		j, err = d.submitUpkeep(req.Kind, "api")
	default:
		return api.Job{}, fmt.Errorf("%w: unknown job kind %q: use backup, restore, drill, %s", api.ErrBadRequest, req.Kind, upkeepNames)
	}
	if errors.Is(err, scheduler.ErrClosed) {
		return api.Job{}, fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	if err != nil {
		return api.Job{}, err
	}
	return d.view(j), nil
}

// Cancel cancels a job.
func (d *Daemon) Cancel(id string) error {
	err := d.q.Cancel(id)
	switch {
	case errors.Is(err, scheduler.ErrNoJob):
		return fmt.Errorf("%w: no job %s", api.ErrNotFound, id)
	case errors.Is(err, scheduler.ErrEnded):
		return fmt.Errorf("%w: job %s has ended", api.ErrConflict, id)
	}
	return err
}

// Repository reports the repository and its offsite copy.
func (d *Daemon) Repository(ctx context.Context) (api.RepoStatus, error) {
	d.mu.Lock()
	stale := time.Since(d.repo.updated) > time.Minute
	d.mu.Unlock()
	if stale {
		points, err := d.opts.Repo.List(ctx, "")
		if err != nil {
			return api.RepoStatus{}, err
		}
		size := int64(-1)
		if loc := d.opts.Repo.Path(); strings.HasPrefix(loc, "/") {
			size = repoSize(loc)
		}
		d.mu.Lock()
		d.repo = repoStats{size: size, points: len(points), updated: time.Now()}
		d.mu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := api.RepoStatus{Location: d.opts.Repo.Path(), Units: len(d.units), Points: d.repo.points, SizeBytes: d.repo.size, Offsite: d.cfg.Offsite.To}
	if k := d.upkeep["check"]; k != nil && !k.lastRun.IsZero() {
		t := k.lastRun
		st.LastCheck, st.LastCheckOK, st.LastCheckError = &t, k.ok, k.lastError
	}
	if k := d.upkeep["replicate"]; k != nil {
		if !k.lastSuccess.IsZero() {
			t := k.lastSuccess
			st.LastReplication = &t
			st.ReplicationLag = time.Since(t).Round(time.Second).String()
		}
		st.LastReplError = k.lastError
	}
	return st, nil
}

// submitRestore validates a restore as the CLI validates its flags, but
// confined (host directories only under restore.target_roots), and
// queues it, or its dry run, which creates nothing.
func (d *Daemon) submitRestore(ctx context.Context, req ops.RestoreRequest, onto string) (scheduler.Job, error) {
	req.NoWait = false
	es, err := d.pickEngine(onto)
	if err != nil {
		return scheduler.Job{}, err
	}
	if es == nil {
		// The point's own engine: its unit is restored where it was.
		es = d.engines[0]
		if d.multi() && req.FromHost == "" {
			if name, _, ok := strings.Cut(req.Point, "/"); ok && d.engine(name) != nil && strings.Contains(req.Point, "@") {
				// ENGINE/KIND/NAME@…: the daemon's unit name.
				es, req.Point = d.engine(name), strings.TrimPrefix(req.Point, name+"/")
			}
		}
	}
	kind, err := req.Validate(&es.env)
	if err != nil {
		return scheduler.Job{}, err
	}
	p, err := d.opts.Repo.Resolve(ctx, req.Point)
	if err != nil {
		return scheduler.Job{}, err
	}
	if onto == "" && d.multi() {
		es = d.engineOfPoint(p)
	}
	// The point is pinned: its host was only how to find it.
	req.Point, req.FromHost = p.ID, ""
	unit := d.qualify(es, p.Unit)
	if req.DryRun || kind == ops.IntoDirectory || kind == ops.ImagesOnly {
		// These hold no unit: they may run beside the unit's backup.
		unit = ""
	}
	return d.q.Submit("restore", unit, "api", func(ctx context.Context, r *scheduler.Run) error {
		release, err := es.slot(ctx, r)
		if err != nil {
			return err
		}
		defer release()
		return d.runRestore(ctx, r, es, req, unit)
	})
}

// pickEngine is the engine named by a job ("" nil: the caller decides).
func (d *Daemon) pickEngine(name string) (*engineState, error) {
	if name == "" {
		return nil, nil
	}
	if es := d.engine(name); es != nil {
		return es, nil
	}
	return nil, fmt.Errorf("%w: no engine %q: use one of %s (GET /api/v1/engines)", api.ErrBadRequest, name, d.engineNames())
}

// runRestore is a restore job. A dry run's plan is its result, and a plan
// that would be refused fails the job, as `restore --dry-run` exits 1.
func (d *Daemon) runRestore(ctx context.Context, r *scheduler.Run, es *engineState, req ops.RestoreRequest, unit string) error {
	var c *progress.Counters
	obs := observer(r, unit)
	obs.Progress = func(_ string, pc *progress.Counters) { c = pc; r.SetWaiting(""); r.SetProgress(pc) }
	res, err := ops.Restore(ctx, &es.env, req, obs)
	var bytes int64
	if c != nil {
		bytes = c.Bytes.Load()
	}
	r.Report(res.Point, bytes, 0, res.Summary())
	if p := res.Plan; p != nil {
		for _, what := range p.Create {
			r.Log.Info("would create", "what", what)
		}
		for _, what := range p.Replace {
			r.Log.Info("would replace", "what", what)
		}
		if err == nil {
			r.Log.Info("dry run: nothing was changed")
		}
		return err
	}
	if err == nil {
		r.Log.Info("restored", "point", res.Point)
	}
	return err
}

// PlanRestore is a restore's dry run, validated as a restore: what it
// would create, replace, or why it would be refused.
func (d *Daemon) PlanRestore(ctx context.Context, req ops.RestoreRequest) (restore.Plan, error) {
	req.DryRun = true
	res, err := ops.Restore(ctx, &d.env, req, ops.Observer{Log: d.log})
	if res.Plan != nil && errors.Is(err, restore.ErrConflict) {
		return *res.Plan, nil // the refusals are the answer
	}
	if err != nil {
		return restore.Plan{}, err
	}
	return *res.Plan, nil
}
